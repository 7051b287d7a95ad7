package migrations

import (
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	ms, err := Load(fstest.MapFS{
		"m/0002_b.sql": {Data: []byte("two")},
		"m/0001_a.sql": {Data: []byte("one")},
		"m/0010_c.sql": {Data: []byte("ten")},
	}, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 || ms[0].SQL != "one" || ms[1].Version != 2 || ms[2].Name != "0010_c.sql" || Latest(ms) != 10 {
		t.Fatalf("Load = %+v", ms)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"bad name":       {"m/x_a.sql": {}},
		"shared version": {"m/1_a.sql": {}, "m/0001_b.sql": {}},
	} {
		if _, err := Load(fsys, "m"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
