package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore/metastoreurl"
	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/objectstore/bucketurl"
	"github.com/siltstream/silt/segment"
)

// segmentPrefix is where agents write segments (agent/flusher.go).
const segmentPrefix = "segments/"

func newSegmentCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "segment",
		Short: "Read segments straight from the bucket, without an agent",
	}
	cmd.AddCommand(newSegmentDumpCmd(stdout))
	return cmd
}

// dumpOptions are the flags of `silt segment dump`.
type dumpOptions struct {
	records       bool
	maxValueBytes int
	metastoreURL  string
	prefix        string
}

func newSegmentDumpCmd(stdout io.Writer) *cobra.Command {
	var opts dumpOptions
	cmd := &cobra.Command{
		Use:   "dump BUCKET-URL [KEY]",
		Short: "List segment objects, or print one segment's index and records",
		Long: `Without KEY, list the segment objects under segments/ with their sizes.
With KEY, print the segment's header and footer index (one entry per chunk:
topic, partition, byte range, batches, records, timestamps) and then its
records: offset, timestamp, key, value and headers. Values that are printable
UTF-8 are quoted, anything else is hex; both are cut at --max-value-bytes.

Offsets: a write-path segment does not hold its records' offsets (they are
assigned when the flush commits and kept in the metastore index), so records
are numbered +N from the chunk's first offset, unless --metastore-url is given:
then the real offsets are read from the index rows of this segment. A segment
the index does not reference is an upload that never committed: nothing in it
was acknowledged to a producer.

Compacted segments (under compacted/, list them with --prefix compacted/)
hold one partition each and their records' real offsets, so they need no
metastore: the bucket alone is a complete, ordered copy of the partitions
compaction has reached.

BUCKET-URL is the agent's bucket.url, e.g. s3://bucket/prefix?region=us-east-1
(credentials from the AWS default chain) or file:///var/lib/silt/bucket.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			bucket, err := bucketurl.Open(ctx, args[0])
			if err != nil {
				return configErrorf("bucket %s: %v", redactURL(args[0]), err)
			}
			defer bucket.Close()
			w := bufio.NewWriter(stdout)
			if len(args) == 1 {
				err = listSegments(ctx, w, bucket, opts.prefix)
			} else {
				err = dumpSegment(ctx, w, bucket, args[1], opts)
			}
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&opts.records, "records", true, "print records, not only the index")
	cmd.Flags().IntVar(&opts.maxValueBytes, "max-value-bytes", 256, "print at most this many bytes of each key, value and header value (0: no limit)")
	cmd.Flags().StringVar(&opts.metastoreURL, "metastore-url", "", "metastore to read real offsets from, e.g. postgres://user@host:5432/silt")
	cmd.Flags().StringVar(&opts.prefix, "prefix", segmentPrefix, "key prefix to list when no KEY is given")
	return cmd
}

// listSegments prints every object under prefix with its size.
func listSegments(ctx context.Context, w io.Writer, b objectstore.Bucket, prefix string) error {
	var n, total int64
	fmt.Fprintf(w, "%-12s  %-24s  %s\n", "SIZE", "LAST-MODIFIED", "KEY")
	err := b.List(ctx, prefix, func(a objectstore.Attrs) error {
		n++
		total += a.Size
		_, err := fmt.Fprintf(w, "%12d  %-24s  %s\n", a.Size, a.LastModified.UTC().Format(time.RFC3339), a.Key)
		return err
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	_, err = fmt.Fprintf(w, "%d objects, %d bytes\n", n, total)
	return err
}

// chunkKey identifies a chunk of one segment in the metastore index.
type chunkKey struct {
	topic     [16]byte
	partition int32
	position  int64
}

// realBaseOffsets reads the committed base offset of each chunk of key from
// the metastore index.
func realBaseOffsets(ctx context.Context, metaURL, key string) (map[chunkKey]int64, error) {
	store, err := metastoreurl.Open(ctx, metaURL)
	if err != nil {
		return nil, configErrorf("metastore %s: %v", redactURL(metaURL), err)
	}
	defer store.Close()
	rows, err := store.IndexBySegment(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read index rows of %s: %w", key, err)
	}
	out := make(map[chunkKey]int64, len(rows))
	for _, r := range rows {
		out[chunkKey{[16]byte(r.Topic), r.Partition, r.Position}] = r.BaseOffset
	}
	return out, nil
}

// dumpSegment prints one segment's index and, with opts.records, records.
func dumpSegment(ctx context.Context, w io.Writer, b objectstore.Bucket, key string, opts dumpOptions) error {
	r, err := segment.Open(ctx, b, key)
	if err != nil {
		return err
	}
	var bases map[chunkKey]int64
	if opts.metastoreURL != "" {
		if bases, err = realBaseOffsets(ctx, opts.metastoreURL, key); err != nil {
			return err
		}
	}
	chunks := r.Chunks()
	fmt.Fprintf(w, "segment %s\n", key)
	fmt.Fprintf(w, "version %d, %d bytes, %d chunks\n", r.Version(), r.Size(), len(chunks))
	compacted := len(chunks) > 0
	for _, c := range chunks {
		compacted = compacted && c.BaseOffset != segment.NoBaseOffset
	}
	switch {
	case compacted:
		fmt.Fprintln(w, "offsets: real, held by the segment (a compacted segment)")
	case opts.metastoreURL == "":
		fmt.Fprintln(w, "offsets: +N from each chunk's first offset (write-path segments do not hold offsets; --metastore-url gives the real ones)")
	case len(bases) == 0:
		fmt.Fprintln(w, "offsets: +N; the metastore index does not reference this segment (an upload that never committed, or removed by retention): nothing in it was acknowledged")
	default:
		fmt.Fprintln(w, "offsets: real, from the metastore index")
	}
	dec := kgo.DefaultDecompressor()
	for i, c := range chunks {
		base, known := c.BaseOffset, c.BaseOffset != segment.NoBaseOffset
		if !known {
			base, known = bases[chunkKey{c.TopicID, c.Partition, c.Position}]
		}
		fmt.Fprintf(w, "\nchunk %d: topic %q partition %d (topic id %s)\n", i, c.Topic, c.Partition, uuidString(c.TopicID))
		fmt.Fprintf(w, "  bytes [%d, %d) (%d), crc %08x\n", c.Position, c.Position+c.Length, c.Length, c.CRC)
		fmt.Fprintf(w, "  batches %d, records %d, offsets %d\n", c.BatchCount, c.RecordCount, c.OffsetCount)
		fmt.Fprintf(w, "  timestamps %s .. %s\n", formatMillis(c.MinTimestamp), formatMillis(c.MaxTimestamp))
		switch {
		case c.BaseOffset != segment.NoBaseOffset:
			fmt.Fprintf(w, "  base offset %d (in the segment)\n", c.BaseOffset)
		case known:
			fmt.Fprintf(w, "  base offset %d (from the metastore index), last %d\n", base, base+c.OffsetCount-1)
		default:
			fmt.Fprintln(w, "  base offset unknown (write path)")
		}
		if !opts.records {
			continue
		}
		chunk, err := r.ReadChunk(ctx, i)
		if err != nil {
			return err
		}
		if err := dumpChunk(w, chunk, c, base, known, dec, opts.maxValueBytes); err != nil {
			return fmt.Errorf("chunk %d of %s: %w", i, key, err)
		}
	}
	return nil
}

// dumpChunk prints every batch and record of a chunk. With known, offsets
// are absolute from base; otherwise relative (+N) to the chunk's start.
func dumpChunk(w io.Writer, chunk []byte, c segment.ChunkInfo, base int64, known bool, dec kgo.Decompressor, maxBytes int) error {
	compacted := c.BaseOffset != segment.NoBaseOffset
	next := int64(0) // offset of the current batch relative to base
	it := segment.NewBatchIter(chunk)
	for n := 0; it.Next(); n++ {
		h := it.Header()
		if compacted {
			next = h.BaseOffset - base
		}
		fmt.Fprintf(w, "  batch %d: offsets %s..%s, %d records, codec %s, %d bytes",
			n, offsetLabel(base, next, known), offsetLabel(base, next+int64(h.LastOffsetDelta), known),
			h.NumRecords, codecName(h.Compression()), h.Size())
		if h.ProducerID >= 0 {
			fmt.Fprintf(w, ", producer %d epoch %d seq %d", h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		if h.IsTransactional() {
			fmt.Fprint(w, ", transactional")
		}
		if h.IsControl() {
			fmt.Fprint(w, ", control")
		}
		if hz, ok := h.DeleteHorizon(); ok {
			fmt.Fprintf(w, ", delete horizon %s", formatMillis(hz)) // KIP-534: firstTimestamp holds it
		}
		fmt.Fprintln(w)
		recs, err := decodeRecords(it.Batch(), dec)
		if err != nil {
			return fmt.Errorf("batch %d: %w", n, err)
		}
		logAppend := h.Attributes&0x08 != 0
		for _, rec := range recs {
			ts := h.FirstTimestamp + rec.TimestampDelta64
			if logAppend {
				ts = h.MaxTimestamp
			}
			fmt.Fprintf(w, "    %s  %s  key=%s  value=%s", offsetLabel(base, next+int64(rec.OffsetDelta), known),
				formatMillis(ts), formatBytes(rec.Key, maxBytes), formatBytes(rec.Value, maxBytes))
			for _, hd := range rec.Headers {
				fmt.Fprintf(w, "  header %s=%s", strconv.Quote(hd.Key), formatBytes(hd.Value, maxBytes))
			}
			fmt.Fprintln(w)
		}
		next += int64(h.LastOffsetDelta) + 1
	}
	return it.Err()
}

// decodeRecords decompresses a batch's records and decodes them with kmsg.
func decodeRecords(batch []byte, dec kgo.Decompressor) ([]kmsg.Record, error) {
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(batch); err != nil {
		return nil, fmt.Errorf("decode batch: %w", err)
	}
	data, err := dec.Decompress(rb.Records, kgo.CompressionCodecType(rb.Attributes&0x07))
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w", codecName(int8(rb.Attributes&0x07)), err)
	}
	// NumRecords comes from the bucket; cap the allocation by what the bytes
	// can hold (a record is at least 7 bytes).
	out := make([]kmsg.Record, 0, min(int(max(rb.NumRecords, 0)), len(data)/7+1))
	for i := int32(0); i < rb.NumRecords; i++ {
		length, n := binary.Varint(data)
		if n <= 0 || length < 0 || int64(len(data)-n) < length {
			return nil, fmt.Errorf("record %d of %d: bad length", i, rb.NumRecords)
		}
		end := n + int(length)
		var rec kmsg.Record
		if err := rec.ReadFrom(data[:end]); err != nil {
			return nil, fmt.Errorf("record %d of %d: %w", i, rb.NumRecords, err)
		}
		out = append(out, rec)
		data = data[end:]
	}
	if len(data) != 0 {
		return nil, fmt.Errorf("%d bytes after the last of %d records", len(data), rb.NumRecords)
	}
	return out, nil
}

func offsetLabel(base, rel int64, known bool) string {
	if known {
		return strconv.FormatInt(base+rel, 10)
	}
	return "+" + strconv.FormatInt(rel, 10)
}

func codecName(c int8) string {
	switch c {
	case 0:
		return "none"
	case 1:
		return "gzip"
	case 2:
		return "snappy"
	case 3:
		return "lz4"
	case 4:
		return "zstd"
	}
	return fmt.Sprintf("unknown(%d)", c)
}

// formatMillis prints a Kafka timestamp as UTC RFC 3339 with milliseconds.
func formatMillis(ms int64) string {
	if ms < 0 {
		return strconv.FormatInt(ms, 10)
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

// formatBytes prints b quoted if it is printable UTF-8 text, else as hex,
// cut at max bytes (0: no limit); nil is null.
func formatBytes(b []byte, max int) string {
	if b == nil {
		return "null"
	}
	cut := b
	if max > 0 && len(cut) > max {
		cut = cut[:max]
	}
	var s string
	if text := printableUTF8(b); text {
		for len(cut) > 0 && !utf8.Valid(cut) { // do not split a rune
			cut = cut[:len(cut)-1]
		}
		s = strconv.Quote(string(cut))
	} else {
		s = "hex:" + hex.EncodeToString(cut)
	}
	if len(cut) < len(b) {
		s += fmt.Sprintf("...(%d bytes)", len(b))
	}
	return s
}

func printableUTF8(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && !strings.ContainsRune("\t\n\r", r) {
			return false
		}
	}
	return true
}

// uuidString formats a topic id like Kafka tools print UUIDs.
func uuidString(id [16]byte) string {
	h := hex.EncodeToString(id[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
