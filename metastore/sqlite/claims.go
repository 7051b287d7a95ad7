package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/siltstream/silt/metastore"
)

// claims is a table of coordinator epochs (ClaimGroup, ClaimTxn): one row
// per group or transactional id, moved forward by each agent that takes it
// over.
type claims struct{ table, key, what string }

var (
	groupClaims = claims{"group_coordinators", "group_id", "group"}
	txnClaims   = claims{"txn_coordinators", "transactional_id", "transactional id"}
)

// claim moves id's coordinator epoch forward and returns it.
func (s *Store) claim(ctx context.Context, c claims, id string) (int64, error) {
	var epoch int64
	err := s.write.QueryRowContext(ctx, `INSERT INTO `+c.table+` (`+c.key+`, epoch) VALUES (?, 1)
		ON CONFLICT (`+c.key+`) DO UPDATE SET epoch = `+c.table+`.epoch + 1
		RETURNING epoch`, id).Scan(&epoch)
	if err != nil {
		return 0, fmt.Errorf("claim %s %s: %w", c.what, id, err)
	}
	return epoch, nil
}

// checkClaim refuses, inside tx (writes are serialized), a write from
// coordinator epoch epoch (0: unfenced) once id has been claimed again.
func checkClaim(ctx context.Context, tx *sql.Tx, c claims, id string, epoch int64) error {
	if epoch <= 0 {
		return nil
	}
	var stored int64
	err := tx.QueryRowContext(ctx, `SELECT epoch FROM `+c.table+` WHERE `+c.key+` = ?`, id).Scan(&stored)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if stored != epoch {
		return fmt.Errorf("coordinator epoch %d, %s %s is at %d: %w", epoch, c.what, id, stored, metastore.ErrCoordinatorMoved)
	}
	return nil
}
