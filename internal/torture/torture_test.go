package torture

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// params are the run's knobs, from the environment:
//
//	SILT_TORTURE_DURATION  how long faults are injected (default: the test's own)
//	SILT_TORTURE_SEED      the schedule's and the workload's seed (default: the clock)
//	SILT_TORTURE_AGENTS    agents at the start (default 3)
//	SILT_TORTURE_LOGDIR    where agent logs and the fault history go when the
//	                       run fails (default: a new directory under $TMPDIR)
type params struct {
	duration time.Duration
	seed     uint64
	agents   int
	logDir   string
}

func paramsFromEnv(t *testing.T, defaultDuration time.Duration) params {
	p := params{duration: defaultDuration, seed: uint64(time.Now().UnixNano()), agents: 3, logDir: os.Getenv("SILT_TORTURE_LOGDIR")}
	if s := os.Getenv("SILT_TORTURE_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("SILT_TORTURE_DURATION=%q: want a positive duration such as 10m", s)
		}
		p.duration = d
	}
	if s := os.Getenv("SILT_TORTURE_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SILT_TORTURE_SEED=%q: want an unsigned integer", s)
		}
		p.seed = n
	}
	if s := os.Getenv("SILT_TORTURE_AGENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 || n > maxAgents {
			t.Fatalf("SILT_TORTURE_AGENTS=%q: want 2 to %d", s, maxAgents)
		}
		p.agents = n
	}
	return p
}

// runTorture is one run: start the cluster, run the workload under the
// fault schedule, heal, check, print the summary line, fail on any
// violation.
func runTorture(t *testing.T, p params) {
	t.Logf("torture: seed=%d duration=%v agents=%d (rerun with SILT_TORTURE_SEED=%d SILT_TORTURE_DURATION=%v)",
		p.seed, p.duration, p.agents, p.seed, p.duration)
	v := &violations{}
	c := startCluster(t, p.agents, v)
	ctx, cancelAll := context.WithCancel(context.Background())
	defer cancelAll()
	createTopics(t, c.seeds())

	l := newLedger()
	w := &workload{c: c, l: l, seed: p.seed, logf: t.Logf}
	var bg sync.WaitGroup
	goBg := func(fn func()) {
		bg.Add(1)
		go func() { defer bg.Done(); fn() }()
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	goBg(func() { c.watchCrashes(watchCtx) })
	goBg(func() { w.watchCommitted(watchCtx) })

	stopProducers := make(chan struct{})
	var producersWG sync.WaitGroup
	for i := 0; i < producers; i++ {
		seed := c.seeds()[i%p.agents]
		producersWG.Add(1)
		go func() {
			defer producersWG.Done()
			if err := w.produce(int32(i), seed, stopProducers); err != nil {
				v.add("harness", "producer %d: %v", i, err)
			}
		}()
	}
	consumeCtx, stopConsumers := context.WithCancel(ctx)
	var consumersWG sync.WaitGroup
	for i := 0; i < groupMembers; i++ {
		consumersWG.Add(1)
		go func() {
			defer consumersWG.Done()
			if err := w.consume(consumeCtx, i); err != nil {
				v.add("harness", "group member %d: %v", i, err)
			}
		}()
	}
	copyCtx, stopCopiers := context.WithCancel(ctx)
	var copiersWG sync.WaitGroup
	for i := 0; i < copiers; i++ {
		copiersWG.Add(1)
		go func() { defer copiersWG.Done(); w.copy(copyCtx, int32(i)) }()
	}
	rcCtx, stopRC := context.WithCancel(ctx)
	goBg(func() {
		if err := w.readCommitted(rcCtx); err != nil {
			v.add("harness", "read_committed reader: %v", err)
		}
	})

	// The faults start once the workload makes progress.
	poll.Within(t, "the first acknowledged records and copies", 2*time.Minute, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.acked) >= 200 && len(l.rcSeen) > 0
	})

	f := newFaults(c, p.seed)
	f.run(ctx, p.duration)
	hctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	if err := c.heal(hctx); err != nil {
		t.Fatalf("heal the cluster: %v", err)
	}
	cancel()
	f.logf("healed")
	close(stopProducers)
	producersWG.Wait()
	f.logf("producers done")

	// Let the group and the copiers catch up with the end of events, then
	// stop them.
	adm := newAdmin(t, c.seeds())
	evEnds := routedEnds(t, ctx, adm, eventsTopic)
	for _, g := range []string{copierGroup, consumerGroup} {
		if !caughtUp(ctx, adm, g, evEnds, 5*time.Minute) {
			v.add("stuck", "group %s did not commit the end of events %v within 5m of healing", g, evEnds)
		}
	}
	f.logf("groups caught up")
	stopCopiers()
	copiersWG.Wait()
	stopConsumers()
	consumersWG.Wait()
	stopRC()
	stopWatch()
	bg.Wait()
	f.logf("clients stopped")

	k := &checker{c: c, l: l, v: v, logf: t.Logf}
	avs, maxHW, maxLSO := k.converge(ctx, 3*time.Minute)
	f.logf("agents converged")
	views := k.readViews(ctx, avs, maxHW, maxLSO)
	for _, av := range avs {
		av.cl.Close()
	}
	f.logf("read %d views", len(views))
	if len(views) > 0 {
		ref := views[0]
		for _, vw := range views {
			if vw.err == nil {
				ref = vw
				break
			}
		}
		k.compare(ref, views)
		k.check(ctx, ref, maxHW)
	}
	k.checkBucket(ctx)
	k.checkLogs()

	// The summary line.
	l.mu.Lock()
	var committed, aborted, unknown, deliberate int
	for _, tx := range l.txns {
		switch tx.outcome {
		case txnCommitted:
			committed++
		case txnAborted:
			aborted++
			if tx.deliberate && tx.produced > 0 {
				deliberate++
			}
		case txnUnknown, txnOpen:
			unknown++
		}
	}
	acked, indeterminate := len(l.acked), len(l.indeterminate)
	l.mu.Unlock()
	nFaults, faultSummary := f.summary()
	// A run that wrote little, aborted nothing or injected no fault proves
	// nothing: that is a failure too.
	if acked < 1000 || committed == 0 || deliberate == 0 || nFaults == 0 || k.records == 0 {
		v.add("vacuous", "acked %d, committed transactions %d, deliberate aborts with data %d, faults %d, records read %d",
			acked, committed, deliberate, nFaults, k.records)
	}
	line := fmt.Sprintf("torture: seed=%d duration=%v agents=%d acked=%d indeterminate=%d(present %d) records=%d txns=%d/%d/%d(committed/aborted/unknown) views=%d",
		p.seed, p.duration, p.agents, acked, indeterminate, k.presentIndeterminate, k.records, committed, aborted, unknown, k.views)
	// The invariants always, by name; anything else found (stuck groups,
	// unreadable partitions, harness trouble) when it was.
	core := []string{"lost", "dup", "reorder", "gap", "phantom", "ack-offset", "aborted-visible", "aborted-visible-live",
		"vanished", "eos-dup", "eos-lost", "txn-lost", "commit-back", "group-skip", "disagree", "stale-end", "dangling", "crash", "panic"}
	for _, kind := range core {
		line += fmt.Sprintf(" %s=%d", kind, v.count(kind))
	}
	for _, kind := range v.kinds() {
		if !slices.Contains(core, kind) {
			line += fmt.Sprintf(" %s=%d", kind, v.count(kind))
		}
	}
	line += fmt.Sprintf(" violations=%d faults=%d(%s)", v.total(), nFaults, faultSummary)
	fmt.Println(line)
	t.Log(line)
	t.Logf("fault history:\n%s", f.history())
	if v.total() > 0 {
		dir := saveLogs(t, p, c, f, v)
		t.Errorf("%d violations (agent logs, fault history and violations in %s):\n%s", v.total(), dir, v.report())
	}
}

func createTopics(t *testing.T, seeds []string) {
	t.Helper()
	adm := newAdmin(t, seeds)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, topic := range []string{eventsTopic, copiedTopic} {
		resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
		if err != nil || resp.Err != nil {
			t.Fatalf("create topic %s: %v %v", topic, err, resp.Err)
		}
	}
}

func newAdmin(t *testing.T, seeds []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID("torture-admin"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// routedEnds lists a topic's high watermarks, retrying until they come.
func routedEnds(t *testing.T, ctx context.Context, adm *kadm.Client, topic string) ends {
	t.Helper()
	var out ends
	poll.Within(t, "the end offsets of "+topic, 3*time.Minute, func() bool {
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		l, err := adm.ListEndOffsets(qctx, topic)
		if err != nil {
			return false
		}
		out = make(ends)
		ok := true
		l.Each(func(o kadm.ListedOffset) {
			if o.Err != nil {
				ok = false
			}
			out[o.Partition] = o.Offset
		})
		return ok && len(out) == partitions
	})
	return out
}

// caughtUp waits until group's committed offsets on events reach want.
func caughtUp(ctx context.Context, adm *kadm.Client, group string, want ends, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		offs, err := adm.FetchOffsets(qctx, group)
		cancel()
		if err == nil {
			done := true
			for p, e := range want {
				o, ok := offs.Lookup(eventsTopic, p)
				if !ok || o.Err != nil || o.At < e {
					done = false
				}
			}
			if done {
				return true
			}
		}
		sleep(ctx, 500*time.Millisecond)
	}
	return false
}

// saveLogs writes every agent's log, the fault history and the violations
// to a directory that outlives the test, and returns it.
func saveLogs(t *testing.T, p params, c *cluster, f *faults, v *violations) string {
	dir := p.logDir
	var err error
	if dir == "" {
		dir, err = os.MkdirTemp("", fmt.Sprintf("silt-torture-%d-", p.seed))
	} else {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		t.Logf("save logs: %v", err)
		return "(nowhere)"
	}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Logf("save %s: %v", name, err)
		}
	}
	for _, a := range c.agents {
		write(a.id+".log", a.proc.Logs())
	}
	write("faults.txt", f.history())
	write("violations.txt", v.report())
	return dir
}

// TestTorture runs the workload under 75 s of faults (SILT_TORTURE_DURATION
// and the other variables above change that).
func TestTorture(t *testing.T) { runTorture(t, paramsFromEnv(t, 75*time.Second)) }
