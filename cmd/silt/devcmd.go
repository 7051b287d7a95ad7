package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

func newDevCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run one agent on local files: nothing else to install",
		Long: `Run one agent listening on 127.0.0.1:9092 with a file:// bucket and a
SQLite metastore under --data-dir (default ./silt-data), persistent across
restarts, with topics created on first use. It is the same agent code as
silt agent; every other key can still be set by flag, environment or file.`,
		Args: cobra.NoArgs,
	}
	loader := newConfigLoader(cmd.Flags(), devKeys())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		raw, err := loader.load()
		if err != nil {
			return err
		}
		dataDir := raw["data.dir"]
		if dataDir == "" {
			return configErrorf("data.dir: must not be empty")
		}
		if dataDir, err = filepath.Abs(dataDir); err != nil {
			return configErrorf("data.dir: %v", err)
		}
		ignored := []string{}
		for _, key := range []string{"bucket.url", "metastore.url"} {
			if loader.isSet(key) {
				ignored = append(ignored, key)
			}
		}
		raw["bucket.url"] = localURL("file", filepath.Join(dataDir, "bucket"))
		// metastoreurl takes the sqlite path verbatim (no %-unescaping).
		raw["metastore.url"] = "sqlite://" + filepath.ToSlash(filepath.Join(dataDir, "meta.db"))
		s, err := parseSettings(raw, isTerminal(stderr))
		if err != nil {
			return err
		}
		log := newLogger(stderr, s.LogLevel, s.LogFormat)
		if len(ignored) > 0 {
			log.Warn("silt dev keeps its bucket and metastore under data.dir; use silt agent for other stores", "ignored", ignored)
		}
		if err := os.MkdirAll(filepath.Join(dataDir, "bucket"), 0o755); err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
		return runWithSignals(cmd.Context(), log, func(ctx context.Context) error {
			return serveAgent(ctx, s, log, func(addr net.Addr) {
				fmt.Fprintf(stdout, "silt dev: Kafka on %s, data in %s (Ctrl-C to stop)\n", addr, dataDir)
			})
		})
	}
	return cmd
}

// localURL builds scheme:///abs/path (file://, sqlite://) from an absolute
// local path, escaping what needs escaping.
func localURL(scheme, path string) string {
	p := filepath.ToSlash(path)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // Windows drive letters: file:///C:/...
	}
	return (&url.URL{Scheme: scheme, Path: p}).String()
}
