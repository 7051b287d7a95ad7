package torture

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// faultKinds are the faults the schedule draws from, with weights.
var faultKinds = []struct {
	name   string
	weight int
}{
	{"kill", 4},          // SIGKILL an agent, start it again 0–3 s later
	{"pause", 3},         // SIGSTOP an agent for longer than the membership TTL
	{"pause-coord", 3},   // the same, on the group or transaction coordinator
	{"scale-out", 1},     // start a new agent
	{"scale-in", 1},      // SIGTERM an agent started by scale-out: it leaves
	{"postgres", 2},      // pg_ctl stop -m immediate for 1–20 s
	{"postgres-cut", 1},  // close every agent connection to Postgres (LISTEN included)
	{"postgres-hold", 1}, // agent connections to Postgres forward nothing for 1–15 s
	{"minio", 2},         // SIGKILL MinIO for 1–20 s
	// Long runs only: MinIO gone for longer than orphan.min.age (the
	// shortest the agent accepts is 1m), so flushes uploaded before the
	// outage wait to commit until they look like orphans to the janitor.
	{"minio-long", 1},
	{"s3-slowdown", 2}, // S3 answers 503 SlowDown for 1–15 s
	{"s3-hang", 1},     // S3 requests hang, unanswered, for 1–15 s
	{"cut", 3},         // close every connection through an agent's proxy
	{"hold", 2},        // an agent's proxy forwards nothing for 1–8 s
}

const (
	maxAgents        = 5
	maxConcurrent    = 3
	meanFaultSpacing = 2500 * time.Millisecond
)

// faults runs the seeded schedule against the cluster and keeps a log of
// what it did.
type faults struct {
	c    *cluster
	rng  *rand.Rand // used by the scheduling goroutine only
	t0   time.Time
	long bool // a run of 5 minutes or more: rare, long outages too

	mu       sync.Mutex
	log      []string
	counts   map[string]int
	pgBusy   bool
	pgHeld   bool
	minio    bool
	slowDown bool
	s3Hung   bool
	running  int
	wg       sync.WaitGroup
}

func newFaults(c *cluster, seed uint64) *faults {
	return &faults{c: c, rng: rand.New(rand.NewPCG(seed, 7)), counts: make(map[string]int)}
}

func (f *faults) logf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, fmt.Sprintf("t+%6.2fs ", time.Since(f.t0).Seconds())+fmt.Sprintf(format, args...))
}

// between draws a duration uniformly in [lo, hi].
func (f *faults) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(f.rng.Int64N(int64(hi-lo)+1))
}

// run injects faults until d has passed, then waits for every fault to
// undo itself. Faults overlap, up to maxConcurrent at a time.
func (f *faults) run(ctx context.Context, d time.Duration) {
	f.t0 = time.Now()
	f.long = d >= 5*time.Minute
	total := 0
	for _, k := range faultKinds {
		total += k.weight
	}
	for time.Since(f.t0) < d && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(f.between(meanFaultSpacing/4, meanFaultSpacing*7/4)):
		}
		f.mu.Lock()
		busy := f.running >= maxConcurrent
		f.mu.Unlock()
		if busy {
			continue
		}
		n := f.rng.IntN(total)
		kind := ""
		for _, k := range faultKinds {
			if n < k.weight {
				kind = k.name
				break
			}
			n -= k.weight
		}
		if act := f.plan(ctx, kind); act != nil {
			f.mu.Lock()
			f.running++
			f.counts[kind]++
			f.mu.Unlock()
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				act()
				f.mu.Lock()
				f.running--
				f.mu.Unlock()
			}()
		}
	}
	f.wg.Wait()
	f.logf("schedule over")
}

// plan decides, on the scheduling goroutine (it owns rng), what a fault of
// kind will do, takes what it acts on, and returns the action; nil if the
// fault cannot run now.
func (f *faults) plan(ctx context.Context, kind string) func() {
	c := f.c
	// At least one agent stays untouched, so that the cluster can make
	// progress while agents are impaired.
	impaired, live := c.impaired()
	canImpair := impaired+1 < live
	pick := func(cands []*agent) *agent {
		if len(cands) == 0 {
			return nil
		}
		f.rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
		return c.takeFrom(cands)
	}
	any := func(*agent) bool { return true }
	switch kind {
	case "kill":
		if !canImpair {
			return nil
		}
		a := pick(c.candidates(any))
		if a == nil {
			return nil
		}
		down := f.between(0, 3*time.Second)
		return func() {
			a.proc.Kill()
			c.setState(a, agentDown)
			f.logf("kill %s (down %v)", a.id, down.Round(time.Millisecond))
			sleep(ctx, down)
			if err := c.startAgent(ctx, a); err != nil {
				f.logf("restart %s: %v", a.id, err)
				c.release(a, agentDown)
				return
			}
			f.logf("restarted %s", a.id)
			c.release(a, agentUp)
		}
	case "pause", "pause-coord":
		if !canImpair {
			return nil
		}
		var a *agent
		what := "agent"
		if kind == "pause-coord" {
			a, what = f.coordinator(ctx)
			if a != nil && c.takeFrom([]*agent{a}) == nil {
				a = nil
			}
		} else {
			a = pick(c.candidates(any))
		}
		if a == nil {
			return nil
		}
		d := f.between(membershipTTL+500*time.Millisecond, membershipTTL+6*time.Second)
		return func() {
			a.proc.Pause()
			c.setState(a, agentPaused)
			f.logf("pause %s, %s, for %v", a.id, what, d.Round(time.Millisecond))
			sleep(ctx, d)
			a.proc.Resume()
			f.logf("resume %s", a.id)
			c.release(a, agentUp)
		}
	case "scale-out":
		if len(c.live()) >= maxAgents {
			return nil
		}
		return func() {
			a, err := c.addAgent(ctx, false)
			if err != nil {
				f.logf("scale out: %v", err)
				return
			}
			f.logf("scale out: %s joined", a.id)
		}
	case "scale-in":
		if !canImpair {
			return nil
		}
		a := pick(c.candidates(func(a *agent) bool { return !a.base }))
		if a == nil {
			return nil
		}
		return func() {
			f.logf("scale in: stop %s", a.id)
			err := a.proc.Stop(30 * time.Second)
			c.release(a, agentGone)
			a.proxy.Close()
			f.logf("scale in: %s left (%v)", a.id, err)
		}
	case "postgres":
		if !f.claim(&f.pgBusy) {
			return nil
		}
		d := f.between(time.Second, 20*time.Second)
		return func() {
			defer f.unclaim(&f.pgBusy)
			c.pg.Kill()
			f.logf("postgres stopped (immediate) for %v", d.Round(time.Millisecond))
			sleep(ctx, d)
			if err := c.pg.TryStart(); err != nil {
				f.logf("postgres start: %v", err)
				return
			}
			f.logf("postgres started")
		}
	case "postgres-cut":
		return func() {
			c.pgPx.Cut()
			f.logf("cut every connection to postgres")
		}
	case "postgres-hold":
		if !f.claim(&f.pgHeld) {
			return nil
		}
		d := f.between(time.Second, 15*time.Second)
		return func() {
			defer f.unclaim(&f.pgHeld)
			c.pgPx.Hold()
			f.logf("hold connections to postgres for %v", d.Round(time.Millisecond))
			sleep(ctx, d)
			c.pgPx.Release()
			f.logf("release connections to postgres")
		}
	case "minio-long":
		if !f.long || !f.claim(&f.minio) {
			return nil
		}
		d := f.between(65*time.Second, 80*time.Second)
		return func() {
			defer f.unclaim(&f.minio)
			c.mio.Kill()
			f.logf("minio killed for %v (longer than orphan.min.age)", d.Round(time.Millisecond))
			sleep(ctx, d)
			if err := c.mio.TryStart(); err != nil {
				f.logf("minio start: %v", err)
				return
			}
			f.logf("minio started")
		}
	case "minio":
		if !f.claim(&f.minio) {
			return nil
		}
		d := f.between(time.Second, 20*time.Second)
		return func() {
			defer f.unclaim(&f.minio)
			c.mio.Kill()
			f.logf("minio killed for %v", d.Round(time.Millisecond))
			sleep(ctx, d)
			if err := c.mio.TryStart(); err != nil {
				f.logf("minio start: %v", err)
				return
			}
			f.logf("minio started")
		}
	case "s3-slowdown":
		if !f.claim(&f.slowDown) {
			return nil
		}
		d := f.between(time.Second, 15*time.Second)
		return func() {
			defer f.unclaim(&f.slowDown)
			c.s3.SetSlowDown(true)
			f.logf("s3 SlowDown for %v", d.Round(time.Millisecond))
			sleep(ctx, d)
			c.s3.SetSlowDown(false)
			f.logf("s3 SlowDown over (%d requests refused so far)", c.s3.Refused())
		}
	case "s3-hang":
		if !f.claim(&f.s3Hung) {
			return nil
		}
		d := f.between(time.Second, 15*time.Second)
		return func() {
			defer f.unclaim(&f.s3Hung)
			c.s3.Hang()
			f.logf("s3 requests hang for %v", d.Round(time.Millisecond))
			sleep(ctx, d)
			c.s3.Release()
			f.logf("s3 requests answered again")
		}
	case "cut":
		a := pick(c.candidates(any))
		if a == nil {
			return nil
		}
		return func() {
			a.proxy.Cut()
			f.logf("cut connections of %s", a.id)
			c.release(a, agentUp)
		}
	case "hold":
		if !canImpair {
			return nil
		}
		a := pick(c.candidates(any))
		if a == nil {
			return nil
		}
		d := f.between(time.Second, 8*time.Second)
		return func() {
			a.proxy.Hold()
			f.logf("hold connections of %s for %v", a.id, d.Round(time.Millisecond))
			sleep(ctx, d)
			a.proxy.Release()
			f.logf("release connections of %s", a.id)
			c.release(a, agentUp)
		}
	}
	return nil
}

func (f *faults) claim(b *bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if *b {
		return false
	}
	*b = true
	return true
}

func (f *faults) unclaim(b *bool) {
	f.mu.Lock()
	*b = false
	f.mu.Unlock()
}

// coordinator finds the agent coordinating the consumer group, the copier
// group or a copier's transactional id (drawn at random).
func (f *faults) coordinator(ctx context.Context) (*agent, string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.c.seeds()...))
	if err != nil {
		return nil, ""
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var co kadm.FindCoordinatorResponse
	var what string
	switch f.rng.IntN(3) {
	case 0:
		what = "coordinator of group " + consumerGroup
		co = adm.FindGroupCoordinators(qctx, consumerGroup)[consumerGroup]
	case 1:
		what = "coordinator of group " + copierGroup
		co = adm.FindGroupCoordinators(qctx, copierGroup)[copierGroup]
	default:
		id := fmt.Sprintf("torture-copier-%d", f.rng.IntN(copiers))
		what = "transaction coordinator of " + id
		co = adm.FindTxnCoordinators(qctx, id)[id]
	}
	if co.Err != nil {
		return nil, ""
	}
	return f.c.byAdvertised(co.Host, co.Port), what
}

// summary is "kill=3 pause=2 …" in a fixed order.
func (f *faults) summary() (total int, s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var parts []string
	keys := make([]string, 0, len(f.counts))
	for k := range f.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		total += f.counts[k]
		parts = append(parts, fmt.Sprintf("%s:%d", k, f.counts[k]))
	}
	return total, strings.Join(parts, ",")
}

func (f *faults) history() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.log, "\n")
}

// sleep waits d (the fault schedule is timed; nothing is synchronised by
// it) or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
