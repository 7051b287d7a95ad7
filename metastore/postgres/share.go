package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/internal/sharerow"
)

// updateShare runs fn on a share partition inside one transaction that
// holds its row locked, and stores what fn leaves if it changed. With
// initial set, a missing share partition is created at that SPSO first;
// otherwise fn sees exists=false and nothing is stored.
func (s *Store) updateShare(ctx context.Context, key metastore.SharePartitionKey, initial *int64, fn func(st *metastore.SharePartitionState, exists bool)) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if initial != nil {
			if _, err := tx.Exec(ctx, `INSERT INTO share_partitions (group_id, topic_id, partition, start_offset)
				VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, key.Group, uuidArg(key.Topic), key.Partition, *initial); err != nil {
				return err
			}
		}
		st := metastore.SharePartitionState{Key: key}
		var batches string
		err := tx.QueryRow(ctx, `SELECT start_offset, batches FROM share_partitions
			WHERE group_id = $1 AND topic_id = $2 AND partition = $3 FOR UPDATE`,
			key.Group, uuidArg(key.Topic), key.Partition).Scan(&st.StartOffset, &batches)
		if errors.Is(err, pgx.ErrNoRows) {
			fn(&st, false)
			return nil
		}
		if err != nil {
			return err
		}
		if st.Batches, err = sharerow.Decode(batches); err != nil {
			return err
		}
		start := st.StartOffset
		fn(&st, true)
		after := sharerow.Encode(st.Batches)
		if after == batches && start == st.StartOffset {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE share_partitions SET start_offset = $4, batches = $5, updated_at = now()
			WHERE group_id = $1 AND topic_id = $2 AND partition = $3`,
			key.Group, uuidArg(key.Topic), key.Partition, st.StartOffset, after)
		return err
	})
}

// AcquireShareRecords implements metastore.ShareStore.
func (s *Store) AcquireShareRecords(ctx context.Context, key metastore.SharePartitionKey, req metastore.ShareAcquire) ([]metastore.AcquiredRange, metastore.SharePartitionState, error) {
	var got []metastore.AcquiredRange
	var out metastore.SharePartitionState
	err := s.updateShare(ctx, key, &req.InitialOffset, func(st *metastore.SharePartitionState, _ bool) {
		got = st.Acquire(req)
		out = *st
	})
	if err != nil {
		return nil, out, fmt.Errorf("acquire share records of %s: %w", key.Group, err)
	}
	return got, out, nil
}

// AcknowledgeShareRecords implements metastore.ShareStore.
func (s *Store) AcknowledgeShareRecords(ctx context.Context, key metastore.SharePartitionKey, req metastore.ShareAcknowledge) ([]error, error) {
	var errs []error
	err := s.updateShare(ctx, key, nil, func(st *metastore.SharePartitionState, exists bool) {
		if !exists {
			errs = make([]error, len(req.Batches))
			for i := range errs {
				errs[i] = metastore.ErrInvalidRecordState
			}
			return
		}
		errs = st.Acknowledge(req)
	})
	if err != nil {
		return nil, fmt.Errorf("acknowledge share records of %s: %w", key.Group, err)
	}
	return errs, nil
}

// ReleaseShareRecords implements metastore.ShareStore.
func (s *Store) ReleaseShareRecords(ctx context.Context, group, member string, nowMs int64, deliveryLimit int16) error {
	parts, err := s.SharePartitions(ctx, group)
	if err != nil {
		return err
	}
	for _, p := range parts {
		err := s.updateShare(ctx, p.Key, nil, func(st *metastore.SharePartitionState, exists bool) {
			if exists {
				st.ReleaseMember(member, nowMs, deliveryLimit)
			}
		})
		if err != nil {
			return fmt.Errorf("release share records of %s member %s: %w", group, member, err)
		}
	}
	return nil
}

// SharePartitions implements metastore.ShareStore.
func (s *Store) SharePartitions(ctx context.Context, group string) ([]metastore.SharePartitionState, error) {
	rows, err := s.pool.Query(ctx, `SELECT topic_id, partition, start_offset, batches FROM share_partitions
		WHERE group_id = $1 ORDER BY topic_id, partition`, group)
	if err != nil {
		return nil, fmt.Errorf("list share partitions of %s: %w", group, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (metastore.SharePartitionState, error) {
		st := metastore.SharePartitionState{Key: metastore.SharePartitionKey{Group: group}}
		var id pgtype.UUID
		var batches string
		if err := r.Scan(&id, &st.Key.Partition, &st.StartOffset, &batches); err != nil {
			return st, err
		}
		st.Key.Topic = id.Bytes
		var err error
		st.Batches, err = sharerow.Decode(batches)
		return st, err
	})
	if err != nil {
		return nil, fmt.Errorf("list share partitions of %s: %w", group, err)
	}
	return out, nil
}

// SetShareStartOffset implements metastore.ShareStore.
func (s *Store) SetShareStartOffset(ctx context.Context, key metastore.SharePartitionKey, offset int64) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO share_partitions (group_id, topic_id, partition, start_offset)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (group_id, topic_id, partition) DO UPDATE SET start_offset = $4, batches = '[]', updated_at = now()`,
		key.Group, uuidArg(key.Topic), key.Partition, offset)
	if err != nil {
		return fmt.Errorf("set share start offset of %s: %w", key.Group, err)
	}
	return nil
}

// DeleteSharePartitions implements metastore.ShareStore.
func (s *Store) DeleteSharePartitions(ctx context.Context, group string, keys []metastore.SharePartitionKey) error {
	var err error
	if keys == nil {
		_, err = s.pool.Exec(ctx, `DELETE FROM share_partitions WHERE group_id = $1`, group)
	} else {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			for _, k := range keys {
				if _, err := tx.Exec(ctx, `DELETE FROM share_partitions WHERE group_id = $1 AND topic_id = $2 AND partition = $3`,
					group, uuidArg(k.Topic), k.Partition); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("delete share partitions of %s: %w", group, err)
	}
	return nil
}

// GroupConfig implements metastore.GroupConfigStore.
func (s *Store) GroupConfig(ctx context.Context, group string) (map[string]string, error) {
	var enc string
	err := s.pool.QueryRow(ctx, `SELECT configs FROM group_configs WHERE group_id = $1`, group).Scan(&enc)
	if errors.Is(err, pgx.ErrNoRows) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load configs of group %s: %w", group, err)
	}
	return sharerow.DecodeConfig(enc)
}

// SetGroupConfig implements metastore.GroupConfigStore: the row is
// created if need be and locked, compared, then written.
func (s *Store) SetGroupConfig(ctx context.Context, group string, next, prev map[string]string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO group_configs (group_id) VALUES ($1) ON CONFLICT DO NOTHING`, group); err != nil {
			return err
		}
		var stored string
		if err := tx.QueryRow(ctx, `SELECT configs FROM group_configs WHERE group_id = $1 FOR UPDATE`, group).Scan(&stored); err != nil {
			return err
		}
		if stored != sharerow.EncodeConfig(prev) {
			return metastore.ErrConfigChanged
		}
		_, err := tx.Exec(ctx, `UPDATE group_configs SET configs = $2 WHERE group_id = $1`, group, sharerow.EncodeConfig(next))
		return err
	})
	if err != nil {
		return fmt.Errorf("set configs of group %s: %w", group, err)
	}
	return nil
}
