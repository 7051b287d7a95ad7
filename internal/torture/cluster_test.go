package torture

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/siltstream/silt/internal/faultproxy"
	"github.com/siltstream/silt/internal/testenv"
)

// membershipTTL is the agents' membership TTL; pauses last longer.
const membershipTTL = 2 * time.Second

// cluster is the system under test: Postgres behind a TCP proxy, MinIO
// behind an S3 proxy, and agents each behind a TCP proxy that it
// advertises, so that every connection can be cut or held.
type cluster struct {
	t      *testing.T
	bin    string
	env    []string
	pg     *testenv.StoppablePostgres
	pgPx   *faultproxy.TCP // the agents reach Postgres through it
	mio    *testenv.StoppableMinIO
	s3     *faultproxy.S3
	bucket string
	dbURL  string
	v      *violations

	mu     sync.Mutex
	agents []*agent // every agent ever started, in order
}

type agentState int

const (
	agentUp agentState = iota
	agentDown
	agentPaused
	agentGone // scaled in
)

// agent is one agent of the cluster. A fault takes it (busy) while it acts
// on it, so that two faults never act on one agent at once.
type agent struct {
	id    string
	index int
	base  bool // started with the cluster; never scaled in
	proc  *testenv.AgentProcess
	proxy *faultproxy.TCP
	state agentState
	busy  bool
}

func startCluster(t *testing.T, n int, v *violations) *cluster {
	t.Helper()
	c := &cluster{t: t, bin: testenv.SiltBinary(t), v: v}
	c.pg = testenv.NewStoppablePostgres(t)
	c.dbURL = c.pg.URL("postgres")
	var err error
	if c.pgPx, err = faultproxy.NewTCP(fmt.Sprintf("127.0.0.1:%d", c.pg.Port)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.pgPx.Close)
	agentDBURL := fmt.Sprintf("postgres://silt@%s/postgres?sslmode=disable", c.pgPx.Addr())
	c.mio = testenv.NewStoppableMinIO(t)
	c.bucket = "torture"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.mio.CreateBucket(ctx, c.bucket); err != nil {
		t.Fatal(err)
	}
	if c.s3, err = faultproxy.NewS3(c.mio.Endpoint); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.s3.Close)
	bucketURL := fmt.Sprintf("s3://%s/%s?region=%s&endpoint=%s&path_style=true",
		c.bucket, testenv.MinIOBucketPrefix, testenv.MinIORegion, c.s3.Endpoint())
	c.env = append(c.mio.Env(), "SILT_BUCKET_URL="+bucketURL, "SILT_METASTORE_URL="+agentDBURL)
	t.Cleanup(c.shutdown)
	for i := 0; i < n; i++ {
		a, err := c.addAgent(ctx, true)
		if err != nil {
			t.Fatalf("start agent %d: %v\n%s", i, err, a.proc.Logs())
		}
	}
	return c
}

// addAgent starts a new agent (scale out).
func (c *cluster) addAgent(ctx context.Context, base bool) (*agent, error) {
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	px, err := faultproxy.NewTCP(listen)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	a := &agent{index: len(c.agents), base: base, proxy: px, busy: true}
	a.id = fmt.Sprintf("agent-%d", a.index)
	c.agents = append(c.agents, a)
	c.mu.Unlock()
	a.proc = testenv.NewAgentProcess(c.bin, listen, c.env, "agent",
		"--agent-id", a.id, "--advertise", px.Addr(),
		"--membership-heartbeat", "250ms", "--membership-ttl", membershipTTL.String(),
		"--shutdown-grace", "20s",
		// Orphans become collectable as early as the agent allows, so a
		// flush whose commit is stuck behind outages races the garbage
		// collector, which runs every 2 s and deletes after a 3 s grace:
		// the checker's dangling-row check covers the collector too.
		"--orphan-min-age", "1m", "--janitor-interval", "5s",
		"--compaction-interval", "2s", "--gc-grace", "3s",
		"--log-format", "text")
	if err := c.startAgent(ctx, a); err != nil {
		c.release(a, agentDown) // heal starts it
		return a, err
	}
	c.release(a, agentUp)
	return a, nil
}

// startAgent starts a's process, again and again if it exits during its
// start (as a supervisor would: an agent may refuse to start while
// Postgres is down), until ctx ends.
func (c *cluster) startAgent(ctx context.Context, a *agent) error {
	for {
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		err := a.proc.Start(sctx)
		cancel()
		if err == nil {
			return nil
		}
		a.proc.Kill() // it may still be running, not answering
		if ctx.Err() != nil {
			return fmt.Errorf("start %s: %w", a.id, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// candidates returns the free, running agents that pick accepts.
func (c *cluster) candidates(pick func(a *agent) bool) []*agent {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*agent
	for _, a := range c.agents {
		if !a.busy && a.state == agentUp && pick(a) {
			out = append(out, a)
		}
	}
	return out
}

// takeFrom marks the first agent of cands that is free and up as busy.
func (c *cluster) takeFrom(cands []*agent) *agent {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range cands {
		if !a.busy && a.state == agentUp {
			a.busy = true
			return a
		}
	}
	return nil
}

func (c *cluster) release(a *agent, s agentState) {
	c.mu.Lock()
	a.busy, a.state = false, s
	c.mu.Unlock()
}

func (c *cluster) setState(a *agent, s agentState) {
	c.mu.Lock()
	a.state = s
	c.mu.Unlock()
}

// live returns the agents that have not been scaled in.
func (c *cluster) live() []*agent {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*agent
	for _, a := range c.agents {
		if a.state != agentGone {
			out = append(out, a)
		}
	}
	return out
}

// impaired counts agents that are down or paused or busy (about to be).
func (c *cluster) impaired() (impaired, live int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.agents {
		if a.state == agentGone {
			continue
		}
		live++
		if a.busy || a.state != agentUp {
			impaired++
		}
	}
	return impaired, live
}

// seeds are the advertised addresses of the base agents, which are never
// scaled in.
func (c *cluster) seeds() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, a := range c.agents {
		if a.base {
			out = append(out, a.proxy.Addr())
		}
	}
	return out
}

// byAdvertised finds the agent advertising host:port.
func (c *cluster) byAdvertised(host string, port int32) *agent {
	hp := net.JoinHostPort(host, fmt.Sprint(port))
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.agents {
		if a.proxy.Addr() == hp {
			return a
		}
	}
	return nil
}

// watchCrashes reports, as a violation, every agent process that exits
// without a fault having killed or stopped it, and starts it again.
func (c *cluster) watchCrashes(ctx context.Context) {
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
		c.mu.Lock()
		var crashed []*agent
		for _, a := range c.agents {
			if a.busy || a.state != agentUp {
				continue
			}
			if ok, err := a.proc.Crashed(); ok {
				c.v.add("crash", "%s exited by itself: %v; log tail:\n%s", a.id, err, tail(a.proc.Logs(), 20))
				a.busy = true
				crashed = append(crashed, a)
			}
		}
		c.mu.Unlock()
		for _, a := range crashed {
			go func() {
				err := c.startAgent(ctx, a)
				if err != nil {
					c.release(a, agentDown)
					return
				}
				c.release(a, agentUp)
			}()
		}
	}
}

// heal undoes every lasting fault: services up, proxies passing, agents
// resumed and started. Faults have finished by then; this is the backstop.
func (c *cluster) heal(ctx context.Context) error {
	c.s3.SetSlowDown(false)
	c.pgPx.Release()
	c.s3.Release()
	if err := c.pg.TryStart(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	if err := c.mio.TryStart(); err != nil {
		return fmt.Errorf("start minio: %w", err)
	}
	for _, a := range c.live() {
		a.proxy.Release()
		a.proc.Resume()
		if a.state == agentDown {
			if err := c.startAgent(ctx, a); err != nil {
				return err
			}
			c.setState(a, agentUp)
		}
	}
	return nil
}

func (c *cluster) shutdown() {
	for _, a := range c.agents {
		a.proc.Kill()
		a.proxy.Close()
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	end := len(s)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' && i != len(s)-1 {
			n--
			if n == 0 {
				return s[i+1 : end]
			}
		}
	}
	return s
}
