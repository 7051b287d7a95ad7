package partition

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/segment"
)

// Getter reads byte ranges of objects: the block cache in an agent.
type Getter interface {
	Get(ctx context.Context, key string, off, length int64) ([]byte, error)
}

// Warmer is what a Getter may offer to load ranges ahead of reading them:
// the block cache's Warm.
type Warmer interface {
	Warm(ctx context.Context, key string, off, length int64) error
}

// ReadStats count where index lookups were served from.
type ReadStats struct {
	IndexQueries   atomic.Int64 // index lookups that went to the store
	IndexCacheHits atomic.Int64 // index lookups served from memory
}

// The read window: rows worth up to 64 MiB of a partition, at most 256.
const (
	indexWindowBytes = 64 << 20
	indexWindowRows  = 256
)

// ErrIndexGone says the index rows a read needed are no longer where the
// reader found them: a cached row's object is gone from the bucket, or the
// store has no rows from the offset asked for although it is below the end
// of the log. Both mean the log start moved past them (retention,
// DeleteRecords) or their rows were replaced; the reader's cached rows are
// dropped. The caller re-reads the log start offset: below it, the answer
// is OFFSET_OUT_OF_RANGE; otherwise reading again resolves fresh rows.
var ErrIndexGone = errors.New("index rows gone: the log start moved or rows were replaced")

// Reader is the fetch read path: index rows from memory or the store, bytes
// through the cache, base offsets patched into the returned copies.
type Reader struct {
	store  Store
	bucket Getter
	stats  *ReadStats
}

// NewReader returns a Reader counting into stats.
func NewReader(store Store, bucket Getter, stats *ReadStats) *Reader {
	return &Reader{store: store, bucket: bucket, stats: stats}
}

// Read returns whole batches of p starting with the one holding offset and
// ending before end, up to limit bytes; if first is set, the first batch is
// returned even when it alone exceeds limit (KIP-74), so a consumer can
// always make progress. Batches carry their real base offsets and leader
// epoch 0.
func (r *Reader) Read(ctx context.Context, p *Partition, offset, end, limit int64, first bool) ([]byte, error) {
	var out []byte
	for offset < end {
		before := offset
		rows, err := r.index(ctx, p, offset, max(limit-int64(len(out)), 1))
		if err != nil {
			return nil, err
		}
		if len(rows) == 0 {
			// Below the end of the log there is always a row, unless the
			// log start moved past offset since it was checked.
			p.dropIndexCache()
			return nil, fmt.Errorf("read %s/%d at %d: %w", p.TopicName, p.Index, offset, ErrIndexGone)
		}
		if out == nil {
			// Sized once for what the rows hold, up to limit: appended to
			// batch by batch, a read of a MiB would copy itself over as
			// it doubled.
			var n int64
			for _, row := range rows {
				n += row.Length
			}
			out = make([]byte, 0, min(n, limit))
		}
		for _, row := range rows {
			var full bool
			out, offset, full, err = r.readRow(ctx, p, row, out, offset, end, limit, first)
			if err != nil {
				return nil, err
			}
			if full {
				return out, nil
			}
		}
		if offset == before {
			return out, nil // the index promised data it did not hold; do not spin
		}
	}
	return out, nil
}

// Warm makes the bytes that Read(ctx, p, offset, end, limit, _) would read
// first cached, if the Getter is a Warmer, and returns once they are: the
// index rows from offset (from memory or the store, kept as Read keeps
// them) and, in each, the range from where Read would start, at least
// what Read asks the cache for at once. A fetch warms the partitions it is
// about to read a few at a time, so their cold reads overlap. Errors are
// not reported: the Read that follows meets them and answers them.
func (r *Reader) Warm(ctx context.Context, p *Partition, offset, end, limit int64) {
	w, ok := r.bucket.(Warmer)
	if !ok || offset >= end {
		return
	}
	rows, err := r.index(ctx, p, offset, max(limit, 1))
	if err != nil {
		return
	}
	var n int64
	for _, row := range rows {
		if n >= limit || row.BaseOffset >= end {
			return
		}
		pos := row.Position
		if h, ok := p.readHint(row.SegmentKey, offset, row); ok {
			pos = h.pos
		}
		length := min(row.Position+row.Length-pos, max(limit-n, readStep))
		if w.Warm(ctx, row.SegmentKey, pos, length) != nil {
			return
		}
		n += length
	}
}

// Key prefixes of compacted segments (jobs.CompactedPrefix, written by
// the Compactor, and jobs.CleanedPrefix, by keyed compaction), whose
// batches carry their real base offsets (segment/FORMAT.md).
var realOffsetPrefixes = []string{"compacted/", "cleaned/"}

// HasRealOffsets reports whether the batches of the segment named key
// carry their real base offsets, with gaps allowed between them, rather
// than placeholders patched from the index row.
func HasRealOffsets(key string) bool {
	for _, p := range realOffsetPrefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// readStep is the least a read of a row asks the cache for at once: rows
// of the write path are usually smaller and read whole; a compacted row
// (tens of MiB) is read in pieces of what the fetch can still return.
const readStep = 1 << 20

// readRow appends to out the batches of row from the one holding offset,
// while they are below end and fit in limit (with first, the first batch
// of out always fits). It reads the row in pieces, not whole: a compacted
// row is tens of MiB, and a fetch wants at most limit of it. Batches
// before offset are skipped by their headers; where a previous read of
// the row stopped is remembered (Partition.readHint), so a consumer
// reading on does not walk the row's headers again. full reports that
// limit or end stopped the read; next is the offset after out.
func (r *Reader) readRow(ctx context.Context, p *Partition, row metastore.IndexEntry, out []byte, offset, end, limit int64, first bool) (_ []byte, next int64, full bool, err error) {
	rowEnd := row.Position + row.Length
	real := HasRealOffsets(row.SegmentKey)
	pos, base := row.Position, row.BaseOffset
	if h, ok := p.readHint(row.SegmentKey, offset, row); ok {
		pos, base = h.pos, h.offset
	}
	var (
		buf    []byte // bytes of the object at [bufPos, bufPos+len(buf))
		bufPos int64
	)
	// have makes buf hold [pos, pos+n), reading at least want bytes.
	have := func(n, want int64) error {
		if pos >= bufPos && pos+n <= bufPos+int64(len(buf)) {
			return nil
		}
		want = min(max(n, want), rowEnd-pos)
		b, err := r.bucket.Get(ctx, row.SegmentKey, pos, want)
		if objectstore.IsNotFound(err) {
			p.dropIndexCache()
			return fmt.Errorf("read %s [%d,+%d): %w: %w", row.SegmentKey, pos, want, ErrIndexGone, err)
		}
		if err != nil {
			return fmt.Errorf("read %s [%d,+%d): %w", row.SegmentKey, pos, want, err)
		}
		if int64(len(b)) < n {
			return fmt.Errorf("read %s [%d,+%d): %d bytes: %w", row.SegmentKey, pos, want, len(b), segment.ErrTruncated)
		}
		buf, bufPos = b, pos
		return nil
	}
	defer func() {
		if err == nil && pos < rowEnd && pos > row.Position {
			p.setReadHint(readHint{key: row.SegmentKey, pos: pos, offset: base})
		}
	}()
	for pos < rowEnd {
		if base >= end {
			return out, offset, true, nil // past the end asked for (the LSO for read_committed)
		}
		step := max(limit-int64(len(out)), readStep)
		if err := have(segment.BatchHeaderSize, step); err != nil {
			return out, offset, false, err
		}
		h, err := segment.ParseBatchHeader(buf[pos-bufPos:])
		if err != nil {
			return out, offset, false, fmt.Errorf("walk %s at %d: %w", row.SegmentKey, pos, err)
		}
		size := int64(h.Size())
		if h.BatchLength < segment.BatchHeaderSize-12 || pos+size > rowEnd {
			return out, offset, false, fmt.Errorf("walk %s at %d: batch of %d bytes in a row ending at %d: %w",
				row.SegmentKey, pos, size, rowEnd, segment.ErrCorruptBatch)
		}
		if real {
			// A compacted row may have gaps (records removed by keyed
			// compaction): its batches say where they are.
			if h.BaseOffset < base || h.BaseOffset+h.OffsetCount()-1 > row.LastOffset {
				return out, offset, false, fmt.Errorf("walk %s at %d: batch at offset %d after offset %d in a row ending at %d: %w",
					row.SegmentKey, pos, h.BaseOffset, base, row.LastOffset, segment.ErrCorruptBatch)
			}
			base = h.BaseOffset
		}
		last := base + h.OffsetCount() - 1
		if last >= offset {
			if int64(len(out))+size > limit && !(first && len(out) == 0) {
				return out, offset, true, nil
			}
			if err := have(size, step); err != nil {
				return out, offset, false, err
			}
			start := len(out)
			out = append(out, buf[pos-bufPos:pos-bufPos+size]...)
			segment.SetBaseOffset(out[start:], base)
			segment.SetLeaderEpoch(out[start:], 0)
			offset = last + 1
		}
		pos += size
		base = last + 1
	}
	if real && base <= row.LastOffset+1 {
		// Records removed at the row's end: nothing of it is left past
		// offset, so the read goes on at the next row.
		base, offset = row.LastOffset+1, max(offset, row.LastOffset+1)
	}
	if base != row.LastOffset+1 {
		return out, offset, false, fmt.Errorf("walk %s [%d,+%d): batches end at offset %d, index row at %d",
			row.SegmentKey, row.Position, row.Length, base-1, row.LastOffset)
	}
	return out, offset, int64(len(out)) >= limit, nil
}

// index returns index rows of p from offset on, from memory when the tail
// or the read window covers it, else from the store. A store query asks for
// a generous window (indexWindowBytes) and keeps it, so a consumer catching
// up costs one query per window, not one per fetch.
func (r *Reader) index(ctx context.Context, p *Partition, offset, maxBytes int64) ([]metastore.IndexEntry, error) {
	if rows, ok := p.cachedIndex(offset, maxBytes); ok {
		r.stats.IndexCacheHits.Add(1)
		return rows, nil
	}
	r.stats.IndexQueries.Add(1)
	rows, err := r.store.Index(ctx, p.TP, offset, max(maxBytes, indexWindowBytes), indexWindowRows)
	if err != nil {
		return nil, err
	}
	if len(rows) > 0 && rows[0].BaseOffset > offset {
		// Rows are contiguous from the log start: a first row after
		// offset means those holding it were pruned.
		return nil, nil
	}
	p.setWindow(rows)
	out, _ := rowsFrom(rows, offset, maxBytes)
	return out, nil
}
