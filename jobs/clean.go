package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/segment"
)

// CleanedPrefix starts the key of every segment keyed compaction wrote:
// cleaned/<topic id hex>/<partition>/<first offset>-<delete horizon>-<agent>-<unix ns>.seg.
// A partition's index rows in such segments come first (from its log
// start) and are its clean part: cleaned against every key of the log up
// to their end. So the point the cleaner has cleaned up to is where the
// leading run of cleaned rows ends; it lives in the index itself, needs no
// column of its own, survives restarts and moves in the same transaction
// as the rows it describes. <delete horizon> is the latest delete horizon
// (Unix ms) of a tombstone the segment still holds, 0 if none: when it
// has passed, the partition is worth cleaning even with nothing dirty.
const CleanedPrefix = "cleaned/"

// DefaultDedupeBufferBytes is compaction.dedupe.buffer.bytes' default: the
// memory of the cleaner's key → offset map (24 bytes a key, filled to 80%:
// about 2.8 million keys).
const DefaultDedupeBufferBytes = 64 << 20

// Kafka's defaults for the topic configs keyed compaction reads.
const (
	defaultDeleteRetentionMs = 24 * 60 * 60 * 1000 // delete.retention.ms: a day
	defaultMinCleanableRatio = 0.5                 // min.cleanable.dirty.ratio
)

// CleanerStore is what keyed compaction needs from the metastore.
type CleanerStore interface {
	CompactionStore
	AbortedTxns(ctx context.Context, tp metastore.TopicPartition, from, to int64) ([]metastore.AbortedTxn, error)
}

// Cleaner is keyed log compaction (cleanup.policy containing compact),
// after Kafka's log cleaner. Per partition, the index rows below the last
// stable offset are a clean part (rows of cleaned segments, leading) and a
// dirty part (the rows after it whose records are all older than
// min.compaction.lag.ms). When the dirty part is at least
// min.cleanable.dirty.ratio of both (or its oldest record is older than
// max.compaction.lag.ms, or a tombstone's delete horizon has passed), a
// pass maps each key of the dirty part to its latest offset, in a map of
// fixed size (DedupeBufferBytes; when the dirty part has more keys, only
// its rows up to where the map filled are mapped, and a later pass goes
// on), then rewrites the rows from the start up to the end of the mapped
// rows keeping of each key only its latest record. Offsets never move:
// kept records keep their offsets, batches their base offset and last
// offset delta; a batch left empty is dropped, except the last of a
// cleaned segment, kept empty so the segment still ends where its rows
// did. Also removed: records without a key, records of aborted
// transactions, and tombstones whose delete horizon (set in their batch
// by the pass that first cleaned them: now + delete.retention.ms, KIP-534)
// has passed. Transaction markers, as in Kafka: a COMMIT marker goes once
// no record of its transaction is left and its delete horizon (set by the
// pass that first found it so: now + delete.retention.ms) has passed.
// ABORT markers are kept, 78 bytes each: one may only go together with
// its aborted-transaction row in the store (read_committed consumers skip
// a producer's batches from an aborted transaction's first offset until
// its abort marker), and a fetch reads the rows and the aborted
// transactions in two queries, so a fetch that got the row but a cleaned
// segment without the marker would skip that producer's later committed
// batches; removing both safely needs the two read together (not built).
//
// Each cleaned segment (rows of up to SegmentBytes in) is swapped in by
// metastore.CompactionStore.ReplaceIndex, in offset order; a swap refused
// (retention, DeleteRecords or another cleaner changed the rows) ends the
// partition's pass, so the clean part never extends past rows that were
// not cleaned against the map.
type Cleaner struct {
	AgentID string
	Store   CleanerStore
	Bucket  objectstore.Bucket
	Log     *slog.Logger
	// SegmentBytes bounds the bytes of rows one cleaned segment takes in
	// (compaction.segment.bytes).
	SegmentBytes int64
	// DedupeBufferBytes is the memory of the key → offset map
	// (compaction.dedupe.buffer.bytes).
	DedupeBufferBytes int64
	// Owns reports whether this agent cleans tp; nil means every partition.
	Owns    func(tp metastore.TopicPartition) bool
	Metrics *Metrics         // optional
	Now     func() time.Time // nil: time.Now
	// OnSwap, if set, is told of every swap done.
	OnSwap func(r metastore.Replacement)

	mu      sync.Mutex // one pass at a time; guards what follows
	enc     *zstd.Encoder
	offsets *offsetMap
}

// Cleaning says what one pass did.
type Cleaning struct {
	Partitions   int   // partitions cleaned
	Segments     int   // cleaned segments swapped in
	Refused      int   // swaps refused because the rows changed meanwhile
	ReadBytes    int64 // bytes of rows read (mapping and rewriting)
	WrittenBytes int64 // cleaned segment bytes written
	Removed      int64 // records removed
	Markers      int64 // commit markers removed
	// Partial counts partitions whose dirty part had more keys than the
	// map holds: cleaned up to where it filled.
	Partial int
}

// CleanOnce cleans every partition this agent owns whose topic's
// cleanup.policy contains compact and that is due. A partition that fails
// is logged and skipped; the first error is returned after the pass.
func (c *Cleaner) CleanOnce(ctx context.Context) (Cleaning, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var res Cleaning
	if c.enc == nil {
		enc, err := segment.NewZstdEncoder()
		if err != nil {
			return res, err
		}
		c.enc = enc
	}
	topics, err := c.Store.Topics(ctx)
	if err != nil {
		return res, fmt.Errorf("list topics: %w", err)
	}
	compacted := func(t metastore.Topic) bool { return strings.Contains(t.Config["cleanup.policy"], "compact") }
	first, err := eachOwnedPartition(ctx, c.Store, topics, compacted, c.Owns, func(t metastore.Topic, ref segment.TopicRef, st metastore.PartitionState) error {
		err := c.cleanPartition(ctx, ref, t.Config, st, &res)
		if err != nil && ctx.Err() == nil {
			c.Log.Warn("keyed compaction of a partition failed", "topic", t.Name, "partition", ref.Partition, "err", err)
		}
		return err
	})
	if err != nil {
		return res, err
	}
	return res, first
}

// cleanPolicy is a topic's keyed compaction configs.
type cleanPolicy struct {
	deleteRetentionMs int64
	minLagMs          int64
	maxLagMs          int64
	minDirtyRatio     float64
}

func cleanPolicyOf(config map[string]string) cleanPolicy {
	p := cleanPolicy{
		deleteRetentionMs: max(configInt(config, "delete.retention.ms", defaultDeleteRetentionMs), 0),
		minLagMs:          max(configInt(config, "min.compaction.lag.ms", 0), 0),
		maxLagMs:          configInt(config, "max.compaction.lag.ms", math.MaxInt64),
		minDirtyRatio:     defaultMinCleanableRatio,
	}
	if v, err := strconv.ParseFloat(config["min.cleanable.dirty.ratio"], 64); err == nil && v >= 0 && v <= 1 {
		p.minDirtyRatio = v
	}
	if p.maxLagMs < 1 {
		p.maxLagMs = math.MaxInt64
	}
	return p
}

// cleanPartition cleans one partition if it is due.
func (c *Cleaner) cleanPartition(ctx context.Context, tp segment.TopicRef, config map[string]string, st metastore.PartitionState, res *Cleaning) error {
	mtp := metastore.TopicPartition{Topic: tp.ID, Partition: tp.Partition}
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	nowMs := now.UnixMilli()
	pol := cleanPolicyOf(config)
	end := min(st.LastStableOffset, st.HighWatermark)
	rows, err := c.rowsBelow(ctx, mtp, end)
	if err != nil {
		return err
	}
	// The clean part: the leading cleaned rows. The dirty part: the rows
	// after it, up to the first too new for min.compaction.lag.ms.
	var (
		clean, dirty   int
		cleanB, dirtyB int64
		horizonDue     bool
		lagDue         bool
		lagLimit             = nowMs - pol.minLagMs
		maxLagLimit    int64 = math.MinInt64
	)
	if pol.maxLagMs != math.MaxInt64 {
		maxLagLimit = nowMs - pol.maxLagMs
	}
	for clean < len(rows) && strings.HasPrefix(rows[clean].SegmentKey, CleanedPrefix) {
		if h := cleanedHorizon(rows[clean].SegmentKey); h > 0 && h <= nowMs {
			horizonDue = true
		}
		cleanB += rows[clean].Length
		clean++
	}
	for clean+dirty < len(rows) && rows[clean+dirty].MaxTimestamp <= lagLimit {
		r := rows[clean+dirty]
		if dirty == 0 && r.MinTimestamp < maxLagLimit {
			lagDue = true
		}
		dirtyB += r.Length
		dirty++
	}
	due := dirty > 0 && (float64(dirtyB) >= pol.minDirtyRatio*float64(cleanB+dirtyB) || lagDue)
	if !due && !horizonDue {
		return nil
	}

	if c.offsets == nil {
		c.offsets = newOffsetMap(c.DedupeBufferBytes)
	}
	m := c.offsets
	m.reset()
	aborted, err := c.abortedOf(ctx, mtp, rows, clean+dirty, st.LogStartOffset)
	if err != nil {
		return err
	}
	// Map the dirty part, a whole row at a time while the map surely has
	// room for the row's records.
	mapped := clean
	for mapped < clean+dirty {
		r := rows[mapped]
		chunk, err := c.readRow(ctx, r)
		if err != nil {
			return err
		}
		res.ReadBytes += int64(len(chunk))
		var n int
		if err := walkRow(r, chunk, func(b []byte, h segment.BatchHeader, base int64) error {
			if !h.IsControl() {
				n += int(h.NumRecords)
			}
			return nil
		}); err != nil {
			return err
		}
		if n > m.free() && mapped > clean {
			break // the next pass goes on from here
		}
		var full bool
		err = walkRow(r, chunk, func(b []byte, h segment.BatchHeader, base int64) error {
			if h.IsControl() || aborted.has(h, base) {
				return nil
			}
			return segment.WalkRecords(b, maxRecordsBytes, func(rec segment.CleanRecord) error {
				if rec.Key != nil && !m.put(rec.Key, base+int64(rec.OffsetDelta)) {
					full = true
					return errMapFull
				}
				return nil
			})
		})
		if full {
			return fmt.Errorf("row [%d,%d] of %s/%d has more keys than compaction.dedupe.buffer.bytes=%d holds (%d): raise it",
				r.BaseOffset, r.LastOffset, tp.Name, tp.Partition, c.DedupeBufferBytes, m.maxSize)
		}
		if err != nil {
			return fmt.Errorf("map %s [%d,%d]: %w", r.SegmentKey, r.BaseOffset, r.LastOffset, err)
		}
		mapped++
	}
	if mapped < clean+dirty {
		res.Partial++
	}
	if mapped == clean && !horizonDue {
		return nil
	}
	res.Partitions++

	// Rewrite rows [0, mapped) in segments of up to SegmentBytes in, in
	// offset order, stopping at the first that does not swap in. open
	// follows, across them, the producers whose current transaction has a
	// record kept, so each marker knows whether its transaction does.
	open := make(map[int64]bool)
	for from := 0; from < mapped; {
		to, bytesIn := from+1, rows[from].Length
		for to < mapped && bytesIn+rows[to].Length <= c.SegmentBytes {
			bytesIn += rows[to].Length
			to++
		}
		ok, err := c.cleanRows(ctx, tp, rows[from:to], m, aborted, open, pol, nowMs, res)
		if err != nil || !ok {
			return err
		}
		from = to
	}
	return nil
}

var errMapFull = errors.New("offset map full")

// rowsBelow returns the partition's index rows ending below end, from its
// first.
func (c *Cleaner) rowsBelow(ctx context.Context, tp metastore.TopicPartition, end int64) ([]metastore.IndexEntry, error) {
	var out []metastore.IndexEntry
	next := int64(0)
	for {
		rows, err := c.Store.Index(ctx, tp, next, 1<<62, compactScanRows)
		if err != nil {
			return nil, fmt.Errorf("index of %x/%d from %d: %w", tp.Topic[:], tp.Partition, next, err)
		}
		for _, r := range rows {
			if r.LastOffset >= end {
				return out, nil
			}
			out = append(out, r)
			next = r.LastOffset + 1
		}
		if len(rows) < compactScanRows {
			return out, nil
		}
	}
}

// readRow reads one row's bytes.
func (c *Cleaner) readRow(ctx context.Context, r metastore.IndexEntry) ([]byte, error) {
	chunk, err := c.Bucket.Get(ctx, r.SegmentKey, r.Position, r.Length)
	if err != nil {
		return nil, fmt.Errorf("read %s [%d,+%d): %w", r.SegmentKey, r.Position, r.Length, err)
	}
	if int64(len(chunk)) != r.Length {
		return nil, fmt.Errorf("read %s [%d,+%d): %d bytes", r.SegmentKey, r.Position, r.Length, len(chunk))
	}
	return chunk, nil
}

// hasRealOffsets reports whether the batches of the segment named key
// carry their real offsets (compacted or cleaned segments).
func hasRealOffsets(key string) bool {
	return strings.HasPrefix(key, CompactedPrefix) || strings.HasPrefix(key, CleanedPrefix)
}

// walkRow calls fn with each batch of row r's bytes and its real base
// offset: the batch's own in compacted and cleaned segments (gaps
// allowed), else counted from the row's base offset.
func walkRow(r metastore.IndexEntry, chunk []byte, fn func(b []byte, h segment.BatchHeader, base int64) error) error {
	real := hasRealOffsets(r.SegmentKey)
	base := r.BaseOffset
	for len(chunk) > 0 {
		b, rest, h, err := segment.NextBatch(chunk)
		if err != nil {
			return fmt.Errorf("walk %s [%d,+%d): %w", r.SegmentKey, r.Position, r.Length, err)
		}
		if real {
			if h.BaseOffset < base {
				return fmt.Errorf("walk %s: batch at offset %d after offset %d: %w", r.SegmentKey, h.BaseOffset, base, segment.ErrCorruptBatch)
			}
			base = h.BaseOffset
		}
		if base+h.OffsetCount()-1 > r.LastOffset {
			return fmt.Errorf("walk %s: batch ends at offset %d, row at %d: %w", r.SegmentKey, base+h.OffsetCount()-1, r.LastOffset, segment.ErrCorruptBatch)
		}
		if err := fn(b, h, base); err != nil {
			return err
		}
		base += h.OffsetCount()
		chunk = rest
	}
	if !real && base != r.LastOffset+1 {
		return fmt.Errorf("walk %s: batches end at offset %d, row at %d", r.SegmentKey, base-1, r.LastOffset)
	}
	return nil
}

// abortedRanges are a partition's aborted transactions by producer.
type abortedRanges map[int64][]metastore.AbortedTxn

// has reports whether the batch at base is data of an aborted
// transaction.
func (a abortedRanges) has(h segment.BatchHeader, base int64) bool {
	if !h.IsTransactional() || h.IsControl() {
		return false
	}
	for _, t := range a[h.ProducerID] {
		if t.FirstOffset <= base && base <= t.LastOffset {
			return true
		}
	}
	return false
}

// abortedOf lists the aborted transactions over rows[:n], from logStart
// (the first row may hold it): what is below is not read. Should retention
// have moved the log start on since, the store refuses, and the pass is
// tried again next time.
func (c *Cleaner) abortedOf(ctx context.Context, tp metastore.TopicPartition, rows []metastore.IndexEntry, n int, logStart int64) (abortedRanges, error) {
	out := abortedRanges{}
	if n == 0 {
		return out, nil
	}
	txns, err := c.Store.AbortedTxns(ctx, tp, max(rows[0].BaseOffset, logStart), rows[n-1].LastOffset+1)
	if err != nil {
		return nil, fmt.Errorf("aborted transactions of %x/%d: %w", tp.Topic[:], tp.Partition, err)
	}
	for _, t := range txns {
		out[t.ProducerID] = append(out[t.ProducerID], t)
	}
	return out, nil
}

// cleanRows rewrites rows (consecutive) into one cleaned segment and swaps
// it in; it reports whether the swap happened (or was not needed: rows
// already clean that the map changes nothing in). open holds the producers
// whose transaction has a record kept so far in the pass; cleanRows keeps
// it up to date.
func (c *Cleaner) cleanRows(ctx context.Context, tp segment.TopicRef, rows []metastore.IndexEntry, m *offsetMap,
	aborted abortedRanges, open map[int64]bool, pol cleanPolicy, nowMs int64, res *Cleaning) (bool, error) {
	chunks := make([][]byte, len(rows))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(compactReads)
	for i, r := range rows {
		g.Go(func() error {
			var err error
			chunks[i], err = c.readRow(gctx, r)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return false, err
	}
	var (
		batches [][]byte
		changed bool
		removed int64
		markers int64
		pending int64 // the latest delete horizon still ahead
		last    []byte
	)
	horizon := nowMs + pol.deleteRetentionMs
	for i, r := range rows {
		changed = changed || !strings.HasPrefix(r.SegmentKey, CleanedPrefix)
		res.ReadBytes += int64(len(chunks[i]))
		err := walkRow(r, chunks[i], func(b []byte, h segment.BatchHeader, base int64) error {
			if h.IsControl() {
				out, drop, err := cleanMarker(b, h, open, horizon, nowMs)
				if err != nil {
					return fmt.Errorf("the marker at offset %d: %w", base, err)
				}
				segment.SetBaseOffset(out, base)
				if drop {
					markers++
					last = out // dropped, unless it ends the segment
					return nil
				}
				if oh, err := segment.ParseBatchHeader(out); err == nil {
					if ohz, ok := oh.DeleteHorizon(); ok && ohz > nowMs {
						pending = max(pending, ohz)
					}
				}
				if last != nil || !bytes.Equal(out, b) {
					changed = true
				}
				batches = append(batches, out)
				last = nil
				return nil
			}
			var (
				out  []byte
				kept int
				err  error
			)
			hz, hasHz := h.DeleteHorizon()
			tombstone := false // a tombstone is kept
			if aborted.has(h, base) {
				out, kept, err = segment.FilterBatch(nil, b, func(segment.CleanRecord) bool { return false }, -1, c.enc, maxRecordsBytes)
			} else {
				out, kept, err = segment.FilterBatch(nil, b, func(rec segment.CleanRecord) bool {
					switch {
					case rec.Key == nil:
						return false // a compacted topic's records need keys
					case m.get(rec.Key) > base+int64(rec.OffsetDelta):
						return false // a later record of the key exists
					case rec.Tombstone && hasHz && hz <= nowMs:
						return false // kept for delete.retention.ms after its first cleaning
					}
					tombstone = tombstone || rec.Tombstone
					return true
				}, horizon, c.enc, maxRecordsBytes)
			}
			if err != nil {
				return fmt.Errorf("clean the batch at offset %d: %w", base, err)
			}
			oh, err := segment.ParseBatchHeader(out)
			if err != nil {
				return err
			}
			segment.SetBaseOffset(out, base)
			removed += int64(h.NumRecords) - int64(kept)
			if kept > 0 && h.IsTransactional() {
				open[h.ProducerID] = true
			}
			if !bytes.Equal(out, b) {
				changed = true
			}
			if ohz, ok := oh.DeleteHorizon(); ok && tombstone {
				pending = max(pending, ohz)
			}
			if kept == 0 {
				last = out // dropped, unless it ends the segment
				return nil
			}
			if last != nil {
				changed = true // an empty batch before this one is dropped
			}
			batches = append(batches, out)
			last = nil
			return nil
		})
		if err != nil {
			return false, err
		}
		chunks[i] = nil
	}
	if last != nil {
		// The segment ends where its rows did, so a consumer reading past
		// removed records at the end always gets a batch to move on by.
		batches = append(batches, last)
	}
	if !changed {
		return true, nil
	}
	obj, ci, err := segment.CompactedObject(tp, batches)
	if err != nil {
		return false, err
	}
	key := fmt.Sprintf("%s%x/%d/%020d-%d-%s-%d.seg", CleanedPrefix, tp.ID[:], tp.Partition, rows[0].BaseOffset, pending, c.AgentID, time.Now().UnixNano())
	if err := c.Store.RecordUpload(ctx, key, c.AgentID); err != nil {
		return false, fmt.Errorf("record upload %s: %w", key, err)
	}
	if err := c.Bucket.Put(ctx, key, obj); err != nil {
		return false, fmt.Errorf("upload %s: %w", key, err)
	}
	res.WrittenBytes += int64(len(obj))
	r := metastore.Replacement{
		TopicPartition: metastore.TopicPartition{Topic: tp.ID, Partition: tp.Partition},
		Old:            rows, SegmentKey: key, AgentID: c.AgentID, Size: int64(len(obj)),
		Position: ci.Position, Length: ci.Length, BatchCount: ci.BatchCount,
		MinTimestamp: ci.MinTimestamp, MaxTimestamp: ci.MaxTimestamp,
		// Other agents drop their cached rows, which name removed records.
		Removes: removed > 0 || markers > 0,
	}
	ok, err := c.Store.ReplaceIndex(ctx, r)
	switch {
	case errors.Is(err, metastore.ErrUploadNotRecorded):
		if aerr := c.Store.AbandonUpload(ctx, key); aerr != nil {
			return false, fmt.Errorf("abandon upload %s: %w", key, aerr)
		}
		return false, fmt.Errorf("swap in %s: %w", key, err)
	case err != nil:
		return false, fmt.Errorf("swap in %s: %w", key, err)
	case !ok:
		res.Refused++
		if _, err := c.Store.ForgetUpload(ctx, key); err != nil {
			return false, fmt.Errorf("forget refused upload %s: %w", key, err)
		}
		return false, nil
	}
	res.Segments++
	res.Removed += removed
	res.Markers += markers
	if c.Metrics != nil {
		c.Metrics.cleanerSegments.Inc()
		c.Metrics.cleanerRemoved.Add(float64(removed))
	}
	if c.OnSwap != nil {
		c.OnSwap(r)
	}
	return true, nil
}

// cleanMarker decides a transaction marker's fate in a cleaning pass (see
// Cleaner): drop reports that it goes, and out is the marker to write
// otherwise, dated with horizon if it is a COMMIT marker whose transaction
// has no record left and was not dated yet. The producer's transaction
// ends here either way.
func cleanMarker(b []byte, h segment.BatchHeader, open map[int64]bool, horizon, nowMs int64) (out []byte, drop bool, err error) {
	commit, err := segment.MarkerCommits(b)
	if err != nil {
		return nil, false, err
	}
	hadRecords := open[h.ProducerID]
	delete(open, h.ProducerID)
	if !commit || hadRecords {
		return append([]byte(nil), b...), false, nil
	}
	if hz, ok := h.DeleteHorizon(); ok && hz <= nowMs {
		return append([]byte(nil), b...), true, nil
	}
	out, err = segment.StampMarkerHorizon(nil, b, horizon)
	return out, false, err
}

// cleanedHorizon reads the delete horizon from a cleaned segment's key
// (see CleanedPrefix); 0 if none or unreadable.
func cleanedHorizon(key string) int64 {
	name := key[strings.LastIndexByte(key, '/')+1:]
	parts := strings.SplitN(name, "-", 3)
	if len(parts) < 3 {
		return 0
	}
	h, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return 0
	}
	return h
}
