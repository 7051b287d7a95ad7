// Package claimrow is how both stores keep coordinator claims (ClaimGroup,
// ClaimTxn): the tables, their statements and the error of a refused
// write. Only metastore/postgres and metastore/sqlite use it; each passes
// its own placeholder for the id.
package claimrow

import (
	"fmt"

	"github.com/siltstream/silt/metastore"
)

// Table is a table of coordinator epochs: one row per group or
// transactional id, moved forward by each agent that takes it over.
type Table struct{ name, key, what string }

var (
	Groups = Table{"group_coordinators", "group_id", "group"}
	Txns   = Table{"txn_coordinators", "transactional_id", "transactional id"}
)

// Claim is the statement that moves the id's epoch forward and returns
// it; arg is the store's placeholder for the id.
func (t Table) Claim(arg string) string {
	return `INSERT INTO ` + t.name + ` (` + t.key + `, epoch) VALUES (` + arg + `, 1)
		ON CONFLICT (` + t.key + `) DO UPDATE SET epoch = ` + t.name + `.epoch + 1
		RETURNING epoch`
}

// Epoch is the statement that reads the id's epoch.
func (t Table) Epoch(arg string) string {
	return `SELECT epoch FROM ` + t.name + ` WHERE ` + t.key + ` = ` + arg
}

// ClaimFailed wraps the error of a failed claim of id.
func (t Table) ClaimFailed(id string, err error) error {
	return fmt.Errorf("claim %s %s: %w", t.what, id, err)
}

// Check refuses a write from coordinator epoch epoch (0: unfenced) when
// the id's stored epoch (0: never claimed) is another.
func (t Table) Check(id string, epoch, stored int64) error {
	if epoch <= 0 || stored == epoch {
		return nil
	}
	return fmt.Errorf("coordinator epoch %d, %s %s is at %d: %w", epoch, t.what, id, stored, metastore.ErrCoordinatorMoved)
}
