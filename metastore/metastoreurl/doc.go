// Package metastoreurl opens a metastore.Store from the metastore.url
// setting: postgres://… or postgresql://… for the postgres store, and
// sqlite:///abs/path/meta.db, sqlite://relative/meta.db or sqlite:path for
// the embedded sqlite store. It is the one place that maps a URL's scheme to
// a store: Open, Migrate and LatestVersion (the schema version Migrate
// reaches, which /readyz and `silt migrate` report) all decide here.
package metastoreurl
