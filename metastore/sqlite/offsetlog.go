package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/siltstream/silt/metastore"
)

// writeOffsets stores a group's offsets inside tx, replacing earlier ones
// for the same partitions, each row written taking the next sequence number
// of the group's partition of __consumer_offsets.
func writeOffsets(ctx context.Context, tx *sql.Tx, group string, offsets []metastore.CommittedOffset) error {
	if len(offsets) == 0 {
		return nil
	}
	part := metastore.OffsetsPartition(group)
	var next int64
	err := tx.QueryRowContext(ctx, `UPDATE consumer_offsets_log SET next_seq = next_seq + ? WHERE part = ? RETURNING next_seq`,
		len(offsets), part).Scan(&next)
	if err != nil {
		return fmt.Errorf("take offset log sequence: %w", err)
	}
	base := next - int64(len(offsets))
	st, err := tx.PrepareContext(ctx, `INSERT INTO consumer_offsets (group_id, topic, partition, "offset", leader_epoch, metadata, part, seq, commit_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (group_id, topic, partition) DO UPDATE
		SET "offset" = excluded."offset", leader_epoch = excluded.leader_epoch, metadata = excluded.metadata,
			part = excluded.part, seq = excluded.seq, commit_ms = excluded.commit_ms`)
	if err != nil {
		return err
	}
	defer st.Close()
	ms := time.Now().UnixMilli()
	for i, o := range offsets {
		if _, err := st.ExecContext(ctx, group, o.Topic, o.Partition, o.Offset, o.LeaderEpoch, o.Metadata, part, base+int64(i), ms); err != nil {
			return err
		}
	}
	return nil
}

// afterMigration holds the steps of a migration that SQL alone cannot do,
// run in the migration's transaction right after its SQL.
var afterMigration = map[int]func(ctx context.Context, tx *sql.Tx) error{
	12: numberOffsetLog,
}

// numberOffsetLog gives the offsets committed before migration 0012 their
// partition of __consumer_offsets (Kafka's hash of the group id, computed
// here rather than in SQL) and sequence numbers, in (group, topic,
// partition) order.
func numberOffsetLog(ctx context.Context, tx *sql.Tx) error {
	type key struct {
		group, topic string
		partition    int32
	}
	rows, err := tx.QueryContext(ctx, `SELECT group_id, topic, partition FROM consumer_offsets WHERE part = -1
		ORDER BY group_id, topic, partition`)
	if err != nil {
		return fmt.Errorf("number offset log: %w", err)
	}
	var keys []key
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.group, &k.topic, &k.partition); err != nil {
			rows.Close()
			return fmt.Errorf("number offset log: %w", err)
		}
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("number offset log: %w", err)
	}
	next := make(map[int32]int64)
	ms := time.Now().UnixMilli()
	for _, k := range keys {
		part := metastore.OffsetsPartition(k.group)
		if _, err := tx.ExecContext(ctx, `UPDATE consumer_offsets SET part = ?, seq = ?, commit_ms = ?
			WHERE group_id = ? AND topic = ? AND partition = ?`, part, next[part], ms, k.group, k.topic, k.partition); err != nil {
			return fmt.Errorf("number offset log: %w", err)
		}
		next[part]++
	}
	for part, n := range next {
		if _, err := tx.ExecContext(ctx, `UPDATE consumer_offsets_log SET next_seq = ? WHERE part = ?`, n, part); err != nil {
			return fmt.Errorf("number offset log: %w", err)
		}
	}
	return nil
}

// OffsetLog implements metastore.OffsetLogStore.
func (s *Store) OffsetLog(ctx context.Context, part int32, from, end int64, limit int, maxBytes int64) ([]metastore.OffsetLogEntry, error) {
	// The running total of the rows before each row decides: the first row
	// always (nothing before it), the others while the total is below
	// maxBytes. The sizes are metastore.OffsetLogEntrySize's (lengths in
	// bytes: as blobs).
	rows, err := s.read.QueryContext(ctx, `SELECT seq, group_id, topic, partition, "offset", leader_epoch, metadata, commit_ms
		FROM (
			SELECT *, coalesce(sum(length(CAST(group_id AS BLOB)) + length(CAST(topic AS BLOB)) + length(CAST(metadata AS BLOB)) + ?)
				OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
			FROM (SELECT * FROM consumer_offsets WHERE part = ? AND seq >= ? AND seq < ? ORDER BY seq LIMIT ?)
		)
		WHERE before < ? ORDER BY seq`,
		metastore.OffsetLogEntrySize("", "", ""), part, from, end, limit, max(maxBytes, 1))
	if err != nil {
		return nil, fmt.Errorf("read offset log partition %d: %w", part, err)
	}
	defer rows.Close()
	var out []metastore.OffsetLogEntry
	for rows.Next() {
		var e metastore.OffsetLogEntry
		if err := rows.Scan(&e.Seq, &e.Group, &e.Topic, &e.Partition, &e.Offset, &e.LeaderEpoch, &e.Metadata, &e.CommitTimeMs); err != nil {
			return nil, fmt.Errorf("read offset log partition %d: %w", part, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read offset log partition %d: %w", part, err)
	}
	return out, nil
}

// OffsetLogEnd implements metastore.OffsetLogStore.
func (s *Store) OffsetLogEnd(ctx context.Context, part int32) (int64, error) {
	var end int64
	if err := s.read.QueryRowContext(ctx, `SELECT next_seq FROM consumer_offsets_log WHERE part = ?`, part).Scan(&end); err != nil {
		return 0, fmt.Errorf("read offset log end of partition %d: %w", part, err)
	}
	return end, nil
}
