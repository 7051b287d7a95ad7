package sqlite

import (
	"context"
	"fmt"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
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
