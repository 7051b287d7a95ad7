package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/siltstream/silt/metastore/metastoreurl"
)

func newMigrateCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the metadata-store migrations embedded in this binary",
		Long: `Apply every migration the metastore at metastore.url lacks and print the
schema version. Postgres migrations run under an advisory lock, so it is safe
to run while agents start (they migrate on start too).`,
		Args: cobra.NoArgs,
	}
	loader := newConfigLoader(cmd.Flags(), migrateKeys())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		raw, err := loader.load()
		if err != nil {
			return err
		}
		metaURL := raw["metastore.url"]
		if metaURL == "" {
			return configErrorf("metastore.url: required (--metastore-url or SILT_METASTORE_URL)")
		}
		p := parser{raw: raw}
		level, format := p.logging(isTerminal(stderr))
		if p.err != nil {
			return p.err
		}
		log := newLogger(stderr, level, format)
		log.Debug("migrating", "metastore.url", redactURL(metaURL))
		if err := metastoreurl.Migrate(cmd.Context(), metaURL); err != nil {
			return fmt.Errorf("migrate metastore %s: %w", redactURL(metaURL), err)
		}
		v, err := metastoreurl.LatestVersion(metaURL)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "metastore %s: schema version %d\n", redactURL(metaURL), v)
		return err
	}
	return cmd
}
