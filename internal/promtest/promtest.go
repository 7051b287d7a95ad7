// Package promtest reads Prometheus metrics in tests as a flat map from a
// series name (`name{label="value",...}`, labels sorted by name) to its
// value. Histograms contribute name_count and name_sum; summaries the same.
package promtest

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Gather flattens what g gathers.
func Gather(t testing.TB, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	return Flatten(mfs)
}

// Scrape fetches url (a /metrics endpoint) and flattens the text it serves.
func Scrape(t testing.TB, url string) map[string]float64 {
	t.Helper()
	got, err := ScrapeErr(url)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// ScrapeErr is Scrape returning its error, for polling loops.
func ScrapeErr(url string) (map[string]float64, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("scrape %s: %s: %s", url, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse metrics from %s: %w", url, err)
	}
	mfs := make([]*dto.MetricFamily, 0, len(byName))
	for _, mf := range byName {
		mfs = append(mfs, mf)
	}
	return Flatten(mfs), nil
}

// Flatten turns metric families into series → value.
func Flatten(mfs []*dto.MetricFamily) map[string]float64 {
	out := make(map[string]float64)
	for _, mf := range mfs {
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			labels := series(m.GetLabel())
			switch {
			case m.Counter != nil:
				out[name+labels] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[name+labels] = m.GetGauge().GetValue()
			case m.Untyped != nil:
				out[name+labels] = m.GetUntyped().GetValue()
			case m.Histogram != nil:
				out[name+"_count"+labels] = float64(m.GetHistogram().GetSampleCount())
				out[name+"_sum"+labels] = m.GetHistogram().GetSampleSum()
			case m.Summary != nil:
				out[name+"_count"+labels] = float64(m.GetSummary().GetSampleCount())
				out[name+"_sum"+labels] = m.GetSummary().GetSampleSum()
			}
		}
	}
	return out
}

func series(lps []*dto.LabelPair) string {
	if len(lps) == 0 {
		return ""
	}
	parts := make([]string, 0, len(lps))
	for _, lp := range lps {
		parts = append(parts, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// Families returns the distinct metric family names in a flattened map,
// with histogram suffixes folded back (name_count, name_sum → name).
func Families(flat map[string]float64) map[string]bool {
	out := make(map[string]bool)
	for s := range flat {
		name, _, _ := strings.Cut(s, "{")
		out[name] = true
		for _, suf := range []string{"_count", "_sum"} {
			if base, ok := strings.CutSuffix(name, suf); ok {
				out[base] = true
			}
		}
	}
	return out
}
