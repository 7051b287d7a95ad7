package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseFlagsSASLSSL(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !o.saslSSL {
		t.Errorf("--sasl-ssl defaults to false; the SASL_SSL row should be measured by default")
	}
	o, err = parseFlags([]string{"--sasl-ssl=false"})
	if err != nil {
		t.Fatal(err)
	}
	if o.saslSSL {
		t.Errorf("--sasl-ssl=false did not turn it off")
	}
}

// The SASL_SSL row has the plaintext figure as its floor and their ratio,
// and a note says what was compared.
func TestReportSASLSSLRow(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := newReport(o)
	r.throughput = &throughputResult{bytes: 200e6, records: 195312, elapsed: 2 * time.Second, producers: 4, idempotent: true}
	r.saslSSL = &saslSSLResult{
		throughputResult: throughputResult{bytes: 170e6, records: 166015, elapsed: 2 * time.Second, producers: 4, idempotent: true},
		topic:            "t-sasl-ssl",
		tls:              "TLS 1.3 TLS_AES_128_GCM_SHA256 (5 connections)",
	}
	var b bytes.Buffer
	r.print(&b)
	out := b.String()

	row := regexp.MustCompile(`(?m)^produce throughput, max, over SASL_SSL \(SCRAM-SHA-512\)\s+85\.0 MB/s \(83008 records/s\)\s+100\.0 MB/s plaintext\s+0\.85$`)
	if !row.MatchString(out) {
		t.Errorf("no SASL_SSL row with value, plaintext floor and ratio:\n%s", out)
	}
	for _, want := range []string{"SASL_SSL: the throughput run repeated", "t-sasl-ssl", "TLS 1.3 TLS_AES_128_GCM_SHA256"} {
		if !strings.Contains(out, want) {
			t.Errorf("notes lack %q:\n%s", want, out)
		}
	}
}

// Without a plaintext figure the row still prints, with no floor or ratio.
func TestReportSASLSSLRowWithoutPlaintext(t *testing.T) {
	r := newReport(options{})
	r.saslSSL = &saslSSLResult{throughputResult: throughputResult{bytes: 10e6, records: 1, elapsed: time.Second}}
	var b bytes.Buffer
	r.print(&b)
	row := regexp.MustCompile(`(?m)^produce throughput, max, over SASL_SSL \(SCRAM-SHA-512\)\s+10\.0 MB/s \(1 records/s\)\s+-\s+-$`)
	if !row.MatchString(b.String()) {
		t.Errorf("row without plaintext figure:\n%s", b.String())
	}
}
