package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/siltstream/silt/metastore/internal/claimrow"
)

// claim moves id's coordinator epoch forward and returns it.
func (s *Store) claim(ctx context.Context, t claimrow.Table, id string) (int64, error) {
	var epoch int64
	if err := s.write.QueryRowContext(ctx, t.Claim("?"), id).Scan(&epoch); err != nil {
		return 0, t.ClaimFailed(id, err)
	}
	return epoch, nil
}

// checkClaim refuses, inside tx (writes are serialized), a write from
// coordinator epoch epoch (0: unfenced) once id has been claimed again.
func checkClaim(ctx context.Context, tx *sql.Tx, t claimrow.Table, id string, epoch int64) error {
	if epoch <= 0 {
		return nil
	}
	var stored int64
	err := tx.QueryRowContext(ctx, t.Epoch("?"), id).Scan(&stored)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	return t.Check(id, epoch, stored)
}
