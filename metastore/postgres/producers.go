package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/siltstream/silt/metastore"
)

// ExpireProducers implements metastore.Store.
func (s *Store) ExpireProducers(ctx context.Context, olderThan time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, "DELETE FROM producer_state WHERE updated_at < $1", olderThan)
	if err != nil {
		return 0, fmt.Errorf("expire producers: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// AllocateProducerID implements metastore.Store.
func (s *Store) AllocateProducerID(ctx context.Context) (int64, error) {
	var id int64
	if err := s.pool.QueryRow(ctx, "SELECT nextval('producer_ids')").Scan(&id); err != nil {
		return 0, fmt.Errorf("allocate producer id: %w", err)
	}
	return id, nil
}

// PartitionProducers implements metastore.Store.
func (s *Store) PartitionProducers(ctx context.Context, tp metastore.TopicPartition) ([]metastore.PartitionProducer, error) {
	rows, err := s.pool.Query(ctx, `SELECT coalesce(ps.producer_id, o.producer_id),
			coalesce(ps.epoch, -1),
			coalesce(ps.recent_last[cardinality(ps.recent_last)], -1),
			coalesce((extract(epoch FROM ps.updated_at) * 1000)::bigint, -1),
			coalesce(o.first_offset, -1)
		FROM (SELECT * FROM producer_state WHERE topic_id = $1 AND partition = $2) ps
		FULL JOIN (SELECT * FROM ongoing_txns WHERE topic_id = $1 AND partition = $2) o
			ON ps.producer_id = o.producer_id
		ORDER BY 1`, uuidArg(tp.Topic), tp.Partition)
	if err != nil {
		return nil, fmt.Errorf("producers of %x/%d: %w", tp.Topic[:], tp.Partition, err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.PartitionProducer, error) {
		var p metastore.PartitionProducer
		err := r.Scan(&p.ProducerID, &p.ProducerEpoch, &p.LastSequence, &p.LastTimestamp, &p.TxnStartOffset)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("producers of %x/%d: %w", tp.Topic[:], tp.Partition, err)
	}
	return ps, nil
}
