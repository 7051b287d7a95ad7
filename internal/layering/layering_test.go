package layering

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A layer is a set of packages and the Silt packages their non-test code
// may depend on, directly or through other packages. Patterns are module
// relative: "x" is package x alone, "x/..." is x and everything under it.
type layer struct {
	name      string
	pkgs      []string
	mayImport []string
}

// services are the packages agent's handlers call. They depend on storage
// and on each other, never on agent or a command.
var services = []string{"ingest/...", "partition/...", "group/...", "txn/...", "cluster/...", "jobs/...", "auth/...", "quota/..."}

// storage is everything below the services.
var storage = []string{"segment/...", "objectstore/...", "metastore/...", "cache/..."}

// layers is the allow-list, lowest first. Packages that do not exist yet
// simply match nothing.
var layers = []layer{
	// wire speaks the Kafka protocol and knows nothing about storage or
	// handlers: agent registers handlers with it, not the other way round.
	{name: "wire", pkgs: []string{"wire/..."}, mayImport: nil},
	// The segment format is read by analytics jobs without the agents; its
	// Reader opens objects through the Bucket interface and nothing more.
	{name: "segment", pkgs: []string{"segment/..."}, mayImport: []string{"objectstore"}},
	// The Bucket interface, its drivers, decorators and acceptance suite, and
	// bucketurl, which picks a driver: a closed family.
	{name: "objectstore", pkgs: []string{"objectstore/..."}, mayImport: []string{"objectstore/..."}},
	// The metadata interface, its two stores, their shared internals and
	// migrations, the conformance suite and metastoreurl: a closed family.
	{name: "metastore", pkgs: []string{"metastore/..."}, mayImport: []string{"metastore/..."}},
	// The block cache is a decorator over a Bucket: it needs the interface,
	// not a driver.
	{name: "cache", pkgs: []string{"cache/..."}, mayImport: []string{"objectstore"}},
	// The services own the write pipeline, read state, coordinators,
	// membership, background jobs, security and client quotas; they use the protocol's
	// types (auth runs in wire's handshake), storage and one another, and
	// are called by agent, never calling it.
	{name: "services", pkgs: services, mayImport: slices.Concat([]string{"wire/..."}, storage, services)},
}

// top is where everything else lives: the handlers and process wiring,
// the commands, test and build helpers. Nothing in a layer may import them;
// they may import anything. internal/testenv starts Postgres, MinIO and
// silt processes for tests and the benchmark, so it reaches everywhere.
var top = []string{"agent/...", "cmd/...", "internal/...", "deploy/..."}

func TestLayering(t *testing.T) {
	root := moduleRoot(t)
	module := modulePath(t, root)
	for _, p := range listPackages(t, root) {
		rel, ok := relative(module, p.ImportPath)
		if !ok {
			t.Errorf("go list returned %s, outside module %s", p.ImportPath, module)
			continue
		}
		l, placed := layerOf(rel)
		if !placed {
			if !matchAny(top, rel) {
				t.Errorf("%s is in no layer and not at the top: add it to a row of the table in %s", rel, "internal/layering/layering_test.go")
			}
			continue
		}
		for _, dep := range p.Deps {
			drel, ok := relative(module, dep)
			if !ok || matchAny(l.pkgs, drel) || matchAny(l.mayImport, drel) {
				continue
			}
			how := "depends on"
			if slices.Contains(p.Imports, dep) {
				how = "imports"
			}
			t.Errorf("%s (layer %s) %s %s, which it may not (allowed: its own layer and %v)", rel, l.name, how, drel, l.mayImport)
		}
	}
}

// TestMatch pins the pattern rules the table relies on.
func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, pkg string
		want         bool
	}{
		{"objectstore", "objectstore", true},
		{"objectstore", "objectstore/s3", false},
		{"objectstore/...", "objectstore", true},
		{"objectstore/...", "objectstore/s3", true},
		{"objectstore/...", "objectstorefoo", false},
		{"cluster/...", "cluster/placement", true},
		{"agent/...", "agentx", false},
	}
	for _, c := range cases {
		if got := match(c.pattern, c.pkg); got != c.want {
			t.Errorf("match(%q, %q) = %v, want %v", c.pattern, c.pkg, got, c.want)
		}
	}
}

func layerOf(rel string) (layer, bool) {
	for _, l := range layers {
		if matchAny(l.pkgs, rel) {
			return l, true
		}
	}
	return layer{}, false
}

func matchAny(patterns []string, pkg string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(p, pkg) })
}

func match(pattern, pkg string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == prefix || strings.HasPrefix(pkg, prefix+"/")
	}
	return pkg == pattern
}

// relative returns importPath relative to module, or false for packages of
// other modules and the standard library.
func relative(module, importPath string) (string, bool) {
	if importPath == module {
		return ".", true
	}
	rel, ok := strings.CutPrefix(importPath, module+"/")
	return rel, ok
}

// goPackage is what the test reads of `go list -json`: Imports and Deps
// are the non-test build's; TestImports and XTestImports, deliberately not
// read, may reach anywhere (conformance suites, test environments).
type goPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T, root string) []goPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./... in %s: %v\n%s", root, err, stderr.Bytes())
	}
	var pkgs []goPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list ./... found no packages")
	}
	return pkgs
}

// moduleRoot walks up from the test's directory to the one holding go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

func modulePath(t *testing.T, root string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	t.Fatalf("no module line in %s", filepath.Join(root, "go.mod"))
	return ""
}
