package segment

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

type appended struct {
	tp    TopicRef
	batch []byte
}

// buildSegment appends nBatches batches to each of nParts partitions,
// interleaved as a real write buffer would see them, and finishes.
func buildSegment(t testing.TB, w *Writer, nTopics, nParts, nBatches int, seed uint64) ([]byte, []ChunkInfo, []appended) {
	rng := rand.New(rand.NewPCG(seed, 1))
	var tps []TopicRef
	for ti := range nTopics {
		name := fmt.Sprintf("topic-%d", (nTopics-ti)*7%11) // ids not in name order
		for p := range nParts {
			tps = append(tps, TopicRef{ID: topicID(name), Name: name, Partition: int32(nParts - 1 - p)})
		}
	}
	var all []appended
	for i := range nBatches * len(tps) {
		tp := tps[rng.IntN(len(tps))]
		if i < len(tps) {
			tp = tps[i]
		}
		b := makeBatch(batchSpec{baseOffset: -1, records: 1 + rng.IntN(5), valueSize: rng.IntN(40), firstTS: int64(1000 + rng.IntN(100)), seed: byte(i)})
		w.Append(tp, b, mustValidate(t, b))
		all = append(all, appended{tp, b})
	}
	size := w.Size()
	obj, chunks := w.Finish()
	if size != len(obj) {
		t.Fatalf("Size() %d, object %d bytes", size, len(obj))
	}
	return obj, chunks, all
}

func TestRoundtrip(t *testing.T) {
	w := NewWriter()
	for round := range 3 { // also exercises Reset and buffer reuse
		w.Reset()
		obj, chunks, all := buildSegment(t, w, 3, 5, 6, uint64(round))
		r, err := Parse(obj)
		if err != nil {
			t.Fatal(err)
		}
		if r.Version() != 1 || !slices.Equal(r.Chunks(), chunks) || len(chunks) != 15 {
			t.Fatalf("chunks differ:\n%v\n%v", r.Chunks(), chunks)
		}
		for i := 1; i < len(chunks); i++ {
			a, b := chunks[i-1], chunks[i]
			if c := bytes.Compare(a.TopicID[:], b.TopicID[:]); c > 0 || c == 0 && a.Partition >= b.Partition {
				t.Fatalf("chunks %d,%d out of order", i-1, i)
			}
			if a.Position+a.Length != b.Position {
				t.Fatalf("chunks %d,%d not contiguous", i-1, i)
			}
		}
		for i, c := range chunks {
			chunk, err := r.ReadChunk(context.Background(), i)
			if err != nil {
				t.Fatal(err)
			}
			var want []appended
			for _, a := range all {
				if a.tp.ID == c.TopicID && a.tp.Partition == c.Partition {
					want = append(want, a)
				}
			}
			var offsets, records int64
			minTS, maxTS := int64(1<<62), int64(-1)
			it := NewBatchIter(chunk)
			n := 0
			for ; it.Next(); n++ {
				if !bytes.Equal(it.Batch(), want[n].batch) {
					t.Fatalf("chunk %d batch %d differs", i, n)
				}
				h := it.Header()
				if h.BaseOffset != -1 {
					t.Fatalf("placeholder base offset changed: %d", h.BaseOffset)
				}
				offsets += h.OffsetCount()
				records += int64(h.NumRecords)
				minTS, maxTS = min(minTS, h.FirstTimestamp), max(maxTS, h.MaxTimestamp)
			}
			if it.Err() != nil || n != len(want) || int(c.BatchCount) != n {
				t.Fatalf("chunk %d: %d batches, want %d (%d), err %v", i, n, len(want), c.BatchCount, it.Err())
			}
			if c.OffsetCount != offsets || c.RecordCount != records || c.MinTimestamp != minTS || c.MaxTimestamp != maxTS || c.BaseOffset != -1 || c.Topic != want[0].tp.Name {
				t.Fatalf("chunk %d info %+v", i, c)
			}
		}
	}
}

func TestEmptySegment(t *testing.T) {
	obj, chunks := NewWriter().Finish()
	r, err := Parse(obj)
	if err != nil || len(chunks) != 0 || len(r.Chunks()) != 0 || len(obj) != headerSize+4+trailerSize {
		t.Fatalf("err %v chunks %d size %d", err, len(r.Chunks()), len(obj))
	}
}

func TestAppendObjectReusesBuffer(t *testing.T) {
	w := NewWriter()
	b := makeBatch(batchSpec{records: 2})
	w.Append(TopicRef{Name: "a"}, b, mustValidate(t, b))
	buf := make([]byte, 0, 4096)
	obj, _ := w.AppendObject(buf)
	if &obj[0] != &buf[:1][0] {
		t.Fatal("AppendObject did not use dst")
	}
	if _, err := Parse(obj); err != nil {
		t.Fatal(err)
	}
}

func TestOpen(t *testing.T) {
	obj, chunks, _ := buildSegment(t, NewWriter(), 2, 3, 4, 42)
	bkt := newFakeBucket()
	ctx := context.Background()
	if err := bkt.Put(ctx, "seg/1", obj); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, bkt, "seg/1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Chunks(), chunks) {
		t.Fatal("chunks differ")
	}
	footerPos := chunks[len(chunks)-1].Position + chunks[len(chunks)-1].Length
	wantGets := []string{
		fmt.Sprintf("%d+%d", len(obj)-trailerSize, trailerSize),
		fmt.Sprintf("%d+%d", footerPos, int64(len(obj)-trailerSize)-footerPos),
	}
	if bkt.heads != 1 || !slices.Equal(bkt.gets, wantGets) {
		t.Fatalf("heads %d gets %v, want 1 and %v", bkt.heads, bkt.gets, wantGets)
	}
	for i, c := range chunks {
		b, err := r.ReadChunk(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, obj[c.Position:c.Position+c.Length]) {
			t.Fatalf("chunk %d differs", i)
		}
	}

	// A corrupted chunk in the bucket is caught by ReadChunk.
	bad := slices.Clone(obj)
	bad[chunks[1].Position+5] ^= 0x40
	_ = bkt.Put(ctx, "seg/bad", bad)
	r, err = Open(ctx, bkt, "seg/bad")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadChunk(ctx, 1); !errors.Is(err, ErrChecksum) {
		t.Fatalf("corrupt chunk: %v", err)
	}
	if _, err := r.ReadChunk(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadChunk(ctx, len(chunks)); err == nil {
		t.Fatal("chunk index out of range accepted")
	}

	if _, err := Open(ctx, bkt, "seg/missing"); err == nil {
		t.Fatal("missing object opened")
	}
	_ = bkt.Put(ctx, "seg/tiny", []byte("hello"))
	if _, err := Open(ctx, bkt, "seg/tiny"); !errors.Is(err, ErrNotSegment) {
		t.Fatalf("tiny: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	obj, chunks, _ := buildSegment(t, NewWriter(), 1, 3, 2, 7)
	footerPos := int(chunks[2].Position + chunks[2].Length)
	tr := len(obj) - trailerSize
	be := binary.BigEndian
	cases := []struct {
		name string
		mod  func(b []byte) []byte
		want error
	}{
		{"trailer magic", func(b []byte) []byte { b[len(b)-1] = 'X'; return b }, ErrNotSegment},
		{"header magic", func(b []byte) []byte { b[0] = 'X'; return b }, ErrNotSegment},
		{"version 2", func(b []byte) []byte { be.PutUint16(b[tr+trVersion:], 2); return b }, ErrUnsupportedVersion},
		{"incompatible flag", func(b []byte) []byte { return setTrailerFlags(b, 0x0001) }, ErrUnsupportedVersion},
		{"trailer crc", func(b []byte) []byte { b[tr+3] ^= 1; return b }, ErrChecksum},
		{"footer byte", func(b []byte) []byte { b[footerPos+10] ^= 1; return b }, ErrChecksum},
		{"footer crc", func(b []byte) []byte { b[tr+trFooterCRC] ^= 1; return b }, ErrChecksum},
		{"header version", func(b []byte) []byte { be.PutUint16(b[8:], 3); return b }, ErrCorruptSegment},
		{"front cut", func(b []byte) []byte { return b[1:] }, ErrCorruptSegment},
		{"end cut", func(b []byte) []byte { return b[:len(b)-1] }, ErrNotSegment},
		{"too short", func(b []byte) []byte { return b[len(b)-trailerSize:] }, ErrNotSegment},
		{"chunk overlaps footer", func(b []byte) []byte {
			return rewriteFooter(b, func(c []ChunkInfo) { c[2].Length += 1 })
		}, ErrCorruptSegment},
		{"chunks overlap", func(b []byte) []byte {
			return rewriteFooter(b, func(c []ChunkInfo) { c[1].Position -= 1 })
		}, ErrCorruptSegment},
		{"chunk in header", func(b []byte) []byte {
			return rewriteFooter(b, func(c []ChunkInfo) { c[0].Position = 3 })
		}, ErrCorruptSegment},
		{"huge count", func(b []byte) []byte {
			return rewriteFooterBytes(b, func(f []byte) []byte { be.PutUint32(f, 1<<30); return f })
		}, ErrCorruptSegment},
		{"huge name", func(b []byte) []byte {
			return rewriteFooterBytes(b, func(f []byte) []byte { be.PutUint16(f[4+2+16:], 0xffff); return f })
		}, ErrCorruptSegment},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.mod(slices.Clone(obj)))
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}

	// A flipped chunk byte does not stop Parse but fails ReadChunk.
	bad := slices.Clone(obj)
	bad[chunks[0].Position] ^= 1
	r, err := Parse(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadChunk(context.Background(), 0); !errors.Is(err, ErrChecksum) {
		t.Fatalf("chunk crc: %v", err)
	}

	// Unknown compatible flags are ignored.
	if _, err := Parse(setTrailerFlags(slices.Clone(obj), 0x0100)); err != nil {
		t.Fatalf("compatible flag: %v", err)
	}
}

// setTrailerFlags sets the flags in header and trailer and fixes the trailer CRC.
func setTrailerFlags(b []byte, flags uint16) []byte {
	tr := b[len(b)-trailerSize:]
	binary.BigEndian.PutUint16(b[10:], flags)
	binary.BigEndian.PutUint16(tr[trFlags:], flags)
	binary.BigEndian.PutUint32(tr[trTrailerCRC:], Checksum(tr[:trTrailerCRC]))
	return b
}

// rewriteFooter re-encodes the footer after mod, with valid checksums, to
// test the structural checks behind them.
func rewriteFooter(b []byte, mod func([]ChunkInfo)) []byte {
	r, err := Parse(b)
	if err != nil {
		panic(err)
	}
	chunks := slices.Clone(r.Chunks())
	mod(chunks)
	return rewriteFooterBytes(b, func([]byte) []byte { return appendFooter(nil, chunks) })
}

func rewriteFooterBytes(b []byte, mod func([]byte) []byte) []byte {
	tr := b[len(b)-trailerSize:]
	pos := binary.BigEndian.Uint64(tr[trFooterPos:])
	n := binary.BigEndian.Uint32(tr[trFooterLen:])
	f := mod(slices.Clone(b[pos : pos+uint64(n)]))
	out := append(slices.Clone(b[:pos]), f...)
	return appendTrailer(out, int64(pos), len(f), Checksum(f), binary.BigEndian.Uint16(tr[trFlags:]))
}
