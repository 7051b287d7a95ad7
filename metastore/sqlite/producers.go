package sqlite

import (
	"context"
	"fmt"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/siltstream/silt/metastore"
)

// AllocateProducerID implements metastore.Store.
func (s *Store) AllocateProducerID(ctx context.Context) (int64, error) {
	var id int64
	if err := s.write.QueryRowContext(ctx, "UPDATE producer_ids SET next = next + 1 RETURNING next - 1").Scan(&id); err != nil {
		return 0, fmt.Errorf("allocate producer id: %w", err)
	}
	return id, nil
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

// PartitionProducers implements metastore.Store. recent is a JSON array,
// oldest first; SQLite has FULL JOIN only lately, so open transactions of
// producers without state here are added by a second SELECT.
func (s *Store) PartitionProducers(ctx context.Context, tp metastore.TopicPartition) ([]metastore.PartitionProducer, error) {
	id := tp.Topic[:]
	rows, err := s.read.QueryContext(ctx, `SELECT ps.producer_id, ps.epoch,
			coalesce(json_extract(ps.recent, '$[#-1].LastSeq'), -1), ps.updated_at / 1000000,
			coalesce(o.first_offset, -1)
		FROM producer_state ps
		LEFT JOIN ongoing_txns o ON o.topic_id = ps.topic_id AND o.partition = ps.partition AND o.producer_id = ps.producer_id
		WHERE ps.topic_id = ? AND ps.partition = ?
		UNION ALL
		SELECT o.producer_id, -1, -1, -1, o.first_offset FROM ongoing_txns o
		WHERE o.topic_id = ? AND o.partition = ? AND NOT EXISTS (SELECT 1 FROM producer_state ps
			WHERE ps.topic_id = o.topic_id AND ps.partition = o.partition AND ps.producer_id = o.producer_id)
		ORDER BY 1`, id, tp.Partition, id, tp.Partition)
	if err != nil {
		return nil, fmt.Errorf("producers of %x/%d: %w", tp.Topic[:], tp.Partition, err)
	}
	defer rows.Close()
	var out []metastore.PartitionProducer
	for rows.Next() {
		var p metastore.PartitionProducer
		if err := rows.Scan(&p.ProducerID, &p.ProducerEpoch, &p.LastSequence, &p.LastTimestamp, &p.TxnStartOffset); err != nil {
			return nil, fmt.Errorf("producers of %x/%d: %w", tp.Topic[:], tp.Partition, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("producers of %x/%d: %w", tp.Topic[:], tp.Partition, err)
	}
	return out, nil
}
