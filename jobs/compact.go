package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/segment"
)

// CompactedPrefix starts the key of every compacted (level 1) segment:
// compacted/<topic id hex>/<partition>/<first offset>-<agent>-<unix ns>.seg.
// Rows in other segments are level 0, the write path's multi-partition
// flush segments, and are what compaction rewrites.
const CompactedPrefix = "compacted/"

// DefaultCompactionSegmentBytes is compaction.segment.bytes' default: the
// bytes of level 0 rows one compacted segment takes in. Large enough that
// a consumer catching up reads at bucket speed with few GETs, small enough
// that a compactor holds one in memory.
const DefaultCompactionSegmentBytes = 64 << 20

// maxRecordsBytes bounds what one batch's records may decompress to when
// compaction recompresses it; a batch beyond it is kept as it was.
const maxRecordsBytes = 64 << 20

// compactReads bounds the reads of old segments one compaction has in
// flight.
const compactReads = 8

// compactScanRows is how many index rows one store query of the scan for
// level 0 rows reads.
const compactScanRows = 1000

// CompactionStore is what the compactor needs from the metastore.
type CompactionStore interface {
	Topics(ctx context.Context) ([]metastore.Topic, error)
	Partitions(ctx context.Context, topicID metastore.TopicID) ([]metastore.PartitionState, error)
	Index(ctx context.Context, tp metastore.TopicPartition, offset int64, maxBytes int64, limit int) ([]metastore.IndexEntry, error)
	RecordUpload(ctx context.Context, key string, agentID string) error
	ForgetUpload(ctx context.Context, key string) (bool, error)
	AbandonUpload(ctx context.Context, key string) error
	metastore.CompactionStore
}

// Compactor rewrites the write path's small multi-partition segments
// (level 0) into large per-partition segments (level 1, see
// segment/FORMAT.md "Compacted segments"): per partition, the oldest run
// of consecutive level 0 rows at or after the log start and wholly below
// the last stable offset (an open transaction's data is never rewritten),
// up to SegmentBytes, becomes one zstd-compressed chunk whose batches carry
// their real offsets. The swap (metastore.CompactionStore.ReplaceIndex)
// replaces the rows in one transaction; the old segments are then the
// garbage collector's, deleted after gc.grace, so a reader holding an old
// row keeps reading it until then and re-resolves the index after.
//
// Every agent runs a Compactor over the partitions it leads (Owns), so the
// work grows with the cluster. No lease is needed for correctness: two
// agents whose membership views differ for a moment may compact the same
// partition at once, and then the swap of the second finds the rows it
// read gone and changes nothing; its upload is forgotten and collected.
type Compactor struct {
	AgentID string
	Store   CompactionStore
	Bucket  objectstore.Bucket
	Log     *slog.Logger
	// Interval is how often Run compacts (compaction.interval).
	Interval time.Duration
	// SegmentBytes is the target size of a compacted segment
	// (compaction.segment.bytes): the level 0 bytes one takes in (zstd
	// usually makes the output smaller).
	SegmentBytes int64
	// Owns reports whether this agent compacts tp; nil means every
	// partition.
	Owns    func(tp metastore.TopicPartition) bool
	Metrics *Metrics // optional
	// OnSwap, if set, is told of every swap done (tests, logs).
	OnSwap func(r metastore.Replacement)
	// Cleaner, if set, runs keyed compaction after each pass of Run.
	Cleaner *Cleaner
	// ExpiryHorizon, if positive, leaves alone the data retention will
	// expire within it: a run whose newest record leaves retention.ms, or
	// whose partition will pass retention.bytes at its current rate, that
	// soon is not compacted. A compaction keeps its data in the bucket
	// twice for gc.grace (its source segments are deleted only then), and
	// its compacted segment expires only whole, so rewriting data about to
	// expire buys little and holds the bucket well above what retention
	// promises; the agent sets it to a few gc.graces.
	ExpiryHorizon time.Duration
	// KeyedMaxOffsets, if positive, bounds the offsets of one compacted
	// segment of a topic whose cleanup.policy contains compact: the keys
	// the Cleaner's map holds (DedupeMapKeys), so that the Cleaner can
	// always map at least one whole row.
	KeyedMaxOffsets int64

	mu  sync.Mutex // one pass at a time; guards what follows
	enc *zstd.Encoder
	// done remembers per partition the offset below which every row is
	// level 1, so a pass does not rescan compacted history.
	done map[metastore.TopicPartition]int64
	// mergeFrom remembers per partition the offset below which no row can
	// take part in a merge (see mergeSmall).
	mergeFrom map[metastore.TopicPartition]int64
}

// Compaction says what one pass did.
type Compaction struct {
	Segments     int   // compacted segments written and swapped in
	Merged       int   // of Segments, those that merged small compacted segments
	Refused      int   // swaps refused because the rows changed meanwhile
	ReadBytes    int64 // level 0 bytes read
	WrittenBytes int64 // compacted segment bytes written
	// AwaitingBytes: level 0 bytes found in the partitions compacted, before
	// the pass compacted them.
	AwaitingBytes int64
}

// Run compacts every Interval until ctx ends.
func (c *Compactor) Run(ctx context.Context) {
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		res, err := c.CompactOnce(ctx)
		if err != nil && ctx.Err() == nil {
			c.Log.Warn("compaction failed", "err", err)
		}
		if res.Segments > 0 || res.Refused > 0 {
			c.Log.Info("compacted", "segments", res.Segments, "merged", res.Merged, "refused", res.Refused,
				"read_bytes", res.ReadBytes, "written_bytes", res.WrittenBytes)
		}
		if c.Cleaner == nil || ctx.Err() != nil {
			continue
		}
		cl, err := c.Cleaner.CleanOnce(ctx)
		if err != nil && ctx.Err() == nil {
			c.Log.Warn("keyed compaction failed", "err", err)
		}
		if cl.Segments > 0 || cl.Refused > 0 {
			c.Log.Info("keyed compaction", "partitions", cl.Partitions, "segments", cl.Segments, "refused", cl.Refused,
				"removed_records", cl.Removed, "read_bytes", cl.ReadBytes, "written_bytes", cl.WrittenBytes)
		}
	}
}

// CompactOnce compacts every partition this agent owns as far as it can.
// A partition that fails is logged and skipped; the first error is
// returned after the pass. Concurrent calls run one after the other.
func (c *Compactor) CompactOnce(ctx context.Context) (Compaction, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var res Compaction
	if c.enc == nil {
		enc, err := segment.NewZstdEncoder()
		if err != nil {
			return res, err
		}
		c.enc = enc
	}
	if c.done == nil {
		c.done = make(map[metastore.TopicPartition]int64)
		c.mergeFrom = make(map[metastore.TopicPartition]int64)
	}
	topics, err := c.Store.Topics(ctx)
	if err != nil {
		return res, fmt.Errorf("list topics: %w", err)
	}
	seen := make(map[metastore.TopicPartition]bool)
	first, err := eachOwnedPartition(ctx, c.Store, topics, nil, c.Owns, func(t metastore.Topic, ref segment.TopicRef, st metastore.PartitionState) error {
		seen[metastore.TopicPartition{Topic: t.ID, Partition: ref.Partition}] = true
		maxOffsets := int64(0)
		keyed := strings.Contains(t.Config["cleanup.policy"], "compact")
		if keyed {
			maxOffsets = c.KeyedMaxOffsets
		}
		var soon *expiresSoon
		if c.ExpiryHorizon > 0 {
			now := time.Now()
			if p, ok := policyOf(t.Config, now.Add(c.ExpiryHorizon)); ok {
				soon = &expiresSoon{policy: p, horizon: c.ExpiryHorizon, now: now}
			}
		}
		err := c.compactPartition(ctx, ref, st, maxOffsets, soon, &res)
		if err == nil && !keyed {
			// Keyed compaction rewrites a compacted topic's segments anyway.
			err = c.mergeSmall(ctx, ref, st, soon, &res)
		}
		if err != nil && ctx.Err() == nil {
			c.Log.Warn("compaction of a partition failed", "topic", t.Name, "partition", ref.Partition, "err", err)
		}
		return err
	})
	if err != nil {
		return res, err
	}
	for tp := range c.done {
		if !seen[tp] {
			delete(c.done, tp) // no longer ours, or deleted
		}
	}
	for tp := range c.mergeFrom {
		if !seen[tp] {
			delete(c.mergeFrom, tp)
		}
	}
	if c.Metrics != nil {
		c.Metrics.compactionAwaiting.Set(float64(res.AwaitingBytes))
	}
	return res, first
}

// expiresSoon tells whether retention will expire a run of rows within
// the Compactor's ExpiryHorizon.
type expiresSoon struct {
	policy  metastore.RetentionPolicy // a topic's retention, taken at now + horizon
	horizon time.Duration
	now     time.Time
}

// bytesMatter reports whether run needs the bytes above it.
func (e *expiresSoon) bytesMatter() bool { return e.policy.MaxBytes >= 0 }

// run reports whether retention expires rows within the horizon, after
// being the bytes of the partition's rows above them: by time, their newest
// record is older than retention.ms will allow then; by bytes, the
// partition already holds retention.bytes above them, or will within the
// horizon at the rate it grew since their oldest record (their bytes and
// those above them over that time: record timestamps, as retention.ms
// uses them).
func (e *expiresSoon) run(rows []metastore.IndexEntry, after int64) bool {
	p, now, horizon := e.policy, e.now, e.horizon
	newest, oldest := int64(math.MinInt64), int64(math.MaxInt64)
	var bytes int64
	for _, r := range rows {
		newest = max(newest, r.MaxTimestamp)
		oldest = min(oldest, r.MinTimestamp)
		bytes += r.Length
	}
	if p.ExpireBefore != math.MinInt64 && newest < p.ExpireBefore {
		return true
	}
	if p.MaxBytes < 0 {
		return false
	}
	if after >= p.MaxBytes {
		return true
	}
	// (MaxBytes - after) / rate < horizon, rate = (bytes + after) / span.
	span := now.UnixMilli() - oldest
	return span > 0 && float64(p.MaxBytes-after)*float64(span) < float64(horizon.Milliseconds())*float64(bytes+after)
}

// compactPartition compacts runs of level 0 rows of one partition until
// none is left below its last stable offset. Runs soon says retention
// expires shortly are passed over (soon may be nil).
func (c *Compactor) compactPartition(ctx context.Context, tp segment.TopicRef, st metastore.PartitionState, maxOffsets int64, soon *expiresSoon, res *Compaction) error {
	mtp := metastore.TopicPartition{Topic: tp.ID, Partition: tp.Partition}
	from := max(st.LogStartOffset, c.done[mtp])
	end := min(st.LastStableOffset, st.HighWatermark)
	expiry := &partitionExpiry{soon: soon}
	passedOver := false
	for from < end {
		run, next, err := c.nextRun(ctx, mtp, from, end, maxOffsets)
		if err != nil {
			return err
		}
		for _, r := range run {
			res.AwaitingBytes += r.Length
		}
		if len(run) == 0 {
			if !passedOver {
				c.done[mtp] = next
			}
			return nil
		}
		if expires, err := c.expires(ctx, expiry, mtp, from, run); err != nil {
			return err
		} else if expires {
			// Not marked done: these rows stay level 0 until retention
			// takes them.
			passedOver = true
			from = next
			continue
		}
		ok, err := c.compactRun(ctx, tp, run, res)
		if err != nil {
			return err
		}
		if !ok {
			// The rows changed under us (retention, another compactor):
			// start over from the store next pass.
			delete(c.done, mtp)
			return nil
		}
		from = next
		if !passedOver {
			c.done[mtp] = next
		}
	}
	return nil
}

// partitionExpiry is what expires needs for the runs of one partition:
// its topic's expiresSoon (nil: nothing expires soon) and, once read, the
// bytes of its rows.
type partitionExpiry struct {
	soon   *expiresSoon
	suffix *suffixBytes
}

// expires reports whether retention expires rows, a run of tp at or after
// from, within the horizon. The bytes of tp's rows from from on, which
// retention.bytes needs, are read once per partition, when first needed.
func (c *Compactor) expires(ctx context.Context, e *partitionExpiry, tp metastore.TopicPartition, from int64, rows []metastore.IndexEntry) (bool, error) {
	if e.soon == nil {
		return false, nil
	}
	var after int64
	if e.soon.bytesMatter() {
		if e.suffix == nil {
			s, err := c.suffixBytes(ctx, tp, from)
			if err != nil {
				return false, err
			}
			e.suffix = s
		}
		after = e.suffix.after(rows[len(rows)-1].LastOffset)
	}
	return e.soon.run(rows, after), nil
}

// suffixBytes knows the bytes of a partition's rows from some offset on,
// to tell the bytes above any offset past it.
type suffixBytes struct {
	lasts []int64 // rows' last offsets, ascending
	cum   []int64 // cum[i]: bytes of rows 0..i
}

// after returns the bytes of the rows whose offsets lie above offset.
func (s *suffixBytes) after(offset int64) int64 {
	if len(s.cum) == 0 {
		return 0
	}
	i := sort.Search(len(s.lasts), func(i int) bool { return s.lasts[i] > offset })
	if i == 0 {
		return s.cum[len(s.cum)-1]
	}
	return s.cum[len(s.cum)-1] - s.cum[i-1]
}

// suffixBytes reads the lengths of tp's rows from offset from to its end.
func (c *Compactor) suffixBytes(ctx context.Context, tp metastore.TopicPartition, from int64) (*suffixBytes, error) {
	s := &suffixBytes{}
	var total int64
	for next := from; ; {
		rows, err := c.Store.Index(ctx, tp, next, 1<<62, compactScanRows)
		if err != nil {
			return nil, fmt.Errorf("index of %x/%d from %d: %w", tp.Topic[:], tp.Partition, next, err)
		}
		for _, r := range rows {
			if r.LastOffset < next {
				continue
			}
			total += r.Length
			s.lasts, s.cum = append(s.lasts, r.LastOffset), append(s.cum, total)
			next = r.LastOffset + 1
		}
		if len(rows) < compactScanRows {
			return s, nil
		}
	}
}

// nextRun finds, from offset from on, the first run of consecutive level 0
// rows that start at or after from and end below end, up to SegmentBytes
// and, if maxOffsets is positive, maxOffsets offsets (at least one row);
// next is the offset after the run (or after the level 1 rows skipped,
// when there is no run).
func (c *Compactor) nextRun(ctx context.Context, tp metastore.TopicPartition, from, end, maxOffsets int64) (run []metastore.IndexEntry, next int64, err error) {
	next = from
	for {
		rows, err := c.Store.Index(ctx, tp, next, 1<<62, compactScanRows)
		if err != nil {
			return nil, next, fmt.Errorf("index of %x/%d from %d: %w", tp.Topic[:], tp.Partition, next, err)
		}
		var bytes int64
		for _, r := range rows {
			switch {
			case r.BaseOffset < from:
				continue // holds the log start: only partly readable
			case r.LastOffset >= end:
				return run, next, nil
			case hasRealOffsets(r.SegmentKey): // compacted or cleaned
				if len(run) > 0 {
					return run, next, nil
				}
			case len(run) > 0 && bytes+r.Length > c.SegmentBytes:
				return run, next, nil
			case len(run) > 0 && maxOffsets > 0 && r.LastOffset+1-run[0].BaseOffset > maxOffsets:
				return run, next, nil
			default:
				run = append(run, r)
				bytes += r.Length
			}
			next = r.LastOffset + 1
		}
		if len(rows) < compactScanRows {
			return run, next, nil
		}
	}
}

// mergeSmall merges consecutive small compacted rows of a partition, as
// size-tiered compaction does. A pass compacts whatever level 0 rows a
// partition has, so a partition written slowly gets a small compacted
// segment every pass: index rows without bound, and a GET each for a
// reader catching up. A row under half of SegmentBytes is small. In each
// sequence of consecutive small rows, the earliest window whose bytes stay
// within SegmentBytes and whose largest row holds at most a quarter of
// them (so four rows or more; the longest such window from its first row)
// becomes one segment, and so on after it. A merge so makes a segment at
// least four times the largest it takes in: a byte is rewritten at most
// log4(SegmentBytes / the smallest segment) + 1 times (a handful: 60 kB
// segments reach 32 MiB in five), and a partition keeps a few small rows
// per size class, like the digits of a base-4 counter. Windows retention
// expires soon are left (soon may be nil), as runs are.
func (c *Compactor) mergeSmall(ctx context.Context, tp segment.TopicRef, st metastore.PartitionState, soon *expiresSoon, res *Compaction) error {
	mtp := metastore.TopicPartition{Topic: tp.ID, Partition: tp.Partition}
	from := max(st.LogStartOffset, c.mergeFrom[mtp])
	end := min(st.LastStableOffset, st.HighWatermark)
	small := c.SegmentBytes / 2
	frontier := int64(-1)          // the first row that may take part in a merge later
	var seq []metastore.IndexEntry // consecutive small rows
	expiry := &partitionExpiry{soon: soon}
	mergeSeq := func() (bool, error) {
		for i := 0; i < len(seq); {
			j, sum, largest := i, int64(0), int64(0)
			best := 0 // the end of the longest valid window
			for j < len(seq) && sum+seq[j].Length <= c.SegmentBytes {
				sum += seq[j].Length
				largest = max(largest, seq[j].Length)
				j++
				if 4*largest <= sum {
					best = j
				}
			}
			if best == 0 {
				i++
				continue
			}
			w := seq[i:best]
			if expires, err := c.expires(ctx, expiry, mtp, from, w); err != nil {
				return false, err
			} else if expires {
				i = best
				continue
			}
			ok, err := c.compactRun(ctx, tp, w, res)
			if err != nil || !ok {
				return ok, err
			}
			res.Merged++
			i = best
		}
		seq = seq[:0]
		return true, nil
	}
	next := from
scan:
	for {
		rows, err := c.Store.Index(ctx, mtp, next, 1<<62, compactScanRows)
		if err != nil {
			return fmt.Errorf("index of %x/%d from %d: %w", tp.ID[:], tp.Partition, next, err)
		}
		for _, r := range rows {
			if r.BaseOffset < from {
				continue // holds the log start: only partly readable
			}
			if r.LastOffset >= end {
				break scan
			}
			isSmall := strings.HasPrefix(r.SegmentKey, CompactedPrefix) && r.Length < small
			if frontier < 0 && (isSmall || !hasRealOffsets(r.SegmentKey)) {
				frontier = r.BaseOffset
			}
			if isSmall {
				seq = append(seq, r)
			} else if ok, err := mergeSeq(); err != nil || !ok {
				delete(c.mergeFrom, mtp)
				return err
			}
			next = r.LastOffset + 1
		}
		if len(rows) < compactScanRows {
			break
		}
	}
	if ok, err := mergeSeq(); err != nil || !ok {
		delete(c.mergeFrom, mtp) // the rows changed under us: rescan next pass
		return err
	}
	if frontier < 0 {
		frontier = next
	}
	c.mergeFrom[mtp] = frontier
	return nil
}

// compactRun writes rows' batches into one compacted segment and swaps it
// in. It reports whether the swap happened. Rows of level 0 segments are
// recompressed with zstd and given their offsets; rows of compacted
// segments (a merge) are zstd and carry their offsets already, and are
// copied as they are.
//
// Memory: the output is built in one buffer (at most the rows' bytes: zstd
// rarely grows a batch), and the rows are read compactReads at a time and
// let go once rewritten, so a pass holds about SegmentBytes plus a few
// rows, not the input and the output twice over.
func (c *Compactor) compactRun(ctx context.Context, tp segment.TopicRef, rows []metastore.IndexEntry, res *Compaction) (bool, error) {
	var total int64
	for _, r := range rows {
		total += r.Length
	}
	cb, err := segment.NewCompactedBuilder(tp, int(total))
	if err != nil {
		return false, err
	}
	var read int64
	for done := 0; done < len(rows); {
		group := rows[done:min(done+compactReads, len(rows))]
		// Each row is one ranged read of its segment: a round trip to the
		// bucket, so a few are in flight at once.
		chunks := make([][]byte, len(group))
		g, gctx := errgroup.WithContext(ctx)
		for i, r := range group {
			g.Go(func() error {
				chunk, err := c.Bucket.Get(gctx, r.SegmentKey, r.Position, r.Length)
				if err != nil {
					return fmt.Errorf("read %s [%d,+%d): %w", r.SegmentKey, r.Position, r.Length, err)
				}
				if int64(len(chunk)) != r.Length {
					return fmt.Errorf("read %s [%d,+%d): %d bytes", r.SegmentKey, r.Position, r.Length, len(chunk))
				}
				chunks[i] = chunk
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return false, err
		}
		for i, r := range group {
			chunk := chunks[i]
			chunks[i] = nil
			read += int64(len(chunk))
			base := r.BaseOffset
			compacted := strings.HasPrefix(r.SegmentKey, CompactedPrefix)
			for len(chunk) > 0 {
				b, rest, h, err := segment.NextBatch(chunk)
				if err != nil {
					return false, fmt.Errorf("walk %s [%d,+%d): %w", r.SegmentKey, r.Position, r.Length, err)
				}
				switch {
				case compacted && h.BaseOffset != base:
					return false, fmt.Errorf("%s [%d,+%d): batch at offset %d, expected %d", r.SegmentKey, r.Position, r.Length, h.BaseOffset, base)
				case compacted:
					err = cb.Append(b)
				default:
					err = cb.AppendZstd(b, base, c.enc, maxRecordsBytes)
				}
				if err != nil {
					return false, fmt.Errorf("rewrite a batch of %s at offset %d: %w", r.SegmentKey, base, err)
				}
				base += h.OffsetCount()
				chunk = rest
			}
			if base != r.LastOffset+1 {
				return false, fmt.Errorf("%s [%d,+%d): batches end at offset %d, index row at %d", r.SegmentKey, r.Position, r.Length, base-1, r.LastOffset)
			}
		}
		done += len(group)
	}
	obj, ci, err := cb.Finish()
	if err != nil {
		return false, err
	}
	key := fmt.Sprintf("%s%x/%d/%020d-%s-%d.seg", CompactedPrefix, tp.ID[:], tp.Partition, rows[0].BaseOffset, c.AgentID, time.Now().UnixNano())
	// Recorded before the upload, as the write path does: an upload that
	// never swaps in is an orphan the collector finds.
	if err := c.Store.RecordUpload(ctx, key, c.AgentID); err != nil {
		return false, fmt.Errorf("record upload %s: %w", key, err)
	}
	if err := c.Bucket.Put(ctx, key, obj); err != nil {
		return false, fmt.Errorf("upload %s: %w", key, err)
	}
	res.ReadBytes += read
	res.WrittenBytes += int64(len(obj))
	if c.Metrics != nil {
		c.Metrics.compactionRead.Add(float64(read))
		c.Metrics.compactionWritten.Add(float64(len(obj)))
	}
	r := metastore.Replacement{
		TopicPartition: metastore.TopicPartition{Topic: tp.ID, Partition: tp.Partition},
		Old:            rows, SegmentKey: key, AgentID: c.AgentID, Size: int64(len(obj)),
		Position: ci.Position, Length: ci.Length, BatchCount: ci.BatchCount,
		MinTimestamp: ci.MinTimestamp, MaxTimestamp: ci.MaxTimestamp,
	}
	ok, err := c.Store.ReplaceIndex(ctx, r)
	switch {
	case errors.Is(err, metastore.ErrUploadNotRecorded):
		// Forgotten as an orphan while uploading (a very slow upload): the
		// object may have been written after the collector deleted it.
		if aerr := c.Store.AbandonUpload(ctx, key); aerr != nil {
			return false, fmt.Errorf("abandon upload %s: %w", key, aerr)
		}
		return false, fmt.Errorf("swap in %s: %w", key, err)
	case err != nil:
		return false, fmt.Errorf("swap in %s: %w", key, err) // an orphan if it did not commit
	case !ok:
		res.Refused++
		if _, err := c.Store.ForgetUpload(ctx, key); err != nil {
			return false, fmt.Errorf("forget refused upload %s: %w", key, err)
		}
		return false, nil
	}
	res.Segments++
	if c.Metrics != nil {
		c.Metrics.compactionSegments.Inc()
	}
	if c.OnSwap != nil {
		c.OnSwap(r)
	}
	return true, nil
}

// eachOwnedPartition calls fn for every partition of topics (those keep
// says so, if keep is set) that owns says this agent works on (every one
// if owns is nil), with its state. A failure of fn or of reading a
// topic's partitions is skipped and the first one returned as first
// once all were tried; only the end of ctx stops the walk early (err).
func eachOwnedPartition(ctx context.Context, store interface {
	Partitions(ctx context.Context, topicID metastore.TopicID) ([]metastore.PartitionState, error)
}, topics []metastore.Topic, keep func(metastore.Topic) bool, owns func(metastore.TopicPartition) bool,
	fn func(t metastore.Topic, ref segment.TopicRef, st metastore.PartitionState) error) (first, err error) {
	for _, t := range topics {
		if keep != nil && !keep(t) {
			continue
		}
		var states []metastore.PartitionState
		for i := int32(0); i < t.Partitions; i++ {
			if owns != nil && !owns(metastore.TopicPartition{Topic: t.ID, Partition: i}) {
				continue
			}
			if states == nil {
				var err error
				if states, err = store.Partitions(ctx, t.ID); err != nil {
					if first == nil {
						first = fmt.Errorf("partitions of %s: %w", t.Name, err)
					}
					break
				}
			}
			if int(i) >= len(states) {
				break
			}
			if err := fn(t, segment.TopicRef{ID: t.ID, Name: t.Name, Partition: i}, states[i]); err != nil {
				if ctx.Err() != nil {
					return first, ctx.Err()
				}
				if first == nil {
					first = err
				}
			}
		}
	}
	return first, nil
}
