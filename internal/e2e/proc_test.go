package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltstream/silt/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// agentProc is one running silt process.
type agentProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	args   []string
	env    []string
	logs   *testenv.SyncBuffer
	exited chan struct{}
	err    error
}

// startSilt runs `silt <args...> --listen addr` and waits until it answers
// Kafka requests.
func startSilt(t *testing.T, addr string, env []string, args ...string) *agentProc {
	t.Helper()
	p := &agentProc{t: t, addr: addr, args: args, env: env}
	p.start()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *agentProc) start() {
	t := p.t
	t.Helper()
	args := append(append([]string(nil), p.args...), "--listen", p.addr, "--http-listen", "127.0.0.1:0")
	p.cmd = exec.Command(testenv.SiltBinary(t), args...)
	p.cmd.Env = append(os.Environ(), p.env...)
	p.logs = &testenv.SyncBuffer{}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start silt: %v", err)
	}
	p.exited = make(chan struct{})
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := cl.Ping(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-p.exited:
			t.Fatalf("silt exited during start: %v\n%s", p.err, p.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("silt did not answer within 60s: %v\n%s", err, p.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *agentProc) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.err != nil {
			p.t.Fatalf("silt exited with %v after SIGTERM\n%s", p.err, p.logs)
		}
	case <-time.After(60 * time.Second):
		p.t.Fatalf("silt did not exit within 60s of SIGTERM\n%s", p.logs)
	}
}

// kill sends SIGKILL and waits.
func (p *agentProc) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}
