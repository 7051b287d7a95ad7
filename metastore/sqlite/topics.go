package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/siltstream/silt/metastore"
)

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
		// Everything keyed by the topic goes with it, or a topic re-created
		// under the name would inherit it: groups' committed offsets are
		// keyed by name; transactions and producer state by id.
		for _, q := range []string{
			"DELETE FROM producer_state WHERE topic_id = ?",
			"DELETE FROM ongoing_txns WHERE topic_id = ?",
			"DELETE FROM aborted_txns WHERE topic_id = ?",
			// Its segments become garbage once nothing else references them.
			"INSERT INTO gc_candidates (segment_key) SELECT DISTINCT segment_key FROM index_entries WHERE topic_id = ?",
			"DELETE FROM index_entries WHERE topic_id = ?",
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM consumer_offsets WHERE topic = ?", name); err != nil {
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
func (s *Store) SetTopicConfig(ctx context.Context, name string, config, prev map[string]string) error {
	enc, err := encodeConfig(config)
	if err != nil {
		return fmt.Errorf("set config of topic %s: %w", name, err)
	}
	// encodeConfig is canonical (keys sorted), so equal maps are equal text.
	encPrev, err := encodeConfig(prev)
	if err != nil {
		return fmt.Errorf("set config of topic %s: %w", name, err)
	}
	res, err := s.write.ExecContext(ctx, "UPDATE topics SET config = ? WHERE name = ? AND config = ?", enc, name, encPrev)
	if err != nil {
		return fmt.Errorf("set config of topic %s: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("set config of topic %s: %w", name, err)
	} else if n == 0 {
		if _, err := s.Topic(ctx, name); err != nil {
			return fmt.Errorf("set config of topic %s: %w", name, err)
		}
		return fmt.Errorf("set config of topic %s: %w", name, metastore.ErrConfigChanged)
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
