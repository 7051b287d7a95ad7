package cache

import (
	"container/list"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// diskTier keeps blocks in files under a directory, within a byte budget
// (counted in file bytes, headers included), least recently used first out.
// Blocks reach it through a queue served by one writer goroutine, so no
// reader or flush waits for a disk write; a block waiting in the queue is
// already served from it. The index is rebuilt from the files on start.
type diskTier struct {
	dir        string
	budget     int64
	blockSize  int64
	queueBytes int64 // bound on the bytes of queued writes
	c          *counters

	mu           sync.Mutex // guards all below; held for index changes and file removals, never for reads or writes of files
	lru          *list.List // of *diskEntry, most recent at front
	entries      map[blockID]*list.Element
	keys         map[string]map[int64]struct{} // block indexes held per key
	bytes        int64                         // indexed file bytes plus the one being written
	pending      map[blockID]*pendingWrite     // queued or being written
	pendingBytes int64
	queued       int // items in queue; never more than cap(queue), so a send never blocks
	closed       bool
	idle         *sync.Cond // broadcast whenever the writer finishes an item

	queue chan *pendingWrite
	done  chan struct{} // closed when the writer has exited
}

type diskEntry struct {
	id   blockID
	size int64 // file bytes
}

type pendingWrite struct {
	id   blockID
	data []byte
}

// openDiskTier scans dir, rebuilding the index from valid block files and
// deleting temporary and invalid ones, then starts the writer.
func openDiskTier(dir string, budget, blockSize int64, c *counters) (*diskTier, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cache.disk.dir: %w", err)
	}
	queueBytes := max(4*blockSize, 16<<20)
	slots := int(min(max(queueBytes/blockSize, 4), 1024))
	d := &diskTier{
		dir:        dir,
		budget:     budget,
		blockSize:  blockSize,
		queueBytes: queueBytes,
		c:          c,
		lru:        list.New(),
		entries:    make(map[blockID]*list.Element),
		keys:       make(map[string]map[int64]struct{}),
		pending:    make(map[blockID]*pendingWrite),
		queue:      make(chan *pendingWrite, slots),
		done:       make(chan struct{}),
	}
	d.idle = sync.NewCond(&d.mu)
	if err := d.scan(); err != nil {
		return nil, fmt.Errorf("cache.disk.dir: scan %s: %w", dir, err)
	}
	go d.writeLoop()
	return d, nil
}

// scan rebuilds the index, oldest modification first, then trims it to the
// budget (which may have shrunk since the files were written).
func (d *diskTier) scan() error {
	type found struct {
		e     diskEntry
		mtime time.Time
	}
	var all []found
	err := filepath.WalkDir(d.dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case de.IsDir():
			return nil
		case strings.HasSuffix(path, diskTempExt):
			return os.Remove(path)
		case !strings.HasSuffix(path, diskExt):
			return nil // not ours
		}
		h, size, err := readHeader(path, d.blockSize)
		if err == nil {
			if rel, _ := filepath.Rel(d.dir, path); rel != diskName(h.id) {
				err = fmt.Errorf("name does not match its key: %w", errCorrupt)
			}
		}
		if err != nil {
			if errors.Is(err, errCorrupt) {
				d.c.diskCorrupt.Add(1)
			} else {
				d.c.diskErrors.Add(1)
			}
			return os.Remove(path)
		}
		info, err := de.Info()
		if err != nil {
			return err
		}
		all = append(all, found{diskEntry{h.id, size}, info.ModTime()})
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(all, func(a, b found) int { return a.mtime.Compare(b.mtime) })
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range all {
		d.indexLocked(&diskEntry{f.e.id, f.e.size})
		d.bytes += f.e.size
	}
	for d.bytes > d.budget && d.lru.Len() > 0 {
		d.evictLocked()
	}
	return nil
}

func (d *diskTier) path(id blockID) string { return filepath.Join(d.dir, diskName(id)) }

// contains reports whether the block is held or queued, without touching
// the LRU.
func (d *diskTier) contains(id blockID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.entries[id]
	return ok || d.pending[id] != nil
}

// read returns a block. Any failure is a miss: a file that fails
// validation or cannot be read is dropped from the index and deleted, and
// counted.
func (d *diskTier) read(id blockID) ([]byte, bool) {
	d.mu.Lock()
	if p := d.pending[id]; p != nil {
		d.mu.Unlock()
		return p.data, true
	}
	el, ok := d.entries[id]
	if !ok {
		d.mu.Unlock()
		return nil, false
	}
	d.lru.MoveToFront(el)
	d.mu.Unlock()

	path := d.path(id)
	buf, err := os.ReadFile(path)
	if err == nil {
		var data []byte
		if data, err = decodeBlock(buf, id, d.blockSize); err == nil {
			now := time.Now()
			_ = os.Chtimes(path, now, now) // keeps the LRU order across restarts; best effort
			return data, true
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Evicted or forgotten since the lookup, or removed behind our
		// back; dropping a stale entry is all there is to do.
	case errors.Is(err, errCorrupt):
		d.c.diskCorrupt.Add(1)
	default:
		d.c.diskErrors.Add(1)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if cur, ok := d.entries[id]; ok && cur == el {
		d.removeLocked(el)
	}
	return nil, false
}

// enqueue queues a block for writing unless it is already held or queued.
// A full queue drops the block (and counts it): the disk tier is an
// optimisation, and nobody should wait for it.
func (d *diskTier) enqueue(id blockID, data []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.pending[id] != nil {
		return
	}
	if el, ok := d.entries[id]; ok {
		d.lru.MoveToFront(el)
		return
	}
	if d.queued == cap(d.queue) || (d.pendingBytes+int64(len(data)) > d.queueBytes && len(d.pending) > 0) {
		d.c.diskWriteDrops.Add(1)
		return
	}
	p := &pendingWrite{id: id, data: data}
	d.pending[id] = p
	d.pendingBytes += int64(len(data))
	d.queued++
	d.queue <- p // never blocks: queued < cap(queue)
}

func (d *diskTier) writeLoop() {
	defer close(d.done)
	for p := range d.queue {
		d.mu.Lock()
		d.queued--
		d.mu.Unlock()
		d.write(p)
		d.mu.Lock()
		d.idle.Broadcast()
		d.mu.Unlock()
	}
}

// write stores one queued block, evicting older files first so that the
// bytes on disk never exceed the budget.
func (d *diskTier) write(p *pendingWrite) {
	size := diskFileSize(p.id, len(p.data))
	d.mu.Lock()
	if d.pending[p.id] != p { // forgotten while queued
		d.mu.Unlock()
		return
	}
	if size > d.budget {
		d.finishLocked(p)
		d.mu.Unlock()
		return
	}
	for d.bytes+size > d.budget && d.lru.Len() > 0 {
		d.evictLocked()
	}
	d.bytes += size // reserved for this file
	d.mu.Unlock()

	path := d.path(p.id)
	err := writeFileAtomic(path, encodeBlock(p.id, d.blockSize, p.data))

	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case err != nil:
		d.c.diskErrors.Add(1)
		d.bytes -= size
	case d.pending[p.id] != p: // forgotten while being written
		d.bytes -= size
		os.Remove(path)
	default:
		d.indexLocked(&diskEntry{p.id, size})
	}
	d.finishLocked(p)
}

func (d *diskTier) finishLocked(p *pendingWrite) {
	if d.pending[p.id] == p {
		delete(d.pending, p.id)
		d.pendingBytes -= int64(len(p.data))
	}
}

// indexLocked adds an entry as the most recent; the caller accounts bytes.
func (d *diskTier) indexLocked(e *diskEntry) {
	d.entries[e.id] = d.lru.PushFront(e)
	if d.keys[e.id.key] == nil {
		d.keys[e.id.key] = make(map[int64]struct{})
	}
	d.keys[e.id.key][e.id.index] = struct{}{}
}

func (d *diskTier) evictLocked() {
	d.removeLocked(d.lru.Back())
	d.c.diskEvictions.Add(1)
}

// removeLocked drops an entry from the index and deletes its file.
func (d *diskTier) removeLocked(el *list.Element) {
	e := d.lru.Remove(el).(*diskEntry)
	delete(d.entries, e.id)
	if idx := d.keys[e.id.key]; idx != nil {
		delete(idx, e.id.index)
		if len(idx) == 0 {
			delete(d.keys, e.id.key)
		}
	}
	d.bytes -= e.size
	if err := os.Remove(d.path(e.id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		d.c.diskErrors.Add(1)
	}
}

// forget drops every block of key, queued or on disk.
func (d *diskTier) forget(key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for idx := range d.keys[key] {
		if el, ok := d.entries[blockID{key, idx}]; ok {
			d.removeLocked(el)
		}
	}
	for id, p := range d.pending {
		if id.key == key {
			delete(d.pending, id)
			d.pendingBytes -= int64(len(p.data))
		}
	}
}

// held returns the indexed bytes on disk (the file being written included).
func (d *diskTier) held() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bytes
}

// waitIdle blocks until no write is queued or in progress.
func (d *diskTier) waitIdle() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for len(d.pending) > 0 || d.queued > 0 {
		d.idle.Wait()
	}
}

// close finishes the queued writes and stops the writer.
func (d *diskTier) close() {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.queue)
	}
	d.mu.Unlock()
	<-d.done
}
