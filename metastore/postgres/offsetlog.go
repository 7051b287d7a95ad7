package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/siltstream/silt/metastore"
)

// afterMigration holds the steps of a migration that SQL alone cannot do,
// run in the migration's transaction right after its SQL.
var afterMigration = map[int]func(ctx context.Context, tx pgx.Tx) error{
	12: numberOffsetLog,
}

// numberOffsetLog gives the offsets and groups saved before migration 0012
// their partition of __consumer_offsets (Kafka's hash of the group id,
// which is computed here rather than in SQL) and sequence numbers: offsets
// in (group, topic, partition) order, then groups in id order.
func numberOffsetLog(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT group_id FROM consumer_offsets WHERE part = -1
		UNION SELECT group_id FROM consumer_groups WHERE part = -1`)
	if err != nil {
		return fmt.Errorf("number offset log: %w", err)
	}
	groups, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("number offset log: %w", err)
	}
	for _, g := range groups {
		if _, err := tx.Exec(ctx, `UPDATE consumer_offsets SET part = $2 WHERE group_id = $1`, g, metastore.OffsetsPartition(g)); err != nil {
			return fmt.Errorf("number offset log: group %s: %w", g, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE consumer_groups SET part = $2 WHERE group_id = $1`, g, metastore.OffsetsPartition(g)); err != nil {
			return fmt.Errorf("number offset log: group %s: %w", g, err)
		}
	}
	_, err = tx.Exec(ctx, `UPDATE consumer_offsets c SET seq = n.seq, commit_ms = (extract(epoch FROM now()) * 1000)::bigint
		FROM (SELECT group_id, topic, partition,
			row_number() OVER (PARTITION BY part ORDER BY group_id, topic, partition) - 1 AS seq
			FROM consumer_offsets) AS n
		WHERE c.group_id = n.group_id AND c.topic = n.topic AND c.partition = n.partition`)
	if err != nil {
		return fmt.Errorf("number offset log: %w", err)
	}
	_, err = tx.Exec(ctx, `UPDATE consumer_groups g SET commit_ms = (extract(epoch FROM now()) * 1000)::bigint,
			seq = n.seq + (SELECT count(*) FROM consumer_offsets c WHERE c.part = g.part)
		FROM (SELECT group_id, row_number() OVER (PARTITION BY part ORDER BY group_id) - 1 AS seq
			FROM consumer_groups) AS n
		WHERE g.group_id = n.group_id`)
	if err != nil {
		return fmt.Errorf("number offset log: %w", err)
	}
	_, err = tx.Exec(ctx, `UPDATE consumer_offsets_log l
		SET next_seq = (SELECT count(*) FROM consumer_offsets c WHERE c.part = l.part)
			+ (SELECT count(*) FROM consumer_groups g WHERE g.part = l.part)`)
	if err != nil {
		return fmt.Errorf("number offset log: %w", err)
	}
	return nil
}

// numberGroup gives a group just saved in tx the next sequence number of
// its partition of __consumer_offsets. It runs after the save's write, so
// it takes the partition's counter after the group's row, the order
// commit_group_offsets takes them in too.
func numberGroup(ctx context.Context, tx pgx.Tx, id string) error {
	_, err := tx.Exec(ctx, `WITH s AS (
			UPDATE consumer_offsets_log SET next_seq = next_seq + 1 WHERE part = $2 RETURNING next_seq - 1 AS seq
		), u AS (
			UPDATE consumer_groups SET part = $2, seq = (SELECT seq FROM s),
				commit_ms = (extract(epoch FROM clock_timestamp()) * 1000)::bigint
			WHERE group_id = $1 RETURNING 1
		)
		SELECT pg_notify('silt_offsets', $2::text) FROM u`, id, metastore.OffsetsPartition(id))
	if err != nil {
		return fmt.Errorf("number group: %w", err)
	}
	return nil
}

// OffsetLog implements metastore.OffsetLogStore: offsets and groups of the
// partition merged in sequence order.
func (s *Store) OffsetLog(ctx context.Context, part int32, from, end int64, limit int, maxBytes int64) ([]metastore.OffsetLogEntry, error) {
	// The running total of the rows before each row decides: the first row
	// always (nothing before it), the others while the total is below
	// maxBytes. The sizes are metastore.OffsetLogEntrySize's, for a group
	// with its protocol names and members in place of topic and metadata.
	rows, err := s.pool.Query(ctx, `SELECT kind, seq, group_id, topic, partition, "offset", leader_epoch, metadata, commit_ms,
			generation, protocol_type, protocol, leader, state, members
		FROM (
			SELECT *, coalesce(sum(size) OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
			FROM (
				(SELECT 0 AS kind, seq, group_id, topic, partition, "offset", leader_epoch, metadata, commit_ms,
					0 AS generation, '' AS protocol_type, '' AS protocol, '' AS leader, '' AS state, NULL::text AS members,
					octet_length(group_id) + octet_length(topic) + octet_length(metadata) + $6 AS size
				FROM consumer_offsets WHERE part = $1 AND seq >= $2 AND seq < $3 ORDER BY seq LIMIT $4)
				UNION ALL
				(SELECT 1, seq, group_id, '', 0, 0, 0, '', commit_ms,
					generation, protocol_type, protocol, leader, state, members::text,
					octet_length(group_id) + octet_length(protocol_type) + octet_length(protocol) + octet_length(leader) + octet_length(members::text) + $6
				FROM consumer_groups WHERE part = $1 AND seq >= $2 AND seq < $3 ORDER BY seq LIMIT $4)
				ORDER BY seq LIMIT $4
			) AS page
		) AS r
		WHERE before < $5 ORDER BY seq`,
		part, from, end, limit, max(maxBytes, 1), metastore.OffsetLogEntrySize("", "", ""))
	if err != nil {
		return nil, fmt.Errorf("read offset log partition %d: %w", part, err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.OffsetLogEntry, error) {
		var e metastore.OffsetLogEntry
		var kind int
		var g metastore.Group
		var members *string
		err := r.Scan(&kind, &e.Seq, &e.Group, &e.Topic, &e.Partition, &e.Offset, &e.LeaderEpoch, &e.Metadata, &e.CommitTimeMs,
			&g.Generation, &g.ProtocolType, &g.Protocol, &g.Leader, &g.State, &members)
		if err != nil || kind == 0 {
			return e, err
		}
		g.ID = e.Group
		if members != nil {
			if err := json.Unmarshal([]byte(*members), &g.Members); err != nil {
				return e, fmt.Errorf("decode members of group %s: %w", g.ID, err)
			}
		}
		e.GroupMetadata = &g
		return e, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read offset log partition %d: %w", part, err)
	}
	return es, nil
}

// OffsetLogEnd implements metastore.OffsetLogStore.
func (s *Store) OffsetLogEnd(ctx context.Context, part int32) (int64, error) {
	var end int64
	if err := s.pool.QueryRow(ctx, `SELECT next_seq FROM consumer_offsets_log WHERE part = $1`, part).Scan(&end); err != nil {
		return 0, fmt.Errorf("read offset log end of partition %d: %w", part, err)
	}
	return end, nil
}
