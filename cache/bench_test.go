package cache_test

import (
	"context"
	"testing"

	"github.com/siltstream/silt/cache"
	"github.com/siltstream/silt/objectstore/mem"
)

// BenchmarkSequentialRead reads a 64 MiB object block by block, served by
// each tier in turn; the bucket is in memory, so "bucket" measures the
// cache's own cost on a miss, not a network.
func BenchmarkSequentialRead(b *testing.B) {
	const (
		blockSize = 1 << 20
		size      = 64 << 20
	)
	ctx := context.Background()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	run := func(b *testing.B, cfg cache.Config, warm func(*cache.Bucket)) {
		under := mem.New()
		if err := under.Put(ctx, "seg", data); err != nil {
			b.Fatal(err)
		}
		c, err := cache.New(under, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if warm != nil {
			warm(c)
		}
		b.SetBytes(blockSize)
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			off := int64(i%(size/blockSize)) * blockSize
			if _, err := c.Get(ctx, "seg", off, blockSize); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("memory-hit", func(b *testing.B) {
		run(b, cache.Config{BlockSize: blockSize, MemoryBytes: 2 * size},
			func(c *cache.Bucket) { c.Fill("seg", data) })
	})
	b.Run("disk-hit", func(b *testing.B) {
		cfg := cache.Config{BlockSize: blockSize, DiskDir: b.TempDir(), DiskBytes: 2 * size}
		run(b, cfg, func(c *cache.Bucket) {
			for off := int64(0); off < size; off += blockSize {
				if _, err := c.Get(ctx, "seg", off, blockSize); err != nil {
					b.Fatal(err)
				}
				c.WaitDiskWrites()
			}
		})
	})
	b.Run("bucket-miss", func(b *testing.B) {
		// A one-block memory tier over a sequential scan misses every block.
		run(b, cache.Config{BlockSize: blockSize, MemoryBytes: blockSize}, nil)
	})
	b.Run("bucket-miss-read-ahead", func(b *testing.B) {
		run(b, cache.Config{BlockSize: blockSize, MemoryBytes: 8 * blockSize, ReadAheadBlocks: 2}, nil)
	})
}
