package txn

import (
	"context"
	"time"

	"github.com/siltstream/silt/metastore"
)

// A transactional batch can commit after its transaction ended: the
// producer's request passed the produce-time check, then waited (a slow
// upload, a store outage) while the client timed out and the transaction
// was aborted. Committed after the abort marker, it reopens the
// transaction on its partition and would hold the last stable offset there
// until that producer's next marker, which may never come. Kafka closes
// this with KIP-890's per-transaction epochs; Silt's coordinator instead
// looks, a few times after a transaction completes, for such dangling
// writes on the partitions it touched, and aborts them with a marker, so
// read_committed consumers skip them and the LSO moves on.

// danglingChecks are the delays after a transaction completes at which its
// coordinator looks for late writes: late writes are bounded by produce
// timeouts plus upload retries, so a few looks catch them without a query
// per partition every second.
var danglingChecks = []time.Duration{2 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute}

// danglingKey identifies one completed transaction.
type danglingKey struct {
	id      string
	pid     int64
	epoch   int16
	updated time.Time
}

// checkDangling runs the dangling-write checks that are due for t, which
// this agent coordinates. It is called from sweep.
func (c *Coordinator) checkDangling(ctx context.Context, t metastore.Txn, now time.Time) {
	if t.State != metastore.TxnCompleteCommit && t.State != metastore.TxnCompleteAbort {
		return
	}
	k := danglingKey{t.TransactionalID, t.ProducerID, t.Epoch, t.UpdatedAt}
	c.mu.Lock()
	if c.dangling == nil {
		c.dangling = make(map[danglingKey]int)
	}
	n := c.dangling[k]
	due := n < len(danglingChecks) && now.Sub(t.UpdatedAt) >= danglingChecks[n]
	if due {
		c.dangling[k] = n + 1
	}
	for old := range c.dangling { // forget transactions past their last check
		if now.Sub(old.updated) > danglingChecks[len(danglingChecks)-1]+time.Minute {
			delete(c.dangling, old)
		}
	}
	c.mu.Unlock()
	if !due {
		return
	}
	// Hold the id's lock: a new transaction of this producer cannot add
	// partitions (so cannot write data) while we decide and write markers.
	defer c.lock(t.TransactionalID)()
	cur, ok, err := c.load(ctx, t.TransactionalID)
	if err != nil || !ok || cur.State != t.State || cur.ProducerID != t.ProducerID || cur.Epoch != t.Epoch {
		return // moved on; the next transaction's markers close what it touches
	}
	var open []metastore.TxnPartition
	for _, tp := range cur.Partitions {
		id, n, err := c.topics.Resolve(ctx, tp.Topic)
		if err != nil || tp.Partition < 0 || tp.Partition >= n {
			continue
		}
		ongoing, err := c.store.OngoingTxns(ctx, metastore.TopicPartition{Topic: id, Partition: tp.Partition})
		if err != nil {
			c.log.Warn("look for dangling transactional writes", "transactional_id", t.TransactionalID, "err", err)
			return
		}
		for _, o := range ongoing {
			if o.ProducerID == cur.ProducerID {
				open = append(open, tp)
				break
			}
		}
	}
	if len(open) == 0 {
		return
	}
	late := cur
	late.Partitions = open
	if err := c.writeMarkers(ctx, late, false); err != nil {
		c.log.Warn("abort dangling transactional writes", "transactional_id", t.TransactionalID, "err", err)
		return
	}
	c.log.Warn("aborted transactional writes that committed after their transaction ended",
		"transactional_id", t.TransactionalID, "producer_id", cur.ProducerID, "partitions", len(open))
}
