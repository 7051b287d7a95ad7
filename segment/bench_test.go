package segment

import (
	"context"
	"fmt"
	"testing"
)

// benchBatches returns 8 MiB of ~16 KiB batches spread over 64 partitions,
// in the interleaved order a write buffer sees them.
func benchBatches(b *testing.B) ([]TopicRef, [][]byte, []BatchHeader, int) {
	const (
		total     = 8 << 20
		batchSize = 16 << 10
		parts     = 64
	)
	var tps []TopicRef
	for p := range parts {
		name := fmt.Sprintf("bench-%d", p%8)
		tps = append(tps, TopicRef{ID: topicID(name), Name: name, Partition: int32(p)})
	}
	var batches [][]byte
	var headers []BatchHeader
	n := 0
	for i := 0; n < total; i++ {
		// 16 records of ~1 KiB each make a batch of about 16 KiB.
		bt := makeBatch(batchSpec{baseOffset: -1, records: 16, valueSize: batchSize/16 - 20, firstTS: int64(i), seed: byte(i)})
		batches = append(batches, bt)
		headers = append(headers, mustValidate(b, bt))
		n += len(bt)
	}
	return tps, batches, headers, n
}

func BenchmarkWriter(b *testing.B) {
	tps, batches, headers, n := benchBatches(b)
	run := func(b *testing.B, finish func(w *Writer) []byte) {
		w := NewWriter()
		b.SetBytes(int64(n))
		b.ReportAllocs()
		for b.Loop() {
			w.Reset()
			for i, bt := range batches {
				w.Append(tps[i%len(tps)], bt, headers[i])
			}
			if obj := finish(w); len(obj) < n {
				b.Fatal("short object")
			}
		}
	}
	b.Run("Finish", func(b *testing.B) {
		run(b, func(w *Writer) []byte { obj, _ := w.Finish(); return obj })
	})
	b.Run("AppendObject", func(b *testing.B) {
		var buf []byte
		run(b, func(w *Writer) []byte { buf, _ = w.AppendObject(buf); return buf })
	})
}

func BenchmarkReader(b *testing.B) {
	tps, batches, headers, _ := benchBatches(b)
	w := NewWriter()
	for i, bt := range batches {
		w.Append(tps[i%len(tps)], bt, headers[i])
	}
	obj, _ := w.Finish()
	ctx := context.Background()
	b.SetBytes(int64(len(obj)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := Parse(obj)
		if err != nil {
			b.Fatal(err)
		}
		count := 0
		for i := range r.Chunks() {
			chunk, err := r.ReadChunk(ctx, i)
			if err != nil {
				b.Fatal(err)
			}
			it := NewBatchIter(chunk)
			for it.Next() {
				count++
			}
			if it.Err() != nil {
				b.Fatal(it.Err())
			}
		}
		if count != len(batches) {
			b.Fatalf("%d batches, want %d", count, len(batches))
		}
	}
}
