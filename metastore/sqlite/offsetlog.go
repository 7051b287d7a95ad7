package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
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

// numberGroup gives a group just saved in tx the next sequence number of
// its partition of __consumer_offsets.
func numberGroup(ctx context.Context, tx *sql.Tx, id string) error {
	part := metastore.OffsetsPartition(id)
	var next int64
	if err := tx.QueryRowContext(ctx, `UPDATE consumer_offsets_log SET next_seq = next_seq + 1 WHERE part = ? RETURNING next_seq`, part).Scan(&next); err != nil {
		return fmt.Errorf("number group: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE consumer_groups SET part = ?, seq = ?, commit_ms = ? WHERE group_id = ?`,
		part, next-1, time.Now().UnixMilli(), id); err != nil {
		return fmt.Errorf("number group: %w", err)
	}
	return nil
}

// afterMigration holds the steps of a migration that SQL alone cannot do,
// run in the migration's transaction right after its SQL.
var afterMigration = map[int]func(ctx context.Context, tx *sql.Tx) error{
	12: numberOffsetLog,
}

// numberOffsetLog gives the offsets and groups saved before migration 0012
// their partition of __consumer_offsets (Kafka's hash of the group id,
// computed here rather than in SQL) and sequence numbers: offsets in
// (group, topic, partition) order, then groups in id order.
func numberOffsetLog(ctx context.Context, tx *sql.Tx) error {
	type key struct {
		group, topic string
		partition    int32
	}
	read := func(query string, scan func(*sql.Rows) error) error {
		rows, err := tx.QueryContext(ctx, query)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	var keys []key
	err := read(`SELECT group_id, topic, partition FROM consumer_offsets WHERE part = -1 ORDER BY group_id, topic, partition`,
		func(r *sql.Rows) error {
			var k key
			err := r.Scan(&k.group, &k.topic, &k.partition)
			keys = append(keys, k)
			return err
		})
	if err != nil {
		return fmt.Errorf("number offset log: %w", err)
	}
	var groups []string
	err = read(`SELECT group_id FROM consumer_groups WHERE part = -1 ORDER BY group_id`, func(r *sql.Rows) error {
		var g string
		err := r.Scan(&g)
		groups = append(groups, g)
		return err
	})
	if err != nil {
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
	for _, g := range groups {
		part := metastore.OffsetsPartition(g)
		if _, err := tx.ExecContext(ctx, `UPDATE consumer_groups SET part = ?, seq = ?, commit_ms = ? WHERE group_id = ?`,
			part, next[part], ms, g); err != nil {
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

// OffsetLog implements metastore.OffsetLogStore: offsets and groups of the
// partition merged in sequence order.
func (s *Store) OffsetLog(ctx context.Context, part int32, from, end int64, limit int, maxBytes int64) ([]metastore.OffsetLogEntry, error) {
	// The running total of the rows before each row decides: the first row
	// always (nothing before it), the others while the total is below
	// maxBytes. The sizes are metastore.OffsetLogEntrySize's (lengths in
	// bytes: as blobs), for a group with its protocol names and members in
	// place of topic and metadata.
	rows, err := s.read.QueryContext(ctx, `SELECT kind, seq, group_id, topic, partition, "offset", leader_epoch, metadata, commit_ms,
			generation, protocol_type, protocol, leader, state, members
		FROM (
			SELECT *, coalesce(sum(size) OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
			FROM (
				SELECT * FROM (
					SELECT 0 AS kind, seq, group_id, topic, partition, "offset", leader_epoch, metadata, commit_ms,
						0 AS generation, '' AS protocol_type, '' AS protocol, '' AS leader, '' AS state, NULL AS members,
						length(CAST(group_id AS BLOB)) + length(CAST(topic AS BLOB)) + length(CAST(metadata AS BLOB)) + :overhead AS size
					FROM consumer_offsets WHERE part = :part AND seq >= :from AND seq < :end ORDER BY seq LIMIT :limit)
				UNION ALL
				SELECT * FROM (
					SELECT 1, seq, group_id, '', 0, 0, 0, '', commit_ms,
						generation, protocol_type, protocol, leader, state, members,
						length(CAST(group_id AS BLOB)) + length(CAST(protocol_type AS BLOB)) + length(CAST(protocol AS BLOB))
							+ length(CAST(leader AS BLOB)) + length(CAST(members AS BLOB)) + :overhead
					FROM consumer_groups WHERE part = :part AND seq >= :from AND seq < :end ORDER BY seq LIMIT :limit)
				ORDER BY seq LIMIT :limit
			)
		)
		WHERE before < :max ORDER BY seq`,
		sql.Named("overhead", metastore.OffsetLogEntrySize("", "", "")), sql.Named("part", part), sql.Named("from", from),
		sql.Named("end", end), sql.Named("limit", limit), sql.Named("max", max(maxBytes, 1)))
	if err != nil {
		return nil, fmt.Errorf("read offset log partition %d: %w", part, err)
	}
	defer rows.Close()
	var out []metastore.OffsetLogEntry
	for rows.Next() {
		var e metastore.OffsetLogEntry
		var kind int
		var g metastore.Group
		var members sql.NullString
		if err := rows.Scan(&kind, &e.Seq, &e.Group, &e.Topic, &e.Partition, &e.Offset, &e.LeaderEpoch, &e.Metadata, &e.CommitTimeMs,
			&g.Generation, &g.ProtocolType, &g.Protocol, &g.Leader, &g.State, &members); err != nil {
			return nil, fmt.Errorf("read offset log partition %d: %w", part, err)
		}
		if kind == 1 {
			g.ID = e.Group
			if err := json.Unmarshal([]byte(members.String), &g.Members); err != nil {
				return nil, fmt.Errorf("read offset log partition %d: decode members of group %s: %w", part, g.ID, err)
			}
			e.GroupMetadata = &g
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
