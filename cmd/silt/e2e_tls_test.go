package main

import (
	"context"
	"crypto/tls"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/internal/testcerts"
	"github.com/siltstream/silt/internal/testenv"
)

// TestBinaryListeners runs `silt dev` with a PLAINTEXT and an SSL listener
// set by flags: both serve, each advertising its own address, and a record
// produced over SSL is read back over PLAINTEXT.
func TestBinaryListeners(t *testing.T) {
	bin := buildSilt(t)
	ca := testcerts.NewCA(t, "ca")
	srv := ca.Server(t, "agent")
	plain, ssl := freePort(t), freePort(t)
	logs := &testenv.SyncBuffer{}
	cmd := exec.Command(bin, "dev", "--data-dir", filepath.Join(t.TempDir(), "data"), "--http-listen", "",
		"--listeners", "PLAINTEXT://"+plain+",SSL://"+ssl,
		"--tls-cert-file", srv.CertFile, "--tls-key-file", srv.KeyFile, "--log-format", "text")
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("silt dev output:\n%s", logs.String())
		}
	})

	tlsConf := &tls.Config{RootCAs: ca.Pool()}
	client := func(addr string, conf *tls.Config, opts ...kgo.Opt) *kgo.Client {
		opts = append(opts, kgo.SeedBrokers(addr))
		if conf != nil {
			opts = append(opts, kgo.DialTLSConfig(conf))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	poll.Until(t, "silt dev to serve its PLAINTEXT listener", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("silt dev exited: %v\n%s", err, logs.String())
		default:
		}
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		defer pcancel()
		return client(plain, nil).Ping(pctx) == nil
	})
	for _, l := range []struct {
		addr string
		conf *tls.Config
	}{{plain, nil}, {ssl, tlsConf}} {
		md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, client(l.addr, l.conf))
		if err != nil {
			t.Fatalf("Metadata on %s: %v", l.addr, err)
		}
		if len(md.Brokers) != 1 || net.JoinHostPort(md.Brokers[0].Host, strconv.Itoa(int(md.Brokers[0].Port))) != l.addr {
			t.Errorf("Metadata on %s lists %+v, want that address", l.addr, md.Brokers)
		}
	}
	p := client(ssl, tlsConf, kgo.DefaultProduceTopic("over-ssl"), kgo.AllowAutoTopicCreation())
	if err := p.ProduceSync(ctx, kgo.StringRecord("secret")).FirstErr(); err != nil {
		t.Fatalf("produce over SSL: %v", err)
	}
	if r := consumeOne(t, plain, "over-ssl"); string(r.Value) != "secret" {
		t.Errorf("consumed %q over PLAINTEXT, want %q", r.Value, "secret")
	}
}
