package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/internal/flushcommit"
)

// Store is the Postgres metastore.Store.
type Store struct {
	pool *pgxpool.Pool
}

var _ metastore.Store = (*Store)(nil)

// ErrSchemaOutdated is returned by Open when the database has not been
// migrated to the version this build needs; run Migrate (`silt migrate`).
var ErrSchemaOutdated = errors.New("metastore schema is missing or outdated")

// Open connects to the database at url (a postgres:// URL or key=value DSN;
// pool settings such as pool_max_conns are accepted). It does not migrate:
// if the schema is older than LatestVersion it fails with ErrSchemaOutdated.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse postgres url: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	s := &Store{pool: pool}
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
			err = fmt.Errorf("%w: no schema_migrations table; run silt migrate", ErrSchemaOutdated)
		}
		pool.Close()
		return nil, fmt.Errorf("open postgres metastore: %w", err)
	}
	if want := LatestVersion(); v < want {
		pool.Close()
		return nil, fmt.Errorf("open postgres metastore: %w: version %d, this build needs %d; run silt migrate", ErrSchemaOutdated, v, want)
	}
	return s, nil
}

// Pool exposes the connection pool, for tests and diagnostics.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close implements metastore.Store.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

func uuidArg(id metastore.TopicID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }

func isUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && (constraint == "" || pgErr.ConstraintName == constraint)
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
	config := spec.Config
	if config == nil {
		config = map[string]string{}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO topics (id, name, partitions, config) VALUES ($1, $2, $3, $4)",
			uuidArg(spec.ID), spec.Name, spec.Partitions, config); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO partitions (topic_id, partition)
			SELECT $1, generate_series(0, $2 - 1)`, uuidArg(spec.ID), spec.Partitions)
		return err
	})
	if isUniqueViolation(err, "topics_name_key") {
		return metastore.Topic{}, fmt.Errorf("create topic %s: %w", spec.Name, metastore.ErrTopicExists)
	}
	if err != nil {
		return metastore.Topic{}, fmt.Errorf("create topic %s: %w", spec.Name, err)
	}
	return metastore.Topic{ID: spec.ID, Name: spec.Name, Partitions: spec.Partitions, Config: copyConfig(config)}, nil
}

func copyConfig(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// DeleteTopic implements metastore.Store.
func (s *Store) DeleteTopic(ctx context.Context, name string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id pgtype.UUID
		if err := tx.QueryRow(ctx, "SELECT id FROM topics WHERE name = $1 FOR UPDATE", name).Scan(&id); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return metastore.ErrUnknownTopic
			}
			return err
		}
		// Lock the partitions in commit_flush's order first, so a concurrent
		// flush either commits before us (and its index rows are deleted
		// below) or finds the partitions gone.
		if _, err := tx.Exec(ctx, "SELECT 1 FROM partitions WHERE topic_id = $1 ORDER BY topic_id, partition FOR UPDATE", id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM producer_state WHERE topic_id = $1", id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM index_entries WHERE topic_id = $1", id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM partitions WHERE topic_id = $1", id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM topics WHERE id = $1", id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete topic %s: %w", name, err)
	}
	return nil
}

func scanTopic(row pgx.Row) (metastore.Topic, error) {
	var (
		t      metastore.Topic
		id     pgtype.UUID
		config map[string]string
	)
	if err := row.Scan(&id, &t.Name, &t.Partitions, &config); err != nil {
		return metastore.Topic{}, err
	}
	t.ID = id.Bytes
	if config == nil {
		config = map[string]string{}
	}
	t.Config = config
	return t, nil
}

// Topic implements metastore.Store.
func (s *Store) Topic(ctx context.Context, name string) (metastore.Topic, error) {
	t, err := scanTopic(s.pool.QueryRow(ctx, "SELECT id, name, partitions, config FROM topics WHERE name = $1", name))
	if errors.Is(err, pgx.ErrNoRows) {
		return metastore.Topic{}, fmt.Errorf("topic %s: %w", name, metastore.ErrUnknownTopic)
	}
	if err != nil {
		return metastore.Topic{}, fmt.Errorf("topic %s: %w", name, err)
	}
	return t, nil
}

// Topics implements metastore.Store.
func (s *Store) Topics(ctx context.Context) ([]metastore.Topic, error) {
	rows, err := s.pool.Query(ctx, "SELECT id, name, partitions, config FROM topics ORDER BY name")
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
	if config == nil {
		config = map[string]string{}
	}
	tag, err := s.pool.Exec(ctx, "UPDATE topics SET config = $2 WHERE name = $1", name, config)
	if err != nil {
		return fmt.Errorf("set config of topic %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set config of topic %s: %w", name, metastore.ErrUnknownTopic)
	}
	return nil
}

// CreatePartitions implements metastore.Store.
func (s *Store) CreatePartitions(ctx context.Context, name string, count int32) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			id  pgtype.UUID
			old int32
		)
		if err := tx.QueryRow(ctx, "SELECT id, partitions FROM topics WHERE name = $1 FOR UPDATE", name).Scan(&id, &old); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return metastore.ErrUnknownTopic
			}
			return err
		}
		if count <= old {
			return fmt.Errorf("%w: %d, topic has %d", metastore.ErrInvalidPartitions, count, old)
		}
		if _, err := tx.Exec(ctx, "UPDATE topics SET partitions = $2 WHERE id = $1", id, count); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO partitions (topic_id, partition)
			SELECT $1, generate_series($2::integer, $3::integer - 1)`, id, old, count)
		return err
	})
	if err != nil {
		return fmt.Errorf("create partitions of topic %s: %w", name, err)
	}
	return nil
}

// Partitions implements metastore.Store.
func (s *Store) Partitions(ctx context.Context, topicID metastore.TopicID) ([]metastore.PartitionState, error) {
	rows, err := s.pool.Query(ctx, `SELECT partition, high_watermark, log_start_offset,
			coalesce((SELECT min(o.first_offset) FROM ongoing_txns o
				WHERE o.topic_id = p.topic_id AND o.partition = p.partition), high_watermark)
		FROM partitions p WHERE topic_id = $1 ORDER BY partition`, uuidArg(topicID))
	if err != nil {
		return nil, fmt.Errorf("partitions of topic %x: %w", topicID[:], err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.PartitionState, error) {
		var p metastore.PartitionState
		err := r.Scan(&p.Partition, &p.HighWatermark, &p.LogStartOffset, &p.LastStableOffset)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("partitions of topic %x: %w", topicID[:], err)
	}
	if len(ps) == 0 {
		// Every topic has at least one partition, so none means no topic.
		return nil, fmt.Errorf("partitions of topic %x: %w", topicID[:], metastore.ErrUnknownTopic)
	}
	return ps, nil
}

// RecordUpload implements metastore.Store.
func (s *Store) RecordUpload(ctx context.Context, key string, agentID string) error {
	return s.RecordUploads(ctx, []string{key}, agentID)
}

// RecordUploads implements metastore.Store.
func (s *Store) RecordUploads(ctx context.Context, keys []string, agentID string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO segments (key, agent, state)
		SELECT k, $2, 'uploading' FROM unnest($1::text[]) AS k
		ON CONFLICT (key) DO NOTHING`, keys, agentID)
	if err != nil {
		return fmt.Errorf("record uploads %v: %w", keys, err)
	}
	return nil
}

// CommitFlush implements metastore.Store with one call of the commit_flush
// SQL function: one round trip whatever the number of partitions.
func (s *Store) CommitFlush(ctx context.Context, f metastore.Flush) (metastore.FlushResult, error) {
	n := len(f.Chunks)
	var (
		topicIDs   = make([]pgtype.UUID, n)
		partitions = make([]int32, n)
		positions  = make([]int64, n)
		lengths    = make([]int64, n)
		counts     = make([]int64, n)
		batches    = make([]int32, n)
		minTS      = make([]int64, n)
		maxTS      = make([]int64, n)
		b          batchArrays
	)
	for i, c := range f.Chunks {
		if c.OffsetCount <= 0 {
			return metastore.FlushResult{}, fmt.Errorf("commit flush %s: chunk %d for partition %x/%d has offset count %d", f.SegmentKey, i, c.Topic[:], c.Partition, c.OffsetCount)
		}
		topicIDs[i] = uuidArg(c.Topic)
		partitions[i] = c.Partition
		positions[i] = c.Position
		lengths[i] = c.Length
		counts[i] = c.OffsetCount
		batches[i] = c.BatchCount
		minTS[i] = c.MinTimestamp
		maxTS[i] = c.MaxTimestamp
		for _, pb := range c.Batches {
			b.add(int32(i+1), pb)
		}
	}
	var (
		bases    []int64
		missing  []int32
		verdicts []int32
		bBases   []int64
		already  bool
	)
	// Transactional batches need bookkeeping after commit_flush in the same
	// transaction; everything else commits in one round trip.
	var q interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	} = s.pool
	var tx pgx.Tx
	if flushcommit.HasTxnBatches(f) {
		var err error
		if tx, err = s.pool.Begin(ctx); err != nil {
			return metastore.FlushResult{}, fmt.Errorf("commit flush %s: %w", f.SegmentKey, err)
		}
		defer tx.Rollback(ctx)
		q = tx
	}
	err := q.QueryRow(ctx, `SELECT base_offsets, missing, b_verdicts, b_bases, already
		FROM commit_flush($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)`,
		f.SegmentKey, f.AgentID, f.Size, topicIDs, partitions, positions, lengths, counts, batches, minTS, maxTS,
		b.chunk, b.pos, b.len, b.cnt, b.minTS, b.maxTS, b.pid, b.epoch, b.seq, b.control, b.abort,
	).Scan(&bases, &missing, &verdicts, &bBases, &already)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "P0002" {
		return metastore.FlushResult{}, fmt.Errorf("commit flush %s: %w", f.SegmentKey, metastore.ErrUploadNotRecorded)
	}
	if err != nil {
		return metastore.FlushResult{}, permanentIfRejected(fmt.Errorf("commit flush %s: %w", f.SegmentKey, err))
	}
	if already {
		return s.committedResults(ctx, f)
	}
	if len(missing) > 0 {
		uerr := &metastore.UnknownPartitionsError{}
		for _, i := range missing {
			uerr.Partitions = append(uerr.Partitions, f.Chunks[i-1].TopicPartition)
		}
		return metastore.FlushResult{}, uerr
	}
	if len(bases) != n || len(verdicts) != len(b.chunk) || len(bBases) != len(b.chunk) {
		return metastore.FlushResult{}, fmt.Errorf("commit flush %s: got %d base offsets for %d chunks, %d verdicts for %d batches",
			f.SegmentKey, len(bases), n, len(verdicts), len(b.chunk))
	}
	res := metastore.FlushResult{BaseOffsets: bases, Batches: make([][]metastore.BatchResult, n)}
	k := 0
	for i, c := range f.Chunks {
		if c.Batches == nil {
			continue
		}
		rs := make([]metastore.BatchResult, len(c.Batches))
		for j := range c.Batches {
			rs[j] = flushcommit.ResultOf(verdicts[k], bBases[k])
			k++
		}
		res.Batches[i] = rs
	}
	if tx != nil {
		if err := txnBookkeeping(ctx, tx, f, res); err != nil {
			return metastore.FlushResult{}, fmt.Errorf("commit flush %s: %w", f.SegmentKey, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return metastore.FlushResult{}, fmt.Errorf("commit flush %s: %w", f.SegmentKey, err)
		}
	}
	return res, nil
}

// batchArrays are the p_b_* arguments of commit_flush.
type batchArrays struct {
	chunk, seq, epoch                []int32
	pos, len, cnt, minTS, maxTS, pid []int64
	control, abort                   []bool
}

func (b *batchArrays) add(chunk int32, pb metastore.ProducerBatch) {
	b.chunk = append(b.chunk, chunk)
	b.pos = append(b.pos, pb.Position)
	b.len = append(b.len, pb.Length)
	b.cnt = append(b.cnt, pb.OffsetCount)
	b.minTS = append(b.minTS, pb.MinTimestamp)
	b.maxTS = append(b.maxTS, pb.MaxTimestamp)
	b.pid = append(b.pid, pb.ProducerID)
	b.control = append(b.control, pb.IsControl) // no sequence to check; leaves a fence
	b.abort = append(b.abort, pb.Abort)
	b.epoch = append(b.epoch, int32(pb.ProducerEpoch))
	b.seq = append(b.seq, pb.BaseSequence)
}

// committedResults answers a retried commit of a committed segment from
// its index rows.
func (s *Store) committedResults(ctx context.Context, f metastore.Flush) (metastore.FlushResult, error) {
	rows, err := s.IndexBySegment(ctx, f.SegmentKey)
	if err != nil {
		return metastore.FlushResult{}, err
	}
	byTP := make(map[metastore.TopicPartition][]metastore.IndexEntry)
	for _, r := range rows {
		byTP[r.TopicPartition] = append(byTP[r.TopicPartition], r)
	}
	res := metastore.FlushResult{BaseOffsets: make([]int64, len(f.Chunks)), Batches: make([][]metastore.BatchResult, len(f.Chunks))}
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
	if err := metastore.MissingAfterCommit(ctx, s, f.SegmentKey, missing); err != nil {
		return metastore.FlushResult{}, err
	}
	return res, nil
}

// ExpireProducers implements metastore.Store.
func (s *Store) ExpireProducers(ctx context.Context, olderThan time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, "DELETE FROM producer_state WHERE updated_at < $1", olderThan)
	if err != nil {
		return 0, fmt.Errorf("expire producers: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// Orphans implements metastore.Store.
func (s *Store) Orphans(ctx context.Context, olderThan time.Time) ([]metastore.Upload, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, agent, recorded_at FROM segments
		WHERE state = 'uploading' AND recorded_at < $1 ORDER BY recorded_at, key`, olderThan)
	if err != nil {
		return nil, fmt.Errorf("list orphans: %w", err)
	}
	ups, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.Upload, error) {
		var u metastore.Upload
		err := r.Scan(&u.Key, &u.AgentID, &u.RecordedAt)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("list orphans: %w", err)
	}
	return ups, nil
}

// ForgetUpload implements metastore.Store.
func (s *Store) ForgetUpload(ctx context.Context, key string) (bool, error) {
	tag, err := s.pool.Exec(ctx, "DELETE FROM segments WHERE key = $1 AND state = 'uploading'", key)
	if err != nil {
		return false, fmt.Errorf("forget upload %s: %w", key, err)
	}
	return tag.RowsAffected() == 1, nil
}

const indexColumns = "topic_id, partition, base_offset, last_offset, segment_key, position, length, batch_count, min_ts, max_ts"

func scanIndexEntry(r pgx.Row) (metastore.IndexEntry, error) {
	var (
		e  metastore.IndexEntry
		id pgtype.UUID
	)
	err := r.Scan(&id, &e.Partition, &e.BaseOffset, &e.LastOffset, &e.SegmentKey, &e.Position, &e.Length,
		&e.BatchCount, &e.MinTimestamp, &e.MaxTimestamp)
	e.Topic = id.Bytes
	return e, err
}

// Index implements metastore.Store. A limit <= 0 means no row limit.
//
// The inner query starts at the chunk holding offset by primary key (chunks
// of a partition are contiguous and do not overlap), so a tailing read costs
// an index seek, not a scan of the partition's history.
func (s *Store) Index(ctx context.Context, tp metastore.TopicPartition, offset int64, maxBytes int64, limit int) ([]metastore.IndexEntry, error) {
	var lim *int64
	if limit > 0 {
		l := int64(limit)
		lim = &l
	}
	rows, err := s.pool.Query(ctx, `SELECT `+indexColumns+` FROM (
			SELECT `+indexColumns+`, sum(length) OVER (ORDER BY base_offset) - length AS before
			FROM (
				SELECT `+indexColumns+` FROM index_entries
				WHERE topic_id = $1 AND partition = $2 AND last_offset >= $3
				  AND base_offset >= coalesce((
					SELECT base_offset FROM index_entries
					WHERE topic_id = $1 AND partition = $2 AND base_offset <= $3
					ORDER BY base_offset DESC LIMIT 1), $3)
				ORDER BY base_offset
				LIMIT $5
			) candidates
		) budgeted
		WHERE before < greatest($4::bigint, 1)
		ORDER BY base_offset`,
		uuidArg(tp.Topic), tp.Partition, offset, maxBytes, lim)
	if err != nil {
		return nil, fmt.Errorf("index of %x/%d from %d: %w", tp.Topic[:], tp.Partition, offset, err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.IndexEntry, error) { return scanIndexEntry(r) })
	if err != nil {
		return nil, fmt.Errorf("index of %x/%d from %d: %w", tp.Topic[:], tp.Partition, offset, err)
	}
	return es, nil
}

func (s *Store) indexRow(ctx context.Context, what string, tp metastore.TopicPartition, query string, args ...any) (metastore.IndexEntry, bool, error) {
	e, err := scanIndexEntry(s.pool.QueryRow(ctx, query, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return metastore.IndexEntry{}, false, nil
	}
	if err != nil {
		return metastore.IndexEntry{}, false, fmt.Errorf("%s of %x/%d: %w", what, tp.Topic[:], tp.Partition, err)
	}
	return e, true, nil
}

// IndexByTimestamp implements metastore.Store. The inner query uses the
// (topic_id, partition, max_ts, base_offset) index, which only visits rows
// at or after ts: few, for the usual recent-timestamp lookups.
func (s *Store) IndexByTimestamp(ctx context.Context, tp metastore.TopicPartition, ts int64) (metastore.IndexEntry, bool, error) {
	return s.indexRow(ctx, "index by timestamp", tp, `SELECT `+indexColumns+` FROM index_entries
		WHERE topic_id = $1 AND partition = $2 AND base_offset = (
			SELECT min(base_offset) FROM index_entries
			WHERE topic_id = $1 AND partition = $2 AND max_ts >= $3)`,
		uuidArg(tp.Topic), tp.Partition, ts)
}

// IndexMaxTimestamp implements metastore.Store.
func (s *Store) IndexMaxTimestamp(ctx context.Context, tp metastore.TopicPartition) (metastore.IndexEntry, bool, error) {
	return s.indexRow(ctx, "index max timestamp", tp, `SELECT `+indexColumns+` FROM index_entries
		WHERE topic_id = $1 AND partition = $2
		ORDER BY max_ts DESC, base_offset LIMIT 1`,
		uuidArg(tp.Topic), tp.Partition)
}

// AllocateProducerID implements metastore.Store.
func (s *Store) AllocateProducerID(ctx context.Context) (int64, error) {
	var id int64
	if err := s.pool.QueryRow(ctx, "SELECT nextval('producer_ids')").Scan(&id); err != nil {
		return 0, fmt.Errorf("allocate producer id: %w", err)
	}
	return id, nil
}

// CommitOffsets implements metastore.Store.
func (s *Store) CommitOffsets(ctx context.Context, group string, offsets []metastore.CommittedOffset) error {
	if len(offsets) == 0 {
		return nil
	}
	n := len(offsets)
	var (
		topics   = make([]string, n)
		parts    = make([]int32, n)
		offs     = make([]int64, n)
		epochs   = make([]int32, n)
		metadata = make([]string, n)
	)
	for i, o := range offsets {
		topics[i], parts[i], offs[i], epochs[i], metadata[i] = o.Topic, o.Partition, o.Offset, o.LeaderEpoch, o.Metadata
	}
	// DISTINCT ON keeps the last entry when a partition appears twice, since
	// ON CONFLICT cannot touch one row twice in a statement.
	_, err := s.pool.Exec(ctx, `INSERT INTO consumer_offsets (group_id, topic, partition, "offset", leader_epoch, metadata)
		SELECT DISTINCT ON (t, p) $1, t, p, o, e, m
		FROM unnest($2::text[], $3::integer[], $4::bigint[], $5::integer[], $6::text[]) WITH ORDINALITY AS u(t, p, o, e, m, i)
		ORDER BY t, p, i DESC
		ON CONFLICT (group_id, topic, partition) DO UPDATE
		SET "offset" = excluded."offset", leader_epoch = excluded.leader_epoch, metadata = excluded.metadata`,
		group, topics, parts, offs, epochs, metadata)
	if err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", group, err)
	}
	return nil
}

// FetchOffsets implements metastore.Store.
func (s *Store) FetchOffsets(ctx context.Context, group string) ([]metastore.CommittedOffset, error) {
	rows, err := s.pool.Query(ctx, `SELECT topic, partition, "offset", leader_epoch, metadata
		FROM consumer_offsets WHERE group_id = $1 ORDER BY topic, partition`, group)
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	os, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.CommittedOffset, error) {
		var o metastore.CommittedOffset
		err := r.Scan(&o.Topic, &o.Partition, &o.Offset, &o.LeaderEpoch, &o.Metadata)
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	if os == nil {
		os = []metastore.CommittedOffset{}
	}
	return os, nil
}

// AcquireLease implements metastore.Store.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	rows, err := s.pool.Query(ctx, `INSERT INTO leases (name, holder, expires_at)
		VALUES ($1, $2, clock_timestamp() + $3 * interval '1 microsecond')
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= clock_timestamp()
		RETURNING holder`, name, holder, ttl.Microseconds())
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return len(got) == 1, nil
}

// ReleaseLease implements metastore.Store.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.pool.Exec(ctx, "DELETE FROM leases WHERE name = $1 AND holder = $2", name, holder); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}

// Agents implements metastore.Store.
func (s *Store) Agents(ctx context.Context) ([]metastore.Agent, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, addr, zone, expires_at FROM agents
		WHERE expires_at > clock_timestamp() ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	as, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.Agent, error) {
		var a metastore.Agent
		err := r.Scan(&a.ID, &a.Addr, &a.Zone, &a.Expires)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	if as == nil {
		as = []metastore.Agent{}
	}
	return as, nil
}

// SchemaVersion implements metastore.Store.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int32
	if err := s.pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v), nil
}

// permanentIfRejected marks an error no retry can mend as a
// *metastore.PermanentError: the server rejected the statement itself — a
// data exception (SQLSTATE class 22), an integrity violation (23), or a
// syntax error or undefined object (42: a schema that does not match this
// build). Connection failures, serialization failures, deadlocks and
// shutdowns stay transient.
func permanentIfRejected(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 {
		switch pgErr.Code[:2] {
		case "22", "23", "42":
			return &metastore.PermanentError{Err: err}
		}
	}
	return err
}
