package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/siltstream/silt/metastore/internal/claimrow"
)

// claim moves id's coordinator epoch forward and returns it.
func (s *Store) claim(ctx context.Context, t claimrow.Table, id string) (int64, error) {
	var epoch int64
	if err := s.pool.QueryRow(ctx, t.Claim("$1"), id).Scan(&epoch); err != nil {
		return 0, t.ClaimFailed(id, err)
	}
	return epoch, nil
}

// checkClaim refuses, inside tx, a write from coordinator epoch epoch (0:
// unfenced) once id has been claimed again. The share lock holds a
// concurrent claim until tx ends, so a claim and a write are ordered one
// way or the other, never interleaved.
func checkClaim(ctx context.Context, tx pgx.Tx, t claimrow.Table, id string, epoch int64) error {
	if epoch <= 0 {
		return nil
	}
	var stored int64
	err := tx.QueryRow(ctx, t.Epoch("$1")+" FOR SHARE", id).Scan(&stored)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	return t.Check(id, epoch, stored)
}
