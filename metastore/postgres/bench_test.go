package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siltstream/silt/metastore/metastoretest"
)

// BenchmarkCommitFlush: quote its figures with SILT_TEST_PG_DURABLE=1
// (fsync on, as in production); it logs the server's fsync setting, and
// reports the CPU time the Postgres server spent per commit beside the
// wall time.
func BenchmarkCommitFlush(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	var fsync string
	var backend int
	if err := s.Pool().QueryRow(ctx, "SELECT current_setting('fsync'), pg_backend_pid()").Scan(&fsync, &backend); err != nil {
		b.Fatal(err)
	}
	b.Logf("postgres fsync=%s", fsync)
	var serverCPU func() time.Duration
	if _, ppid, _, err := procCPU(backend); err == nil { // Linux: the postmaster and its children
		serverCPU = func() time.Duration { return processTreeCPU(ppid) }
	}
	metastoretest.BenchCommitFlush(b, s, serverCPU)
}

func BenchmarkCommitOffsets(b *testing.B) {
	metastoretest.BenchCommitOffsets(b, newStore(b))
}

// procCPU reads a process's parent and its user + system CPU time from
// /proc/<pid>/stat.
func procCPU(pid int) (cpu time.Duration, ppid int, ok bool, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false, err
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // f[0] is the state, field 3
	if len(f) < 13 {
		return 0, 0, false, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ppid, _ = strconv.Atoi(f[1])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * (time.Second / 100), ppid, true, nil // USER_HZ is 100 on Linux
}

// processTreeCPU is the CPU time of process root and its children.
func processTreeCPU(root int) time.Duration {
	total, _, _, _ := procCPU(root)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == root {
			continue
		}
		if cpu, ppid, ok, _ := procCPU(pid); ok && ppid == root {
			total += cpu
		}
	}
	return total
}
