package main

// Compatibility mode (--kgo-test): franz-go's own integration tests
// (pkg/kgo, e.g. TestGroupETL and TestTxnEtl) run against the agents
// started here, --kgo-runs times, optionally while agents come and go
// (--kgo-churn): the oldest agent is stopped gracefully some seconds into
// each run and a new one joins, as in a rolling restart or a scale event.

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func runCompat(ctx context.Context, o options, env *benchEnv, logf func(string, ...any)) error {
	if env.bin == "" && o.kgoChurn {
		return fmt.Errorf("--kgo-churn needs agents started here, not --brokers")
	}
	passed := 0
	var failures []string
	for run := 1; run <= o.kgoRuns; run++ {
		args := []string{"-test.run", o.kgoRun, "-test.count", "1", "-test.timeout", "30m"}
		if env.keepLogs {
			args = append(args, "-test.v") // the kept log says which tests ran, passed and skipped
		}
		cmd := exec.CommandContext(ctx, o.kgoTest, args...)
		// The tests log nothing unless KGO_LOG_LEVEL is set here; with
		// --keep-logs each run's whole output is kept beside the agents' logs.
		level := cmp.Or(os.Getenv("KGO_LOG_LEVEL"), "none")
		cmd.Env = append(os.Environ(), "KGO_SEEDS="+strings.Join(env.brokers, ","), "KGO_LOG_LEVEL="+level)
		if o.kgoRecords > 0 {
			cmd.Env = append(cmd.Env, "KGO_TEST_RECORDS="+strconv.Itoa(o.kgoRecords))
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", o.kgoTest, err)
		}
		churned := make(chan error, 1)
		if o.kgoChurn {
			go func() { churned <- env.churn(ctx, o, logf) }()
		} else {
			churned <- nil
		}
		err := cmd.Wait()
		if cerr := <-churned; cerr != nil {
			return fmt.Errorf("run %d: churn: %w", run, cerr)
		}
		took := time.Since(start).Round(time.Second)
		if env.keepLogs && env.tmpDir != "" {
			path := filepath.Join(env.tmpDir, fmt.Sprintf("kgo-run-%d.log", run))
			if werr := os.WriteFile(path, out.Bytes(), 0o644); werr != nil {
				logf("keep kgo output: %v", werr)
			}
		}
		if err == nil {
			passed++
			logf("kgo run %d/%d: PASS (%s)", run, o.kgoRuns, took)
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		logf("kgo run %d/%d: FAIL (%s): %v\n%s", run, o.kgoRuns, took, err, lastLines(out.String(), 40))
		failures = append(failures, fmt.Sprintf("run %d", run))
	}
	mode := "steady cluster"
	if o.kgoChurn {
		mode = fmt.Sprintf("an agent stopped and another started %s into each run", o.kgoChurnAfter)
	}
	fmt.Printf("kgo compatibility: %s — %d/%d runs passed against %d agents (%s)\n", o.kgoRun, passed, o.kgoRuns, len(env.brokers), mode)
	if len(failures) > 0 {
		return fmt.Errorf("kgo tests failed in %s", strings.Join(failures, ", "))
	}
	return nil
}

// churn waits kgoChurnAfter, stops the oldest live agent gracefully, then
// starts a new agent in its zone and waits until every agent sees it. The
// seed list for the next runs is the live agents.
func (e *benchEnv) churn(ctx context.Context, o options, logf func(string, ...any)) error {
	select {
	case <-time.After(o.kgoChurnAfter):
	case <-ctx.Done():
		return ctx.Err()
	}
	var old *agentProc
	for _, a := range e.agents {
		if a.alive() {
			old = a
			break
		}
	}
	if old == nil {
		return fmt.Errorf("no live agent to stop")
	}
	logf("churn: stopping agent %s", old.id)
	if err := syscall.Kill(old.pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop agent %s: %w", old.id, err)
	}
	select {
	case <-old.done:
	case <-time.After(60 * time.Second):
		return fmt.Errorf("agent %s did not stop within 60s", old.id)
	}
	a, err := e.startAgent(ctx, len(e.agents), old.zone, e.agentArgs(o, e.bucketURL, e.dbURL), e.saslSSL != nil, logf)
	if err != nil {
		return err
	}
	logf("churn: started agent %s", a.id)
	var live []string
	for _, x := range e.agents {
		if x.alive() {
			live = append(live, x.kafkaAddr)
		}
	}
	e.brokers = live
	return nil
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
