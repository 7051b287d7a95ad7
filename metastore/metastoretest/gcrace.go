package metastoretest

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/siltstream/silt/metastore"
)

// testGCRacesCommits runs commits, orphan forgets racing them, log start
// moves and doom passes all at once, then checks the collector's
// invariant: no segment an index row references is in the garbage queue,
// every commit either landed or was refused with ErrUploadNotRecorded
// because its upload was forgotten first, never both, and every committed
// segment whose rows were all pruned is doomed (no candidate is lost to a
// doom pass racing the prune).
func testGCRacesCommits(t *testing.T, s metastore.Store) {
	const (
		committers = 4
		flushes    = 20
	)
	ctx := ctxFor(t)
	top := createTopic(t, s, "race", 2)
	tps := []metastore.TopicPartition{{Topic: top.ID, Partition: 0}, {Topic: top.ID, Partition: 1}}
	var (
		wg        sync.WaitGroup
		done      atomic.Bool
		errs      = make(chan error, committers+3)
		mu        sync.Mutex
		committed = map[string]bool{}
		refused   = map[string]bool{}
		forgotten = map[string]bool{}
	)
	for w := 0; w < committers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < flushes; i++ {
				key := fmt.Sprintf("race-%d-%d", w, i)
				if err := s.RecordUpload(ctx, key, "agent"); err != nil {
					errs <- err
					return
				}
				// A collector that finds the upload old enough forgets it,
				// racing the commit, for every other flush.
				forget := make(chan error, 1)
				if i%2 == 0 {
					go func() {
						ok, err := s.ForgetUpload(ctx, key)
						if ok {
							mu.Lock()
							forgotten[key] = true
							mu.Unlock()
						}
						forget <- err
					}()
				} else {
					forget <- nil
				}
				f := metastore.Flush{SegmentKey: key, AgentID: "agent", Size: 200, Chunks: []metastore.Chunk{chunk(top.ID, 0, 1), chunk(top.ID, 1, 1)}}
				f.Chunks[1].Position = 100
				_, err := s.CommitFlush(ctx, f)
				mu.Lock()
				switch {
				case err == nil:
					committed[key] = true
				case errors.Is(err, metastore.ErrUploadNotRecorded):
					refused[key] = true
				default:
					errs <- fmt.Errorf("CommitFlush(%s): %w", key, err)
				}
				mu.Unlock()
				if err := <-forget; err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { // retention: each partition's log start follows its high watermark
		defer bg.Done()
		for i := 0; !done.Load(); i++ {
			if _, err := s.AdvanceLogStart(ctx, tps[i%2], -1); err != nil {
				errs <- err
				return
			}
		}
	}()
	go func() { // the collector
		defer bg.Done()
		for !done.Load() {
			if _, _, err := s.DoomUnreferenced(ctx, 7); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	done.Store(true)
	bg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, _, err := s.DoomUnreferenced(ctx, math.MaxInt32); err != nil {
		t.Fatal(err)
	}

	doomed, err := s.DoomedObjects(ctx, -1<<40, 1<<20) // a negative grace: everything queued
	if err != nil {
		t.Fatal(err)
	}
	inQueue := map[string]bool{}
	for _, o := range doomed {
		inQueue[o.Key] = true
	}
	referenced := map[string]bool{}
	for _, tp := range tps {
		for _, r := range index(t, s, tp, 0) {
			referenced[r.SegmentKey] = true
			if inQueue[r.SegmentKey] {
				t.Fatalf("segment %s is doomed but an index row of %d references it", r.SegmentKey, tp.Partition)
			}
		}
	}
	for key := range committed {
		if forgotten[key] {
			t.Fatalf("segment %s both committed and forgotten", key)
		}
		if !referenced[key] && !inQueue[key] {
			t.Fatalf("committed segment %s lost its rows but was never doomed: a leak", key)
		}
	}
	for key := range refused {
		if !forgotten[key] || !inQueue[key] {
			t.Fatalf("segment %s refused at commit, forgotten %v, queued %v; want both", key, forgotten[key], inQueue[key])
		}
	}
	if len(committed)+len(refused) != committers*flushes {
		t.Fatalf("%d committed + %d refused of %d flushes", len(committed), len(refused), committers*flushes)
	}
}
