package ingest

import (
	"context"
	"sync"
	"time"
)

// Segment keys are recorded as uploads before anything is written under
// them (so a crash leaves a findable orphan, never an untracked object).
// Recording one key per flush would cost a second store transaction per
// flush; instead the flusher reserves keys in batches and spends one store
// transaction per flush, the commit.
const (
	keyBatch = 16
	// keyMaxAge bounds how long a reserved key may wait for its flush. It
	// must stay well under orphan.min.age (at least 1m), or the janitor
	// could forget a reservation that is about to be used; a stale key is
	// simply dropped (an orphan without an object, forgotten harmlessly).
	keyMaxAge = 15 * time.Second
)

// keyReserve holds keys whose uploads are recorded and not yet used.
type keyReserve struct {
	mu   sync.Mutex
	keys []string
	at   time.Time // when keys were recorded
}

// take returns a reserved key, or ok=false if none is fresh.
func (r *keyReserve) take() (key string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.keys) == 0 || time.Since(r.at) > keyMaxAge {
		r.keys = nil
		return "", false
	}
	key, r.keys = r.keys[0], r.keys[1:]
	return key, true
}

// recordWithReserve records key and keyBatch-1 further keys in one store
// call, keeping the others for the next flushes.
func (f *flusher) recordWithReserve(ctx context.Context, key string) error {
	keys := []string{key}
	for len(keys) < keyBatch {
		keys = append(keys, f.segmentKey())
	}
	if err := f.store.RecordUploads(ctx, keys, f.agentID); err != nil {
		return err
	}
	f.stats.UploadRecords.Add(1)
	f.keys.put(keys[1:])
	return nil
}

// put keeps freshly recorded keys for the next flushes.
func (r *keyReserve) put(keys []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys, r.at = keys, time.Now()
}
