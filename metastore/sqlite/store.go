package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/internal/flushcommit"
)

// Store is the SQLite metastore.Store.
type Store struct {
	write *sql.DB // one connection: writers queue here, never SQLITE_BUSY
	read  *sql.DB
}

var _ metastore.Store = (*Store)(nil)

func now() int64 { return time.Now().UnixNano() }

// Open opens (creating if needed) the database file at path and migrates it.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.Contains(path, "?") {
		return nil, fmt.Errorf("open sqlite metastore: invalid path %q", path)
	}
	params := url.Values{}
	params.Add("_pragma", "busy_timeout(10000)")
	params.Add("_pragma", "journal_mode(WAL)")
	params.Add("_pragma", "foreign_keys(1)")
	params.Set("_txlock", "immediate")
	dsn := path + "?" + params.Encode()

	write, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite metastore %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	if err := migrate(ctx, write); err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite metastore %s: %w", path, err)
	}
	read, err := sql.Open("sqlite", dsn)
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite metastore %s: %w", path, err)
	}
	read.SetMaxOpenConns(8)
	read.SetMaxIdleConns(8)
	return &Store{write: write, read: read}, nil
}

// Close implements metastore.Store.
func (s *Store) Close() error {
	return errors.Join(s.read.Close(), s.write.Close())
}

// inTx runs fn in a transaction (BEGIN IMMEDIATE, from the DSN).
func inTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func encodeConfig(m map[string]string) (string, error) {
	if m == nil {
		m = map[string]string{}
	}
	b, err := json.Marshal(m)
	return string(b), err
}

func decodeConfig(s string) (map[string]string, error) {
	m := map[string]string{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode topic config: %w", err)
	}
	return m, nil
}

func topicID(b []byte) (metastore.TopicID, error) {
	var id metastore.TopicID
	if len(b) != len(id) {
		return id, fmt.Errorf("topic id of %d bytes", len(b))
	}
	copy(id[:], b)
	return id, nil
}

// CreateTopic implements metastore.Store.
func (s *Store) CreateTopic(ctx context.Context, spec metastore.TopicSpec) (metastore.Topic, error) {
	if spec.Partitions <= 0 {
		return metastore.Topic{}, fmt.Errorf("create topic %s: %w: %d", spec.Name, metastore.ErrInvalidPartitions, spec.Partitions)
	}
	if spec.ID == (metastore.TopicID{}) {
		if _, err := rand.Read(spec.ID[:]); err != nil {
			return metastore.Topic{}, fmt.Errorf("create topic %s: random id: %w", spec.Name, err)
		}
		spec.ID[6] = spec.ID[6]&0x0f | 0x40 // UUID version 4
		spec.ID[8] = spec.ID[8]&0x3f | 0x80 // RFC 4122 variant
	}
	config, err := encodeConfig(spec.Config)
	if err != nil {
		return metastore.Topic{}, fmt.Errorf("create topic %s: %w", spec.Name, err)
	}
	err = inTx(ctx, s.write, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM topics WHERE name = ?", spec.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return metastore.ErrTopicExists
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO topics (id, name, partitions, config) VALUES (?, ?, ?, ?)",
			spec.ID[:], spec.Name, spec.Partitions, config); err != nil {
			return err
		}
		return insertPartitions(ctx, tx, spec.ID, 0, spec.Partitions)
	})
	if err != nil {
		return metastore.Topic{}, fmt.Errorf("create topic %s: %w", spec.Name, err)
	}
	cfg, _ := decodeConfig(config)
	return metastore.Topic{ID: spec.ID, Name: spec.Name, Partitions: spec.Partitions, Config: cfg}, nil
}

func insertPartitions(ctx context.Context, tx *sql.Tx, id metastore.TopicID, from, to int32) error {
	_, err := tx.ExecContext(ctx, `WITH RECURSIVE p(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM p WHERE n + 1 < ?)
		INSERT INTO partitions (topic_id, partition) SELECT ?, n FROM p`, from, to, id[:])
	return err
}

// DeleteTopic implements metastore.Store.
func (s *Store) DeleteTopic(ctx context.Context, name string) error {
	err := inTx(ctx, s.write, func(tx *sql.Tx) error {
		var id []byte
		if err := tx.QueryRowContext(ctx, "SELECT id FROM topics WHERE name = ?", name).Scan(&id); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return metastore.ErrUnknownTopic
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM producer_state WHERE topic_id = ?", id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM index_entries WHERE topic_id = ?", id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM partitions WHERE topic_id = ?", id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM topics WHERE id = ?", id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete topic %s: %w", name, err)
	}
	return nil
}

type scanner interface{ Scan(dest ...any) error }

func scanTopic(r scanner) (metastore.Topic, error) {
	var (
		t      metastore.Topic
		id     []byte
		config string
	)
	if err := r.Scan(&id, &t.Name, &t.Partitions, &config); err != nil {
		return t, err
	}
	var err error
	if t.ID, err = topicID(id); err != nil {
		return t, err
	}
	t.Config, err = decodeConfig(config)
	return t, err
}

// Topic implements metastore.Store.
func (s *Store) Topic(ctx context.Context, name string) (metastore.Topic, error) {
	t, err := scanTopic(s.read.QueryRowContext(ctx, "SELECT id, name, partitions, config FROM topics WHERE name = ?", name))
	if errors.Is(err, sql.ErrNoRows) {
		return metastore.Topic{}, fmt.Errorf("topic %s: %w", name, metastore.ErrUnknownTopic)
	}
	if err != nil {
		return metastore.Topic{}, fmt.Errorf("topic %s: %w", name, err)
	}
	return t, nil
}

// Topics implements metastore.Store.
func (s *Store) Topics(ctx context.Context) ([]metastore.Topic, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT id, name, partitions, config FROM topics ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	defer rows.Close()
	topics := []metastore.Topic{}
	for rows.Next() {
		t, err := scanTopic(rows)
		if err != nil {
			return nil, fmt.Errorf("list topics: %w", err)
		}
		topics = append(topics, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	return topics, nil
}

// SetTopicConfig implements metastore.Store.
func (s *Store) SetTopicConfig(ctx context.Context, name string, config map[string]string) error {
	enc, err := encodeConfig(config)
	if err != nil {
		return fmt.Errorf("set config of topic %s: %w", name, err)
	}
	res, err := s.write.ExecContext(ctx, "UPDATE topics SET config = ? WHERE name = ?", enc, name)
	if err != nil {
		return fmt.Errorf("set config of topic %s: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("set config of topic %s: %w", name, metastore.ErrUnknownTopic)
	}
	return nil
}

// CreatePartitions implements metastore.Store.
func (s *Store) CreatePartitions(ctx context.Context, name string, count int32) error {
	err := inTx(ctx, s.write, func(tx *sql.Tx) error {
		var (
			raw []byte
			old int32
		)
		if err := tx.QueryRowContext(ctx, "SELECT id, partitions FROM topics WHERE name = ?", name).Scan(&raw, &old); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return metastore.ErrUnknownTopic
			}
			return err
		}
		if count <= old {
			return fmt.Errorf("%w: %d, topic has %d", metastore.ErrInvalidPartitions, count, old)
		}
		id, err := topicID(raw)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE topics SET partitions = ? WHERE id = ?", count, raw); err != nil {
			return err
		}
		return insertPartitions(ctx, tx, id, old, count)
	})
	if err != nil {
		return fmt.Errorf("create partitions of topic %s: %w", name, err)
	}
	return nil
}

// Partitions implements metastore.Store.
func (s *Store) Partitions(ctx context.Context, id metastore.TopicID) ([]metastore.PartitionState, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT partition, high_watermark, log_start_offset,
			coalesce((SELECT min(o.first_offset) FROM ongoing_txns o
				WHERE o.topic_id = p.topic_id AND o.partition = p.partition), high_watermark)
		FROM partitions p WHERE topic_id = ? ORDER BY partition`, id[:])
	if err != nil {
		return nil, fmt.Errorf("partitions of topic %x: %w", id[:], err)
	}
	defer rows.Close()
	var ps []metastore.PartitionState
	for rows.Next() {
		var p metastore.PartitionState
		if err := rows.Scan(&p.Partition, &p.HighWatermark, &p.LogStartOffset, &p.LastStableOffset); err != nil {
			return nil, fmt.Errorf("partitions of topic %x: %w", id[:], err)
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("partitions of topic %x: %w", id[:], err)
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("partitions of topic %x: %w", id[:], metastore.ErrUnknownTopic)
	}
	return ps, nil
}

// RecordUpload implements metastore.Store.
func (s *Store) RecordUpload(ctx context.Context, key string, agentID string) error {
	return s.RecordUploads(ctx, []string{key}, agentID)
}

// RecordUploads implements metastore.Store.
func (s *Store) RecordUploads(ctx context.Context, keys []string, agentID string) error {
	keysJSON, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	// "WHERE true": SQLite needs it to parse an upsert after a SELECT.
	_, err = s.write.ExecContext(ctx, `INSERT INTO segments (key, agent, state, recorded_at)
		SELECT value, ?, 'uploading', ? FROM json_each(?) WHERE true
		ON CONFLICT (key) DO NOTHING`, agentID, now(), string(keysJSON))
	if err != nil {
		return fmt.Errorf("record uploads %v: %w", keys, err)
	}
	return nil
}

// CommitFlush implements metastore.Store. The write connection and BEGIN
// IMMEDIATE serialize flushes, so there is no lock order to keep.
func (s *Store) CommitFlush(ctx context.Context, f metastore.Flush) (metastore.FlushResult, error) {
	n := len(f.Chunks)
	seen := make(map[metastore.TopicPartition]bool, n)
	for i, c := range f.Chunks {
		if c.OffsetCount <= 0 {
			return metastore.FlushResult{}, fmt.Errorf("commit flush %s: chunk %d for partition %x/%d has offset count %d", f.SegmentKey, i, c.Topic[:], c.Partition, c.OffsetCount)
		}
		if seen[c.TopicPartition] {
			return metastore.FlushResult{}, fmt.Errorf("commit flush %s: partition %x/%d appears twice", f.SegmentKey, c.Topic[:], c.Partition)
		}
		seen[c.TopicPartition] = true
	}
	// Chunks without per-batch checks go to SQLite as one JSON array, so
	// they cost two statements however many partitions the flush touches.
	type row = [3]any // topic id (hex), partition, offset count
	var rows []row
	for _, c := range f.Chunks {
		if c.Batches == nil {
			rows = append(rows, row{hex.EncodeToString(c.Topic[:]), c.Partition, c.OffsetCount})
		}
	}
	chunkJSON, err := json.Marshal(rows)
	if err != nil {
		return metastore.FlushResult{}, fmt.Errorf("commit flush %s: %w", f.SegmentKey, err)
	}
	res := metastore.FlushResult{BaseOffsets: make([]int64, n), Batches: make([][]metastore.BatchResult, n)}
	var unknown []int
	err = inTx(ctx, s.write, func(tx *sql.Tx) error {
		// The upload record guards the commit; see metastore.Store.CommitFlush.
		var state string
		switch err := tx.QueryRowContext(ctx, `SELECT state FROM segments WHERE key = ?`, f.SegmentKey).Scan(&state); {
		case errors.Is(err, sql.ErrNoRows):
			return metastore.ErrUploadNotRecorded
		case err != nil:
			return err
		case state == "committed":
			return s.committedResults(ctx, f, &res)
		}
		hws := make(map[metastore.TopicPartition]int64, n)
		if len(rows) > 0 {
			q, err := tx.QueryContext(ctx, `UPDATE partitions AS p SET high_watermark = p.high_watermark + j.cnt
				FROM (SELECT unhex(value->>0) AS tid, value->>1 AS part, value->>2 AS cnt FROM json_each(?)) AS j
				WHERE p.topic_id = j.tid AND p.partition = j.part
				RETURNING topic_id, partition, high_watermark`, string(chunkJSON))
			if err != nil {
				return err
			}
			for q.Next() {
				var (
					raw []byte
					tp  metastore.TopicPartition
					hw  int64
				)
				if err := q.Scan(&raw, &tp.Partition, &hw); err != nil {
					q.Close()
					return err
				}
				if tp.Topic, err = topicID(raw); err != nil {
					q.Close()
					return err
				}
				hws[tp] = hw
			}
			q.Close()
			if err := q.Err(); err != nil {
				return err
			}
		}
		type indexRow = [10]any
		var irows []indexRow
		addRow := func(e metastore.IndexEntry) {
			irows = append(irows, indexRow{hex.EncodeToString(e.Topic[:]), e.Partition, e.BaseOffset, e.LastOffset,
				f.SegmentKey, e.Position, e.Length, e.BatchCount, e.MinTimestamp, e.MaxTimestamp})
		}
		for i, c := range f.Chunks {
			if c.Batches != nil {
				ok, err := s.commitBatches(ctx, tx, f.SegmentKey, c, &res, i, addRow)
				if err != nil {
					return err
				}
				if !ok {
					unknown = append(unknown, i)
				}
				continue
			}
			hw, ok := hws[c.TopicPartition]
			if !ok {
				unknown = append(unknown, i)
				continue
			}
			res.BaseOffsets[i] = hw - c.OffsetCount
			addRow(metastore.IndexEntry{TopicPartition: c.TopicPartition, BaseOffset: hw - c.OffsetCount, LastOffset: hw - 1,
				Position: c.Position, Length: c.Length, BatchCount: c.BatchCount, MinTimestamp: c.MinTimestamp, MaxTimestamp: c.MaxTimestamp})
		}
		if len(unknown) > 0 {
			return errUnknown // roll back
		}
		if len(irows) > 0 {
			indexJSON, err := json.Marshal(irows)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO index_entries (topic_id, partition, base_offset, last_offset,
					segment_key, position, length, batch_count, min_ts, max_ts)
				SELECT unhex(value->>0), value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7, value->>8, value->>9
				FROM json_each(?)`, string(indexJSON)); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE segments SET state = 'committed', size = ?, committed_at = ? WHERE key = ?`,
			f.Size, now(), f.SegmentKey)
		return err
	})
	if errors.Is(err, errUnknown) {
		sort.Ints(unknown)
		uerr := &metastore.UnknownPartitionsError{}
		for _, i := range unknown {
			uerr.Partitions = append(uerr.Partitions, f.Chunks[i].TopicPartition)
		}
		return metastore.FlushResult{}, uerr
	}
	if err != nil {
		return metastore.FlushResult{}, fmt.Errorf("commit flush %s: %w", f.SegmentKey, err)
	}
	return res, nil
}

// commitBatches commits one chunk batch by batch, checking idempotent
// producers' sequences (flushcommit.ProducerState.Check). It reports false if
// the partition does not exist.
func (s *Store) commitBatches(ctx context.Context, tx *sql.Tx, key string, c metastore.Chunk, res *metastore.FlushResult, i int, addRow func(metastore.IndexEntry)) (bool, error) {
	tid := c.Topic[:]
	var hw int64
	switch err := tx.QueryRowContext(ctx, `SELECT high_watermark FROM partitions WHERE topic_id = ? AND partition = ?`, tid, c.Partition).Scan(&hw); {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, err
	}
	states := make(map[int64]*flushcommit.ProducerState)
	dirty := make(map[int64]bool)
	load := func(pid int64) (*flushcommit.ProducerState, error) {
		if st, ok := states[pid]; ok {
			return st, nil
		}
		var (
			epoch  int16
			recent string
		)
		err := tx.QueryRowContext(ctx, `SELECT epoch, recent FROM producer_state WHERE producer_id = ? AND topic_id = ? AND partition = ?`,
			pid, tid, c.Partition).Scan(&epoch, &recent)
		if errors.Is(err, sql.ErrNoRows) {
			states[pid] = nil
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		st := &flushcommit.ProducerState{Epoch: epoch}
		if err := json.Unmarshal([]byte(recent), &st.Recent); err != nil {
			return nil, fmt.Errorf("producer %d state: %w", pid, err)
		}
		states[pid] = st
		return st, nil
	}
	results := make([]metastore.BatchResult, len(c.Batches))
	res.BaseOffsets[i] = -1
	for j, b := range c.Batches {
		var st *flushcommit.ProducerState
		if b.ProducerID >= 0 {
			var err error
			if st, err = load(b.ProducerID); err != nil {
				return false, err
			}
		}
		verdict, dupBase := st.Check(b)
		if verdict != 0 {
			results[j] = flushcommit.ResultOf(verdict, dupBase)
			continue
		}
		if b.IsControl && b.ProducerID >= 0 {
			current, err := markerIsCurrent(ctx, tx, b)
			if err != nil {
				return false, err
			}
			if !current {
				results[j] = metastore.BatchResult{BaseOffset: -1, Err: metastore.ErrStaleMarker}
				continue
			}
		}
		results[j] = metastore.BatchResult{BaseOffset: hw}
		if res.BaseOffsets[i] < 0 {
			res.BaseOffsets[i] = hw
		}
		switch {
		case b.ProducerID >= 0 && b.IsControl:
			if next := st.Mark(b); next != st {
				states[b.ProducerID] = next
				dirty[b.ProducerID] = true
			}
		case b.ProducerID >= 0:
			states[b.ProducerID] = st.Accept(b, hw)
			dirty[b.ProducerID] = true
		}
		hw += b.OffsetCount
	}
	res.Batches[i] = results
	if _, err := tx.ExecContext(ctx, `UPDATE partitions SET high_watermark = ? WHERE topic_id = ? AND partition = ?`, hw, tid, c.Partition); err != nil {
		return false, err
	}
	for _, e := range metastore.IndexRuns(c.TopicPartition, key, c.Batches, results) {
		addRow(e)
	}
	for pid := range dirty {
		recent, err := json.Marshal(states[pid].Recent)
		if err != nil {
			return false, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO producer_state (producer_id, topic_id, partition, epoch, recent, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (producer_id, topic_id, partition) DO UPDATE SET epoch = excluded.epoch, recent = excluded.recent, updated_at = excluded.updated_at`,
			pid, tid, c.Partition, states[pid].Epoch, string(recent), now()); err != nil {
			return false, err
		}
	}
	if err := txnBookkeeping(ctx, tx, c.TopicPartition, flushcommit.TxnBookkeepingOf(c.Batches, results)); err != nil {
		return false, err
	}
	return true, nil
}

// committedResults answers a retried commit of a committed segment from
// its index rows.
func (s *Store) committedResults(ctx context.Context, f metastore.Flush, res *metastore.FlushResult) error {
	rows, err := s.IndexBySegment(ctx, f.SegmentKey)
	if err != nil {
		return err
	}
	byTP := make(map[metastore.TopicPartition][]metastore.IndexEntry)
	for _, r := range rows {
		byTP[r.TopicPartition] = append(byTP[r.TopicPartition], r)
	}
	var missing []metastore.TopicPartition
	for i, c := range f.Chunks {
		rs := byTP[c.TopicPartition]
		if c.Batches != nil {
			res.Batches[i], res.BaseOffsets[i] = flushcommit.RetriedResults(c.Batches, rs)
			continue
		}
		if len(rs) == 0 {
			missing = append(missing, c.TopicPartition)
			continue
		}
		res.BaseOffsets[i] = rs[0].BaseOffset
	}
	return metastore.MissingAfterCommit(ctx, s, f.SegmentKey, missing)
}

var errUnknown = errors.New("unknown partitions")

// Orphans implements metastore.Store.
func (s *Store) Orphans(ctx context.Context, olderThan time.Time) ([]metastore.Upload, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT key, agent, recorded_at FROM segments
		WHERE state = 'uploading' AND recorded_at < ? ORDER BY recorded_at, key`, olderThan.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("list orphans: %w", err)
	}
	defer rows.Close()
	var ups []metastore.Upload
	for rows.Next() {
		var (
			u  metastore.Upload
			at int64
		)
		if err := rows.Scan(&u.Key, &u.AgentID, &at); err != nil {
			return nil, fmt.Errorf("list orphans: %w", err)
		}
		u.RecordedAt = time.Unix(0, at)
		ups = append(ups, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list orphans: %w", err)
	}
	return ups, nil
}

// ForgetUpload implements metastore.Store.
func (s *Store) ForgetUpload(ctx context.Context, key string) (bool, error) {
	res, err := s.write.ExecContext(ctx, "DELETE FROM segments WHERE key = ? AND state = 'uploading'", key)
	if err != nil {
		return false, fmt.Errorf("forget upload %s: %w", key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("forget upload %s: %w", key, err)
	}
	return n == 1, nil
}

const indexColumns = "topic_id, partition, base_offset, last_offset, segment_key, position, length, batch_count, min_ts, max_ts"

func scanIndexEntry(r scanner) (metastore.IndexEntry, error) {
	var (
		e  metastore.IndexEntry
		id []byte
	)
	if err := r.Scan(&id, &e.Partition, &e.BaseOffset, &e.LastOffset, &e.SegmentKey, &e.Position, &e.Length,
		&e.BatchCount, &e.MinTimestamp, &e.MaxTimestamp); err != nil {
		return e, err
	}
	var err error
	e.Topic, err = topicID(id)
	return e, err
}

// Index implements metastore.Store. A limit <= 0 means no row limit.
func (s *Store) Index(ctx context.Context, tp metastore.TopicPartition, offset int64, maxBytes int64, limit int) ([]metastore.IndexEntry, error) {
	lim := int64(limit)
	if limit <= 0 {
		lim = -1
	}
	rows, err := s.read.QueryContext(ctx, `SELECT `+indexColumns+` FROM (
			SELECT `+indexColumns+`, sum(length) OVER (ORDER BY base_offset) - length AS before
			FROM (
				SELECT `+indexColumns+` FROM index_entries
				WHERE topic_id = ?1 AND partition = ?2 AND last_offset >= ?3
				  AND base_offset >= coalesce((
					SELECT base_offset FROM index_entries
					WHERE topic_id = ?1 AND partition = ?2 AND base_offset <= ?3
					ORDER BY base_offset DESC LIMIT 1), ?3)
				ORDER BY base_offset
				LIMIT ?5
			)
		)
		WHERE before < max(?4, 1)
		ORDER BY base_offset`,
		tp.Topic[:], tp.Partition, offset, maxBytes, lim)
	if err != nil {
		return nil, fmt.Errorf("index of %x/%d from %d: %w", tp.Topic[:], tp.Partition, offset, err)
	}
	defer rows.Close()
	es := []metastore.IndexEntry{}
	for rows.Next() {
		e, err := scanIndexEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("index of %x/%d from %d: %w", tp.Topic[:], tp.Partition, offset, err)
		}
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("index of %x/%d from %d: %w", tp.Topic[:], tp.Partition, offset, err)
	}
	return es, nil
}

func (s *Store) indexRow(ctx context.Context, what string, tp metastore.TopicPartition, query string, args ...any) (metastore.IndexEntry, bool, error) {
	e, err := scanIndexEntry(s.read.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return metastore.IndexEntry{}, false, nil
	}
	if err != nil {
		return metastore.IndexEntry{}, false, fmt.Errorf("%s of %x/%d: %w", what, tp.Topic[:], tp.Partition, err)
	}
	return e, true, nil
}

// IndexByTimestamp implements metastore.Store.
func (s *Store) IndexByTimestamp(ctx context.Context, tp metastore.TopicPartition, ts int64) (metastore.IndexEntry, bool, error) {
	return s.indexRow(ctx, "index by timestamp", tp, `SELECT `+indexColumns+` FROM index_entries
		WHERE topic_id = ?1 AND partition = ?2 AND base_offset = (
			SELECT min(base_offset) FROM index_entries
			WHERE topic_id = ?1 AND partition = ?2 AND max_ts >= ?3)`,
		tp.Topic[:], tp.Partition, ts)
}

// IndexMaxTimestamp implements metastore.Store.
func (s *Store) IndexMaxTimestamp(ctx context.Context, tp metastore.TopicPartition) (metastore.IndexEntry, bool, error) {
	return s.indexRow(ctx, "index max timestamp", tp, `SELECT `+indexColumns+` FROM index_entries
		WHERE topic_id = ? AND partition = ?
		ORDER BY max_ts DESC, base_offset LIMIT 1`,
		tp.Topic[:], tp.Partition)
}

// AllocateProducerID implements metastore.Store.
func (s *Store) AllocateProducerID(ctx context.Context) (int64, error) {
	var id int64
	if err := s.write.QueryRowContext(ctx, "UPDATE producer_ids SET next = next + 1 RETURNING next - 1").Scan(&id); err != nil {
		return 0, fmt.Errorf("allocate producer id: %w", err)
	}
	return id, nil
}

// CommitOffsets implements metastore.Store.
func (s *Store) CommitOffsets(ctx context.Context, group string, offsets []metastore.CommittedOffset) error {
	if len(offsets) == 0 {
		return nil
	}
	err := inTx(ctx, s.write, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO consumer_offsets (group_id, topic, partition, "offset", leader_epoch, metadata)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (group_id, topic, partition) DO UPDATE
			SET "offset" = excluded."offset", leader_epoch = excluded.leader_epoch, metadata = excluded.metadata`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, o := range offsets {
			if _, err := st.ExecContext(ctx, group, o.Topic, o.Partition, o.Offset, o.LeaderEpoch, o.Metadata); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", group, err)
	}
	return nil
}

// FetchOffsets implements metastore.Store.
func (s *Store) FetchOffsets(ctx context.Context, group string) ([]metastore.CommittedOffset, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT topic, partition, "offset", leader_epoch, metadata
		FROM consumer_offsets WHERE group_id = ? ORDER BY topic, partition`, group)
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	defer rows.Close()
	out := []metastore.CommittedOffset{}
	for rows.Next() {
		var o metastore.CommittedOffset
		if err := rows.Scan(&o.Topic, &o.Partition, &o.Offset, &o.LeaderEpoch, &o.Metadata); err != nil {
			return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	return out, nil
}

// AcquireLease implements metastore.Store.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	t := now()
	rows, err := s.write.QueryContext(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= ?4
		RETURNING holder`, name, holder, t+int64(ttl), t)
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	defer rows.Close()
	got := rows.Next()
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return got, nil
}

// ReleaseLease implements metastore.Store.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.write.ExecContext(ctx, "DELETE FROM leases WHERE name = ? AND holder = ?", name, holder); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}

// Agents implements metastore.Store.
func (s *Store) Agents(ctx context.Context) ([]metastore.Agent, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT id, addr, zone, expires_at FROM agents WHERE expires_at > ? ORDER BY id", now())
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	defer rows.Close()
	out := []metastore.Agent{}
	for rows.Next() {
		var (
			a   metastore.Agent
			exp int64
		)
		if err := rows.Scan(&a.ID, &a.Addr, &a.Zone, &exp); err != nil {
			return nil, fmt.Errorf("list agents: %w", err)
		}
		a.Expires = time.Unix(0, exp)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return out, nil
}

// SchemaVersion implements metastore.Store.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.read.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// ExpireProducers implements metastore.Store.
func (s *Store) ExpireProducers(ctx context.Context, olderThan time.Time) (int, error) {
	r, err := s.write.ExecContext(ctx, "DELETE FROM producer_state WHERE updated_at < ?", olderThan.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("expire producers: %w", err)
	}
	n, _ := r.RowsAffected()
	return int(n), nil
}
