package agent_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestOneStoreTransactionPerFlush: upload keys are recorded in batches
// ahead of use, so steady flushing costs one store transaction per flush
// (the commit) plus one per keyBatch flushes.
func TestOneStoreTransactionPerFlush(t *testing.T) {
	forEachBackend(t, testOneStoreTransactionPerFlush)
}

func testOneStoreTransactionPerFlush(t *testing.T, bk backend) {
	ta := startAgent(t, bk, nil)
	cl := ta.client(t)
	createTopic(t, cl, "keys", 1, nil)
	const flushes = 40
	for i := 0; i < flushes; i++ { // sequential acks=all produces: one flush each
		if code := rawProduce(t, cl, "keys", 0, batch("v")); code != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(code))
		}
	}
	st := ta.Stats()
	if c := st.Commits.Load(); c != flushes {
		t.Fatalf("%d commits for %d flushes", c, flushes)
	}
	if r := st.UploadRecords.Load(); r > flushes/16+1 {
		t.Fatalf("%d upload-recording transactions for %d flushes; want at most %d", r, flushes, flushes/16+1)
	}
}
