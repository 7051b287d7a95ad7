package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
)

func TestStatusServer(t *testing.T) {
	s, err := startStatusServer("127.0.0.1:0", false, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	base := "http://" + s.ln.Addr().String()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	expect := func(path string, want int) string {
		t.Helper()
		code, body := get(path)
		if code != want {
			t.Errorf("GET %s: %d, want %d (%s)", path, code, want, body)
		}
		return body
	}

	expect("/livez", 200)
	expect("/readyz", 503)
	s.setServing(nil, statusInfo{AgentID: "a1", ClusterID: "c1", Listen: "127.0.0.1:9092"})
	expect("/readyz", 200)
	var st struct {
		AgentID string `json:"agent_id"`
		State   string `json:"state"`
	}
	if err := json.Unmarshal([]byte(expect("/status", 200)), &st); err != nil || st.AgentID != "a1" || st.State != "serving" {
		t.Errorf("/status: %+v, %v", st, err)
	}
	s.setDraining()
	if body := expect("/readyz", 503); body != "draining\n" {
		t.Errorf("/readyz while draining: %q", body)
	}
	expect("/livez", 200)
	expect("/debug/pprof/", 404) // off unless http.pprof
	expect("/nope", 404)

	p, err := startStatusServer("127.0.0.1:0", true, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	base = "http://" + p.ln.Addr().String()
	expect("/debug/pprof/", 200)
	expect("/debug/pprof/cmdline", 200)
}
