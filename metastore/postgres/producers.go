package postgres

import (
	"context"
	"fmt"
	"time"
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
