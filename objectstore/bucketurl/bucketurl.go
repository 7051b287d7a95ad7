package bucketurl

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/objectstore/file"
	"github.com/siltstream/silt/objectstore/mem"
	"github.com/siltstream/silt/objectstore/s3"
)

// Open returns the bucket rawURL names. For s3 it also checks that the
// bucket exists and the credentials are accepted, so a misconfiguration
// fails here, with a clear message, rather than at the first flush. A
// file:// directory is created if missing. Every mem:// URL opens a new,
// empty in-memory bucket.
func Open(ctx context.Context, rawURL string) (objectstore.Bucket, error) {
	if rawURL == "" {
		return nil, errors.New("bucket URL is empty (want s3://bucket/prefix, file:///dir or mem://)")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("bucket URL %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "s3":
		return openS3(ctx, rawURL, u)
	case "file":
		return openFile(rawURL, u)
	case "mem":
		if u.Host != "" || strings.Trim(u.Path, "/") != "" || u.Opaque != "" || u.RawQuery != "" {
			return nil, fmt.Errorf("bucket URL %q: mem:// takes no bucket name, path or parameters", rawURL)
		}
		return mem.New(), nil
	case "":
		return nil, fmt.Errorf("bucket URL %q has no scheme (want s3://, file:// or mem://)", rawURL)
	default:
		return nil, fmt.Errorf("bucket URL %q: unsupported scheme %q (want s3, file or mem)", rawURL, u.Scheme)
	}
}

// ParseS3 returns the s3 driver configuration an s3:// URL describes.
func ParseS3(rawURL string) (s3.Config, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return s3.Config{}, fmt.Errorf("bucket URL %q: %w", rawURL, err)
	}
	if u.Scheme != "s3" {
		return s3.Config{}, fmt.Errorf("bucket URL %q: scheme is %q, not s3", rawURL, u.Scheme)
	}
	return parseS3(rawURL, u)
}

var s3Params = []string{"region", "endpoint", "path_style", "max_attempts", "ca_file"}

func parseS3(rawURL string, u *url.URL) (s3.Config, error) {
	if u.Opaque != "" {
		return s3.Config{}, fmt.Errorf("bucket URL %q: want s3://bucket/prefix", rawURL)
	}
	if u.User != nil {
		return s3.Config{}, fmt.Errorf("bucket URL %q: credentials do not belong in the URL; use the AWS default chain (AWS_ACCESS_KEY_ID, profiles, roles)", redactUser(u))
	}
	if u.Host == "" {
		return s3.Config{}, fmt.Errorf("bucket URL %q: bucket name is missing (want s3://bucket/prefix)", rawURL)
	}
	if u.Port() != "" {
		return s3.Config{}, fmt.Errorf("bucket URL %q: %q is not a bucket name; put a custom endpoint in ?endpoint=", rawURL, u.Host)
	}
	cfg := s3.Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	q := u.Query()
	for name := range q {
		if !slices.Contains(s3Params, name) {
			return s3.Config{}, fmt.Errorf("bucket URL %q: unknown parameter %q (known: %s)", rawURL, name, strings.Join(s3Params, ", "))
		}
		if len(q[name]) > 1 {
			return s3.Config{}, fmt.Errorf("bucket URL %q: parameter %q given more than once", rawURL, name)
		}
	}
	cfg.Region = q.Get("region")
	if ep := q.Get("endpoint"); ep != "" {
		eu, err := url.Parse(ep)
		if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" {
			return s3.Config{}, fmt.Errorf("bucket URL %q: endpoint %q is not an http:// or https:// URL", rawURL, ep)
		}
		cfg.Endpoint = ep
	}
	if v := q.Get("path_style"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return s3.Config{}, fmt.Errorf("bucket URL %q: path_style=%q is not true or false", rawURL, v)
		}
		cfg.PathStyle = b
	}
	if v := q.Get("ca_file"); v != "" {
		if !strings.HasPrefix(cfg.Endpoint, "https://") {
			return s3.Config{}, fmt.Errorf("bucket URL %q: ca_file is for an https:// endpoint", rawURL)
		}
		cfg.CAFile = v
	}
	if v := q.Get("max_attempts"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return s3.Config{}, fmt.Errorf("bucket URL %q: max_attempts=%q is not a positive integer", rawURL, v)
		}
		cfg.MaxAttempts = n
	}
	return cfg, nil
}

func redactUser(u *url.URL) string {
	c := *u
	c.User = url.User("REDACTED")
	return c.String()
}

func openS3(ctx context.Context, rawURL string, u *url.URL) (objectstore.Bucket, error) {
	cfg, err := parseS3(rawURL, u)
	if err != nil {
		return nil, err
	}
	b, err := s3.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := b.CheckBucket(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func openFile(rawURL string, u *url.URL) (objectstore.Bucket, error) {
	if u.Opaque != "" || (u.Host != "" && u.Host != "localhost") {
		return nil, fmt.Errorf("bucket URL %q: want file:///absolute/dir (three slashes); a relative directory is not allowed", rawURL)
	}
	if u.RawQuery != "" {
		return nil, fmt.Errorf("bucket URL %q: file:// takes no parameters", rawURL)
	}
	if u.Path == "" || u.Path == "/" {
		return nil, fmt.Errorf("bucket URL %q: directory is missing (want file:///absolute/dir)", rawURL)
	}
	b, err := file.New(u.Path)
	if err != nil {
		return nil, fmt.Errorf("bucket URL %q: %w", rawURL, err)
	}
	return b, nil
}
