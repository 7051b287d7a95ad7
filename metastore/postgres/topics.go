package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/siltstream/silt/metastore"
)

// deletionAckWait is how long CreateTopic waits for every live agent to
// acknowledge the deletion of a topic of the same name.
const deletionAckWait = 5 * time.Second

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
	create := func(tx pgx.Tx) error {
		// Wait out a deletion committing now (it updates the counter row),
		// so its tombstone is seen below.
		if _, err := tx.Exec(ctx, "SELECT 1 FROM topic_deletion_counter WHERE id = 1 FOR SHARE"); err != nil {
			return err
		}
		var pending bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM topic_deletions d JOIN agents a ON a.deletions_seen < d.seq
			WHERE d.name = $1 AND a.expires_at > clock_timestamp())`, spec.Name).Scan(&pending); err != nil {
			return err
		}
		if pending {
			return metastore.ErrTopicDeletionPending
		}
		if _, err := tx.Exec(ctx, "INSERT INTO topics (id, name, partitions, config) VALUES ($1, $2, $3, $4)",
			uuidArg(spec.ID), spec.Name, spec.Partitions, config); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO partitions (topic_id, partition)
			SELECT $1, generate_series(0, $2 - 1)`, uuidArg(spec.ID), spec.Partitions)
		return err
	}
	// Agents acknowledge a deletion as soon as its notification reaches
	// them: wait for that a little before refusing the name.
	wait := time.NewTimer(deletionAckWait)
	defer wait.Stop()
	var err error
	for {
		err = pgx.BeginFunc(ctx, s.pool, create)
		if !errors.Is(err, metastore.ErrTopicDeletionPending) {
			break
		}
		select {
		case <-wait.C:
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
			continue
		}
		break
	}
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
		// Everything keyed by the topic goes with it, or a topic re-created
		// under the name would inherit it: groups' committed offsets are
		// keyed by name; transactions and producer state by id.
		for _, q := range []string{
			"DELETE FROM producer_state WHERE topic_id = $1",
			"DELETE FROM ongoing_txns WHERE topic_id = $1",
			"DELETE FROM aborted_txns WHERE topic_id = $1",
			// Its segments become garbage once nothing else references them.
			`INSERT INTO gc_candidates (segment_id) SELECT DISTINCT segment_id FROM index_entries
				WHERE partition_id IN (SELECT id FROM partitions WHERE topic_id = $1)`,
			"DELETE FROM index_entries WHERE partition_id IN (SELECT id FROM partitions WHERE topic_id = $1)",
		} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, "DELETE FROM consumer_offsets WHERE topic = $1", name); err != nil {
			return err
		}
		// Announce the deletion to every agent, numbered in commit order (the
		// counter row is locked until we commit), and keep a tombstone until
		// every live agent has acknowledged it; forget the acknowledged ones.
		var seq int64
		if err := tx.QueryRow(ctx, "UPDATE topic_deletion_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq").Scan(&seq); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM topic_deletions WHERE seq <= (SELECT min(deletions_seen) FROM agents
			WHERE expires_at > clock_timestamp())`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO topic_deletions (seq, topic_id, name) VALUES ($1, $2, $3)", seq, id, name); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SELECT pg_notify('silt_topics', $1::bigint || E'\t' || encode(uuid_send($2), 'hex'))", seq, id); err != nil {
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
func (s *Store) SetTopicConfig(ctx context.Context, name string, config, prev map[string]string) error {
	if config == nil {
		config = map[string]string{}
	}
	if prev == nil {
		prev = map[string]string{}
	}
	tag, err := s.pool.Exec(ctx, "UPDATE topics SET config = $2 WHERE name = $1 AND config = $3::jsonb", name, config, prev)
	if err != nil {
		return fmt.Errorf("set config of topic %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.Topic(ctx, name); err != nil {
			return fmt.Errorf("set config of topic %s: %w", name, err)
		}
		return fmt.Errorf("set config of topic %s: %w", name, metastore.ErrConfigChanged)
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
