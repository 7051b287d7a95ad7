package torture

import (
	"strings"
	"testing"
)

// TestTxnTimeline: the txn-lost diagnosis names the runs and markers around
// a transaction read_committed hides, and says nothing when it hides none.
func TestTxnTimeline(t *testing.T) {
	rec := func(off int64, x txnID, n int32) logRec {
		return logRec{off: off, val: string(copyValue(x, eventValue(recID{prod: 1, key: 2, seq: n}))), pid: 7}
	}
	marker := func(off int64, abort bool) logRec { return logRec{off: off, control: true, abort: abort, pid: 7} }
	a, b := txnID{0, 80}, txnID{0, 81}
	ru := []logRec{rec(0, a, 0), rec(1, a, 1), marker(2, true), rec(3, b, 2), rec(4, b, 3), marker(5, false)}
	txns := map[txnID]*txnRecord{a: {outcome: txnAborted, records: 2}, b: {outcome: txnCommitted, records: 2}}

	if got := txnTimeline(ru, []logRec{marker(2, true), ru[3], ru[4], marker(5, false)}, b, txns); got != "" {
		t.Fatalf("timeline of a transaction shown whole = %q, want none", got)
	}
	got := txnTimeline(ru, []logRec{marker(2, true), ru[3], marker(5, false)}, b, txns)
	for _, want := range []string{
		"@0-1 pid 7 transaction 0.80 (aborted, 2 records): 2 records, rc: 0",
		"@2 pid 7 ABORT marker",
		"@3-4 pid 7 transaction 0.81 (committed, 2 records): 2 records, rc: 1",
		"@5 pid 7 COMMIT marker",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("timeline lacks %q:\n%s", want, got)
		}
	}
}
