package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// AgentProcess is one `silt` process a test starts, kills, pauses and
// starts again on the same listen address. Its output, across restarts, is
// kept in Logs.
type AgentProcess struct {
	// Addr is the Kafka listen address.
	Addr string

	bin  string
	args []string
	env  []string
	logs SyncBuffer

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd has exited
	exitErr  error
	signaled bool // the test killed or stopped this incarnation
	paused   bool
}

// NewAgentProcess describes `bin args... --listen addr --http-listen
// 127.0.0.1:0` run with env added to the test's environment. It does not
// start it.
func NewAgentProcess(bin, addr string, env []string, args ...string) *AgentProcess {
	return &AgentProcess{Addr: addr, bin: bin, args: args, env: env}
}

// Start starts the process and waits until it answers Kafka requests, it
// exits, or ctx ends. Starting a running process does nothing.
func (p *AgentProcess) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.cmd != nil {
		select {
		case <-p.exited:
		default:
			p.mu.Unlock()
			return nil
		}
	}
	args := append(append([]string(nil), p.args...), "--listen", p.Addr, "--http-listen", "127.0.0.1:0")
	cmd := exec.Command(p.bin, args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = &p.logs, &p.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(&p.logs, "---- %s: start %s\n", time.Now().Format(time.RFC3339Nano), p.Addr)
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		return fmt.Errorf("start silt: %w", err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited, p.exitErr, p.signaled, p.paused = cmd, exited, nil, false, false
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		fmt.Fprintf(&p.logs, "---- %s: exited: %v\n", time.Now().Format(time.RFC3339Nano), err)
		close(exited)
	}()
	p.mu.Unlock()

	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := cl.Ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("silt exited during start: %v", p.ExitErr())
		case <-ctx.Done():
			return fmt.Errorf("silt did not answer: %w (last: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL (resuming a paused process first is not needed) and
// waits for the exit.
func (p *AgentProcess) Kill() { p.signal(syscall.SIGKILL, 0) }

// Stop sends SIGTERM and waits up to grace for the exit, then kills. It
// returns an error unless the process exited 0 within grace.
func (p *AgentProcess) Stop(grace time.Duration) error {
	return p.signal(syscall.SIGTERM, grace)
}

func (p *AgentProcess) signal(sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	if cmd == nil {
		p.mu.Unlock()
		return nil
	}
	p.signaled = true
	if p.paused {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		p.paused = false
	}
	p.mu.Unlock()
	_ = cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL {
		<-exited
		return nil
	}
	select {
	case <-exited:
		if err := p.ExitErr(); err != nil {
			return fmt.Errorf("silt exited with %v after %v", err, sig)
		}
		return nil
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("silt did not exit within %v of %v", grace, sig)
	}
}

// Pause stops the process with SIGSTOP; Resume continues it.
func (p *AgentProcess) Pause() { p.pauseResume(true) }

// Resume continues a paused process with SIGCONT.
func (p *AgentProcess) Resume() { p.pauseResume(false) }

func (p *AgentProcess) pauseResume(pause bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.paused == pause {
		return
	}
	sig := syscall.SIGCONT
	if pause {
		sig = syscall.SIGSTOP
	}
	_ = p.cmd.Process.Signal(sig)
	p.paused = pause
}

// Exited is closed when the current incarnation has exited (nil before the
// first Start).
func (p *AgentProcess) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// ExitErr is how the current incarnation exited.
func (p *AgentProcess) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr
}

// Crashed reports whether the current incarnation exited without the test
// killing or stopping it, and how.
func (p *AgentProcess) Crashed() (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited == nil || p.signaled {
		return false, nil
	}
	select {
	case <-p.exited:
		err := p.exitErr
		if err == nil {
			err = errors.New("exit status 0")
		}
		return true, err
	default:
		return false, nil
	}
}

// Logs returns everything the process wrote, across restarts.
func (p *AgentProcess) Logs() string { return p.logs.String() }
