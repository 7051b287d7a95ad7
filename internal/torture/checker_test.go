package torture

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltstream/silt/internal/testenv"
)

// view is everything one reader (an agent, or the routed client) returned.
type view struct {
	name string
	logs map[string]topicLog // by read (readEvents, …)
	err  error               // the read did not complete
}

// agentView is what one agent says the ends of the topics are.
type agentView struct {
	a       *agent
	b       *kgo.Broker
	cl      *kgo.Client
	hw, lso map[string]ends
}

// checker reads the healed cluster and checks the ledger against it.
type checker struct {
	c    *cluster
	l    *ledger
	v    *violations
	logf func(format string, args ...any)

	// Filled as it goes, for the summary line.
	records, presentIndeterminate int
	views                         int
}

// converge waits until every agent reports the same high watermarks, and
// last stable offsets equal to them (no transaction open), for both topics.
// Agents that still disagree at the deadline are violations: an agent's
// view may lag the store, but not for minutes after the faults end.
//
// It returns the agents' views and, by topic, the highest high watermark
// and the highest last stable offset any agent reported.
func (k *checker) converge(ctx context.Context, deadline time.Duration) (avs []*agentView, maxHW, maxLSO map[string]ends) {
	for _, a := range k.c.live() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(a.proc.Addr), kgo.ClientID("torture-checker"))
		if err != nil {
			k.v.add("harness", "client for %s: %v", a.id, err)
			continue
		}
		avs = append(avs, &agentView{a: a, cl: cl, b: cl.SeedBrokers()[0]})
	}
	topics := []string{eventsTopic, copiedTopic}
	var why string
	stop := time.Now().Add(deadline)
	for {
		why = ""
		maxHW, maxLSO = map[string]ends{}, map[string]ends{}
		for _, av := range avs {
			av.hw, av.lso = map[string]ends{}, map[string]ends{}
			for _, t := range topics {
				qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				hw, err1 := agentEnds(qctx, av.b, t, false)
				lso, err2 := agentEnds(qctx, av.b, t, true)
				cancel()
				if err1 != nil || err2 != nil {
					why = fmt.Sprintf("%s: list offsets: %v %v", av.a.id, err1, err2)
					continue
				}
				av.hw[t], av.lso[t] = hw, lso
				if maxHW[t] == nil {
					maxHW[t], maxLSO[t] = make(ends), make(ends)
				}
				for p, o := range hw {
					maxHW[t][p] = max(maxHW[t][p], o)
					maxLSO[t][p] = max(maxLSO[t][p], lso[p])
				}
			}
		}
		if why == "" {
			why = k.disagreement(avs, maxHW, topics)
		}
		if why == "" || time.Now().After(stop) || ctx.Err() != nil {
			break
		}
		sleep(ctx, 500*time.Millisecond)
	}
	if why != "" {
		// Report every partition an agent is behind on, or holds open.
		for _, av := range avs {
			for _, t := range topics {
				for p := int32(0); p < partitions; p++ {
					hw, lso := av.hw[t][p], av.lso[t][p]
					if av.hw[t] == nil {
						k.v.add("stale-end", "%s: no end offsets for %s after %v", av.a.id, t, deadline)
						break
					}
					if hw < maxHW[t][p] {
						k.v.add("stale-end", "%s: %s/%d high watermark %d, another agent has %d, %v after healing",
							av.a.id, t, p, hw, maxHW[t][p], deadline)
					}
					if lso < hw {
						k.v.add("lso-stuck", "%s: %s/%d last stable offset %d below high watermark %d, %v after healing",
							av.a.id, t, p, lso, hw, deadline)
					}
				}
			}
		}
		k.logf("agents did not converge: %s", why)
	}
	return avs, maxHW, maxLSO
}

func (k *checker) disagreement(avs []*agentView, maxHW map[string]ends, topics []string) string {
	for _, av := range avs {
		for _, t := range topics {
			for p := int32(0); p < partitions; p++ {
				if av.hw[t][p] != maxHW[t][p] {
					return fmt.Sprintf("%s: %s/%d at %d, max %d", av.a.id, t, p, av.hw[t][p], maxHW[t][p])
				}
				if av.lso[t][p] != av.hw[t][p] {
					return fmt.Sprintf("%s: %s/%d last stable %d, high watermark %d", av.a.id, t, p, av.lso[t][p], av.hw[t][p])
				}
			}
		}
	}
	return ""
}

// readViews reads both topics through each agent and routed.
func (k *checker) readViews(ctx context.Context, avs []*agentView, maxHW, maxLSO map[string]ends) []*view {
	ids, err := topicIDs(ctx, k.c.seeds(), eventsTopic, copiedTopic)
	if err != nil {
		k.v.add("unreadable", "metadata: %v", err)
		return nil
	}
	reads := []struct {
		name, topic string
		committed   bool
	}{{readEvents, eventsTopic, false}, {readCopiedRU, copiedTopic, false}, {readCopiedRC, copiedTopic, true}}

	var views []*view
	routed := &view{name: "routed", logs: map[string]topicLog{}}
	for _, r := range reads {
		iso, want := kgo.ReadUncommitted(), maxHW[r.topic]
		if r.committed {
			iso, want = kgo.ReadCommitted(), maxLSO[r.topic]
		}
		rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		tl, err := readRouted(rctx, k.c.seeds(), r.topic, iso, want)
		cancel()
		routed.logs[r.name] = tl
		if err != nil && routed.err == nil {
			routed.err = err
		}
	}
	views = append(views, routed)
	for _, av := range avs {
		vw := &view{name: av.a.id, logs: map[string]topicLog{}}
		for _, r := range reads {
			tl := make(topicLog)
			end := av.hw[r.topic]
			if r.committed {
				end = av.lso[r.topic]
			}
			for p := int32(0); p < partitions; p++ {
				rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				recs, err := readAgent(rctx, av.b, r.topic, ids[r.topic], p, r.committed, end[p])
				cancel()
				tl[p] = recs
				if err != nil && vw.err == nil {
					vw.err = fmt.Errorf("%s: %w", r.name, err)
				}
			}
			vw.logs[r.name] = tl
		}
		views = append(views, vw)
	}
	for _, vw := range views {
		if vw.err != nil {
			k.v.add("unreadable", "%s: %v", vw.name, vw.err)
		}
	}
	k.views = len(views)
	return views
}

// compare reports every partition on which a view differs from the
// reference: all agents, and the routed client, must agree.
func (k *checker) compare(ref *view, views []*view) {
	for _, vw := range views {
		if vw == ref {
			continue
		}
		for _, r := range []string{readEvents, readCopiedRU, readCopiedRC} {
			for p := int32(0); p < partitions; p++ {
				a, b := ref.logs[r][p], vw.logs[r][p]
				n := min(len(a), len(b))
				i := 0
				for i < n && a[i] == b[i] {
					i++
				}
				if i == len(a) && i == len(b) {
					continue
				}
				if vw.err != nil && i == len(b) {
					continue // a short read, already reported as unreadable
				}
				desc := func(l []logRec) string {
					if i < len(l) {
						return fmt.Sprintf("offset %d %.40q control=%v", l[i].off, l[i].val, l[i].control)
					}
					return fmt.Sprintf("end after %d records", len(l))
				}
				k.v.add("disagree", "%s/%d record #%d: %s has %s, %s has %s",
					r, p, i, ref.name, desc(a), vw.name, desc(b))
			}
		}
	}
}

// check runs every invariant over the reference view.
func (k *checker) check(ctx context.Context, ref *view, maxHW map[string]ends) {
	l := k.l
	l.mu.Lock()
	defer l.mu.Unlock()

	// Offsets are contiguous from 0 (no retention runs here).
	for _, r := range []string{readEvents, readCopiedRU} {
		for p := int32(0); p < partitions; p++ {
			recs := ref.logs[r][p]
			for i, rec := range recs {
				if rec.off != int64(i) {
					k.v.add("gap", "%s/%d: record #%d has offset %d (%s)", r, p, i, rec.off, ref.name)
					break
				}
			}
			topic := strings.SplitN(r, "/", 2)[0]
			if hw := maxHW[topic][p]; int64(len(recs)) != hw && ref.err == nil {
				k.v.add("gap", "%s/%d: %d records read, high watermark %d (%s)", r, p, len(recs), hw, ref.name)
			}
		}
	}

	// Events: nothing lost, duplicated, reordered or invented.
	type pk = [2]int32
	where := make(map[recID]ackAt)
	lastSeq := make(map[pk]int32)
	for p := int32(0); p < partitions; p++ {
		for _, rec := range ref.logs[readEvents][p] {
			k.records++
			id, ok := parseEvent([]byte(rec.val))
			if !ok || id.seq >= l.sent[pk{id.prod, id.key}] {
				k.v.add("phantom", "events/%d@%d: %.60q was never sent", p, rec.off, rec.val)
				continue
			}
			if want := eventPartition(id.prod, id.key); want != p {
				k.v.add("misplaced", "events/%d@%d: %s belongs in partition %d", p, rec.off, id, want)
			}
			if prev, dup := where[id]; dup {
				k.v.add("dup", "events: %s at %d/%d and again at %d/%d", id, prev.partition, prev.offset, p, rec.off)
				continue
			}
			where[id] = ackAt{p, rec.off}
			if last, ok := lastSeq[pk{id.prod, id.key}]; ok && id.seq < last {
				k.v.add("reorder", "events/%d@%d: %s after #%d of the same key", p, rec.off, id, last)
			}
			lastSeq[pk{id.prod, id.key}] = max(lastSeq[pk{id.prod, id.key}], id.seq)
		}
	}
	for _, id := range sortedIDs(l.acked) {
		at := l.acked[id]
		got, ok := where[id]
		switch {
		case !ok:
			k.v.add("lost", "events: %s acknowledged at %d/%d is not in the log", id, at.partition, at.offset)
		case got != at:
			k.v.add("ack-offset", "events: %s acknowledged at %d/%d is at %d/%d", id, at.partition, at.offset, got.partition, got.offset)
		}
	}
	for id := range l.indeterminate {
		if _, ok := where[id]; ok {
			k.presentIndeterminate++
		}
	}

	// Copied, read_committed: exactly once, nothing aborted, nothing of a
	// committed transaction missing.
	type copyAt struct {
		ackAt
		txn txnID
	}
	copied := make(map[recID]copyAt)
	perTxn := make(map[txnID]int)
	finalRC := make(map[copyID]bool)
	for p := int32(0); p < partitions; p++ {
		for _, rec := range ref.logs[readCopiedRC][p] {
			if rec.control {
				continue
			}
			id, ok := parseCopy([]byte(rec.val))
			if !ok || l.txns[id.txn] == nil {
				k.v.add("phantom", "copied/%d@%d (read_committed): %.60q was never sent", p, rec.off, rec.val)
				continue
			}
			if _, ok := where[id.ev]; !ok {
				k.v.add("phantom", "copied/%d@%d (read_committed): copy of %s, which is not in events", p, rec.off, id.ev)
			}
			if tx := l.txns[id.txn]; tx.outcome == txnAborted {
				k.v.add("aborted-visible", "copied/%d@%d (read_committed): %s of transaction %s, which was aborted (deliberately: %v)",
					p, rec.off, id.ev, id.txn, tx.deliberate)
			}
			perTxn[id.txn]++
			finalRC[id] = true
			if prev, dup := copied[id.ev]; dup {
				k.v.add("eos-dup", "copied (read_committed): %s copied at %d/%d by transaction %s (%s) and again at %d/%d by %s (%s)",
					id.ev, prev.partition, prev.offset, prev.txn, l.txns[prev.txn], p, rec.off, id.txn, l.txns[id.txn])
				continue
			}
			copied[id.ev] = copyAt{ackAt{p, rec.off}, id.txn}
		}
	}
	for _, x := range sortedTxns(l.txns) {
		tx := l.txns[x]
		if tx.outcome == txnCommitted && perTxn[x] != tx.records {
			k.v.add("txn-lost", "transaction %s committed %d records (%d produces acknowledged), read_committed shows %d", x, tx.records, tx.produced, perTxn[x])
			for p := int32(0); p < partitions; p++ {
				if tl := txnTimeline(ref.logs[readCopiedRU][p], ref.logs[readCopiedRC][p], x, l.txns); tl != "" {
					k.logf("txn-lost: transaction %s on copied/%d, read_uncommitted around it (rc: records read_committed shows):\n%s", x, p, tl)
				}
			}
		}
	}
	// Every event below the copiers' committed offsets was copied.
	copierOffsets := k.committedOffsets(ctx, copierGroup)
	for id, at := range where {
		if at.offset < copierOffsets[at.partition] {
			if _, ok := copied[id]; !ok {
				k.v.add("eos-lost", "events %s at %d/%d is below the copiers' committed offset %d but not in copied (read_committed)",
					id, at.partition, at.offset, copierOffsets[at.partition])
			}
		}
	}
	// What the read_committed reader saw live was committed, and stays.
	for id, at := range l.rcSeen {
		if tx := l.txns[id.txn]; tx != nil && tx.outcome == txnAborted {
			k.v.add("aborted-visible-live", "read_committed reader got %s at copied/%d@%d from transaction %s, which was aborted (deliberately: %v)",
				id.ev, at.partition, at.offset, id.txn, tx.deliberate)
		}
		if !finalRC[id] {
			k.v.add("vanished", "read_committed reader got %s at copied/%d@%d (transaction %s); it is not in the log now", id.ev, at.partition, at.offset, id.txn)
		}
	}

	// The consumer group received everything below its committed offsets,
	// which are within the log.
	groupOffsets := k.committedOffsets(ctx, consumerGroup)
	for p := int32(0); p < partitions; p++ {
		at := groupOffsets[p]
		if at > maxHW[eventsTopic][p] {
			k.v.add("commit-beyond-end", "group %s events/%d committed %d, high watermark %d", consumerGroup, p, at, maxHW[eventsTopic][p])
		}
		missing, first := 0, int64(-1)
		for o := int64(0); o < at && o < maxHW[eventsTopic][p]; o++ {
			if !l.consumed[p][o] {
				if missing == 0 {
					first = o
				}
				missing++
			}
		}
		if missing > 0 {
			k.v.add("group-skip", "group %s events/%d: %d offsets below the committed %d never delivered to a member (first %d)",
				consumerGroup, p, missing, at, first)
		}
	}
}

func (k *checker) committedOffsets(ctx context.Context, group string) ends {
	out := make(ends)
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.c.seeds()...))
	if err != nil {
		k.v.add("harness", "client: %v", err)
		return out
	}
	defer cl.Close()
	qctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	offs, err := kadm.NewClient(cl).FetchOffsets(qctx, group)
	if err != nil {
		k.v.add("unreadable", "committed offsets of %s: %v", group, err)
		return out
	}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == eventsTopic && o.Err == nil {
			out[o.Partition] = o.At
		}
	})
	return out
}

// checkBucket reports index rows that point at objects missing from the
// bucket: acknowledged data deleted under the index.
func (k *checker) checkBucket(ctx context.Context) {
	conn, err := pgx.Connect(ctx, k.c.dbURL)
	if err != nil {
		k.v.add("harness", "connect to postgres: %v", err)
		return
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT DISTINCT s.key FROM index_entries e JOIN segments s ON s.id = e.segment_id")
	if err != nil {
		k.v.add("harness", "list index rows: %v", err)
		return
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		k.v.add("harness", "list index rows: %v", err)
		return
	}
	objects := make(map[string]bool)
	for obj := range k.c.mio.Client().ListObjects(ctx, k.c.bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			k.v.add("harness", "list bucket: %v", obj.Err)
			return
		}
		objects[strings.TrimPrefix(obj.Key, testenv.MinIOBucketPrefix+"/")] = true
	}
	for _, key := range keys {
		if !objects[key] {
			k.v.add("dangling", "index rows point at %s, which is not in the bucket", key)
		}
	}
}

func sortedIDs(m map[recID]ackAt) []recID {
	ids := slices.Collect(maps.Keys(m))
	slices.SortFunc(ids, func(a, b recID) int {
		if a.prod != b.prod {
			return int(a.prod - b.prod)
		}
		if a.key != b.key {
			return int(a.key - b.key)
		}
		return int(a.seq - b.seq)
	})
	return ids
}

func sortedTxns(m map[txnID]*txnRecord) []txnID {
	ids := slices.Collect(maps.Keys(m))
	slices.SortFunc(ids, func(a, b txnID) int {
		if a.copier != b.copier {
			return int(a.copier - b.copier)
		}
		return int(a.attempt - b.attempt)
	})
	return ids
}

// checkLogs reports panics in the agents' logs: a handler panic is
// recovered and only closes a connection, so no exit shows it.
func (k *checker) checkLogs() {
	for _, a := range k.c.agents {
		for _, line := range strings.Split(a.proc.Logs(), "\n") {
			if strings.Contains(line, "panicked") || strings.Contains(line, "panic encoding") ||
				strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "fatal error:") {
				k.v.add("panic", "%s: %.300s", a.id, line)
			}
		}
	}
}

// txnTimeline describes the records of copied partition around those of
// transaction x that read_committed does not show (ru and rc are the
// partition's read_uncommitted and read_committed reads), as runs of one
// producer's records of one transaction and the markers between them, so
// that a txn-lost violation says which marker or aborted range hid what.
// It returns "" when read_committed shows all of x on the partition.
func txnTimeline(ru, rc []logRec, x txnID, txns map[txnID]*txnRecord) string {
	inRC := make(map[int64]bool, len(rc))
	for _, r := range rc {
		inRC[r.off] = true
	}
	first, last, hidden := -1, -1, false
	for i, r := range ru {
		if id, ok := parseCopy([]byte(r.val)); ok && !r.control && id.txn == x {
			if first < 0 {
				first = i
			}
			last = i
			hidden = hidden || !inRC[r.off]
		}
	}
	if !hidden {
		return ""
	}
	// From three markers before the transaction to three after it.
	lo, hi := first, last
	for n := 0; lo > 0 && n < 3; lo-- {
		if ru[lo-1].control {
			n++
		}
	}
	for n := 0; hi < len(ru)-1 && n < 3; hi++ {
		if ru[hi+1].control {
			n++
		}
	}
	var b strings.Builder
	for i := lo; i <= hi; {
		r := ru[i]
		if r.control {
			kind := "COMMIT"
			if r.abort {
				kind = "ABORT"
			}
			fmt.Fprintf(&b, "  @%d pid %d %s marker\n", r.off, r.pid, kind)
			i++
			continue
		}
		id, _ := parseCopy([]byte(r.val))
		j, shown := i, 0
		for ; j <= hi && !ru[j].control && ru[j].pid == r.pid; j++ {
			if jd, _ := parseCopy([]byte(ru[j].val)); jd.txn != id.txn {
				break
			}
			if inRC[ru[j].off] {
				shown++
			}
		}
		fmt.Fprintf(&b, "  @%d-%d pid %d transaction %s (%s): %d records, rc: %d\n", r.off, ru[j-1].off, r.pid, id.txn, txns[id.txn], j-i, shown)
		i = j
	}
	return b.String()
}
