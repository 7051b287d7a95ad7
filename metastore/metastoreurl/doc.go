// Package metastoreurl opens a metastore.Store from the metastore.url
// setting: postgres://… or postgresql://… for the postgres store, and
// sqlite:///abs/path/meta.db, sqlite://relative/meta.db or sqlite:path for
// the embedded sqlite store.
package metastoreurl
