package s3

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/siltstream/silt/objectstore"
)

// Config selects a bucket and tunes the driver. Zero values take the
// defaults of DefaultConfig.
type Config struct {
	// Bucket is the bucket name. Required.
	Bucket string
	// Prefix scopes every key: key k is stored as Prefix + "/" + k.
	// Leading and trailing slashes are ignored. Empty means the bucket root.
	Prefix string
	// Region is the bucket's region. Empty means the default chain's
	// (AWS_REGION, shared config), or "us-east-1" when Endpoint is set.
	Region string
	// Endpoint overrides the S3 endpoint, e.g. "http://127.0.0.1:9000" for
	// MinIO. Empty means AWS.
	Endpoint string
	// PathStyle addresses the bucket as endpoint/bucket instead of
	// bucket.endpoint, which MinIO and most S3-compatible stores need.
	PathStyle bool
	// CAFile is a PEM file of CA certificates trusted, besides the
	// system's, for an https:// Endpoint signed by a private CA.
	CAFile string

	// MaxAttempts bounds the attempts per request, the first included.
	MaxAttempts int
	// RetryBaseDelay is the backoff before the first retry; it doubles with
	// every attempt, up to MaxRetryBackoff, and the actual delay is drawn
	// uniformly from [0, that bound) (full jitter).
	RetryBaseDelay time.Duration
	// MaxRetryBackoff caps the delay between two attempts.
	MaxRetryBackoff time.Duration
	// ResponseHeaderTimeout bounds how long one attempt waits for the
	// server to start answering after the request is sent; a stuck
	// connection becomes a retryable timeout instead of a hang.
	ResponseHeaderTimeout time.Duration
}

// DefaultConfig returns the defaults used for zero Config fields.
func DefaultConfig() Config {
	return Config{
		MaxAttempts:           8,
		RetryBaseDelay:        100 * time.Millisecond,
		MaxRetryBackoff:       5 * time.Second,
		ResponseHeaderTimeout: time.Minute,
	}
}

// Bucket is an objectstore.Bucket on S3.
type Bucket struct {
	client    *awss3.Client
	bucket    string
	prefix    string // "" or ending in "/"
	transport *http.Transport
}

var _ objectstore.Bucket = (*Bucket)(nil)

// New returns a driver for cfg.Bucket. It loads credentials and region from
// the default chain but makes no request: use CheckBucket to verify that the
// bucket exists and the credentials are accepted.
func New(ctx context.Context, cfg Config) (*Bucket, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3: bucket name is empty")
	}
	def := DefaultConfig()
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = def.MaxAttempts
	}
	if cfg.RetryBaseDelay <= 0 {
		cfg.RetryBaseDelay = def.RetryBaseDelay
	}
	if cfg.MaxRetryBackoff <= 0 {
		cfg.MaxRetryBackoff = def.MaxRetryBackoff
	}
	if cfg.ResponseHeaderTimeout <= 0 {
		cfg.ResponseHeaderTimeout = def.ResponseHeaderTimeout
	}

	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		if cfg.Endpoint == "" {
			return nil, fmt.Errorf("s3: no region for bucket %q: set region= in the bucket URL or AWS_REGION", cfg.Bucket)
		}
		awsCfg.Region = "us-east-1" // what S3-compatible stores expect by default
	}
	// Only send checksums S3 requires: many S3-compatible stores reject or
	// mishandle the SDK's default streaming CRC32 trailers. The SigV4
	// payload hash still covers the body.
	awsCfg.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	awsCfg.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = cfg.ResponseHeaderTimeout
	if cfg.CAFile != "" {
		roots, err := loadRoots(cfg.CAFile)
		if err != nil {
			return nil, err
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	transport.MaxIdleConnsPerHost = 64
	awsCfg.HTTPClient = &http.Client{Transport: transport}

	backoff := jitterBackoff{base: cfg.RetryBaseDelay, max: cfg.MaxRetryBackoff}
	client := awss3.NewFromConfig(awsCfg, func(o *awss3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = cfg.MaxAttempts
			so.MaxBackoff = cfg.MaxRetryBackoff
			so.Backoff = backoff
			// The SDK's client-side retry quota would turn a long throttling
			// episode into hard failures; the attempt limit and backoff bound
			// the load instead, and callers retry above us.
			so.RateLimiter = ratelimit.None
		})
	})

	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &Bucket{client: client, bucket: cfg.Bucket, prefix: prefix, transport: transport}, nil
}

// jitterBackoff is exponential backoff with full jitter: attempt n waits a
// uniform random time in [0, min(base*2^(n-1), max)).
type jitterBackoff struct{ base, max time.Duration }

func (j jitterBackoff) BackoffDelay(attempt int, _ error) (time.Duration, error) {
	bound := j.max
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 30 {
		if d := j.base << (attempt - 1); d > 0 && d < bound {
			bound = d
		}
	}
	return time.Duration(rand.Int64N(int64(bound) + 1)), nil
}

// key returns the object key for a Bucket key.
func (b *Bucket) key(key string) (string, error) {
	if err := objectstore.ValidateKey(key); err != nil {
		return "", err
	}
	return b.prefix + key, nil
}

// CheckBucket verifies that the bucket exists and the credentials may use
// it. Its errors satisfy objectstore.IsBucketNotFound or IsAccessDenied and
// say so plainly; call it at startup.
func (b *Bucket) CheckBucket(ctx context.Context) error {
	_, err := b.client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String(b.bucket)})
	if err == nil {
		return nil
	}
	// HeadBucket answers without a body, so a missing bucket is a bare 404
	// rather than NoSuchBucket.
	if code, status := errorCode(err); status == http.StatusNotFound || code == "NotFound" {
		return b.bucketNotFound("check bucket", err)
	}
	return b.classify("check bucket", "", err)
}

// Put uploads data with one PutObject, which S3 applies atomically.
func (b *Bucket) Put(ctx context.Context, key string, data []byte) error {
	k, err := b.key(key)
	if err != nil {
		return err
	}
	_, err = b.client.PutObject(ctx, &awss3.PutObjectInput{
		Bucket:        aws.String(b.bucket),
		Key:           aws.String(k),
		Body:          bytes.NewReader(data), // seekable, so retries can rewind
		ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		return b.classify("put", key, err)
	}
	return nil
}

// maxBodyAttempts bounds re-issuing a GetObject whose body failed half way;
// the SDK retries failed requests, but not a response body cut short.
const maxBodyAttempts = 3

// Get reads the range with one ranged GetObject.
func (b *Bucket) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	k, err := b.key(key)
	if err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("s3 get %s: negative offset %d: %w", key, off, objectstore.ErrInvalidRange)
	}
	if length == 0 {
		// S3 cannot express an empty range; check existence and bounds.
		attrs, err := b.Head(ctx, key)
		if err != nil {
			return nil, err
		}
		if _, _, err := objectstore.ClipRange(attrs.Size, off, 0); err != nil {
			return nil, fmt.Errorf("s3 get %s: %w", key, err)
		}
		return []byte{}, nil
	}
	in := &awss3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(k)}
	switch {
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, off+length-1))
	case off > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", off))
	}
	for attempt := 1; ; attempt++ {
		data, err := b.get(ctx, in)
		if err == nil {
			return data, nil
		}
		var bodyErr *bodyError
		if errors.As(err, &bodyErr) && attempt < maxBodyAttempts && ctx.Err() == nil {
			continue
		}
		if code, status := errorCode(err); code == "InvalidRange" || status == http.StatusRequestedRangeNotSatisfiable {
			return b.invalidRange(ctx, key, off, err)
		}
		return nil, b.classify("get", key, err)
	}
}

type bodyError struct{ err error }

func (e *bodyError) Error() string { return "read response body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

func (b *Bucket) get(ctx context.Context, in *awss3.GetObjectInput) ([]byte, error) {
	out, err := b.client.GetObject(ctx, in)
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	var buf bytes.Buffer
	if n := aws.ToInt64(out.ContentLength); n > 0 {
		buf.Grow(int(n))
	}
	if _, err := io.Copy(&buf, out.Body); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, &bodyError{err}
	}
	if n := out.ContentLength; n != nil && int64(buf.Len()) != *n {
		return nil, &bodyError{fmt.Errorf("got %d bytes, Content-Length %d", buf.Len(), *n)}
	}
	return buf.Bytes(), nil
}

// invalidRange handles a 416. S3 answers 416 both for off > size and for
// off == size (including any range on an empty object), but the contract
// makes off == size a valid empty read, so look at the object's size.
func (b *Bucket) invalidRange(ctx context.Context, key string, off int64, rangeErr error) ([]byte, error) {
	attrs, err := b.Head(ctx, key)
	if err != nil {
		return nil, err
	}
	if off == attrs.Size {
		return []byte{}, nil
	}
	if off < attrs.Size {
		// The object grew between the two requests (an overwrite); the
		// caller's view is stale either way, so report what S3 said.
		return nil, b.classify("get", key, rangeErr)
	}
	return nil, fmt.Errorf("s3 get %s: offset %d outside object of %d bytes: %w", key, off, attrs.Size, objectstore.ErrInvalidRange)
}

// Head returns the object's size and modification time.
func (b *Bucket) Head(ctx context.Context, key string) (objectstore.Attrs, error) {
	k, err := b.key(key)
	if err != nil {
		return objectstore.Attrs{}, err
	}
	out, err := b.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(k)})
	if err != nil {
		return objectstore.Attrs{}, b.classify("head", key, err)
	}
	return objectstore.Attrs{Key: key, Size: aws.ToInt64(out.ContentLength), LastModified: aws.ToTime(out.LastModified)}, nil
}

// Delete removes the object; S3 reports success for a missing key.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	k, err := b.key(key)
	if err != nil {
		return err
	}
	_, err = b.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(k)})
	if err != nil {
		err = b.classify("delete", key, err)
		if objectstore.IsNotFound(err) {
			return nil
		}
		return err
	}
	return nil
}

// List pages through ListObjectsV2, which returns keys in UTF-8 binary
// order, the same as Go's string order.
func (b *Bucket) List(ctx context.Context, prefix string, fn func(objectstore.Attrs) error) error {
	p := awss3.NewListObjectsV2Paginator(b.client, &awss3.ListObjectsV2Input{
		Bucket: aws.String(b.bucket),
		Prefix: aws.String(b.prefix + prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return b.classify("list", prefix, err)
		}
		for _, obj := range page.Contents {
			key, ok := strings.CutPrefix(aws.ToString(obj.Key), b.prefix)
			if !ok || key == "" {
				continue
			}
			attrs := objectstore.Attrs{Key: key, Size: aws.ToInt64(obj.Size), LastModified: aws.ToTime(obj.LastModified)}
			if err := fn(attrs); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close releases idle connections.
func (b *Bucket) Close() error {
	b.transport.CloseIdleConnections()
	return nil
}

// loadRoots is the system's CA pool plus the certificates of a PEM file.
func loadRoots(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("s3: CA file: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("s3: CA file %s holds no PEM certificate", caFile)
	}
	return roots, nil
}
