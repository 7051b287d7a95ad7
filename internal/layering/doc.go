// Package layering holds no code, only a test: the import rules between
// Silt's layers (see its allow-list table), checked with `go list` so a
// package that reaches upwards fails `go test ./...` instead of waiting for a
// reviewer or an import cycle.
package layering
