// Package txnrow is how both stores keep a metastore.Txn in their
// transactions table: the column list, the row scanner and the JSON text
// encoding of a transaction's lists. Only metastore/postgres and
// metastore/sqlite use it; the shape of the row is theirs, not the API's.
package txnrow

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/siltstream/silt/metastore"
)

// Columns are the columns of the stores' transactions table, in the order
// Scan reads them.
const Columns = `transactional_id, producer_id, epoch, state, timeout_ms, partitions, groups, offsets, started_at, updated_at`

// Scan reads one row of Columns (times in Unix milliseconds, lists as
// Lists). Scan errors, such as "no rows", are returned as they are.
func Scan(sc interface{ Scan(...any) error }) (metastore.Txn, error) {
	var (
		t                metastore.Txn
		l                Lists
		state            string
		started, updated int64
	)
	if err := sc.Scan(&t.TransactionalID, &t.ProducerID, &t.Epoch, &state, &t.TimeoutMs, &l.Partitions, &l.Groups, &l.Offsets, &started, &updated); err != nil {
		return t, err
	}
	t.State = metastore.TxnState(state)
	if started > 0 {
		t.StartedAt = time.UnixMilli(started)
	}
	t.UpdatedAt = time.UnixMilli(updated)
	return t, l.Decode(&t)
}

// Lists is how stores keep a Txn's lists: JSON text columns.
type Lists struct{ Partitions, Groups, Offsets string }

// EncodeLists encodes t's lists for a store.
func EncodeLists(t metastore.Txn) (Lists, error) {
	var l Lists
	for _, f := range []struct {
		v   any
		dst *string
	}{{t.Partitions, &l.Partitions}, {t.Groups, &l.Groups}, {t.Offsets, &l.Offsets}} {
		b, err := json.Marshal(f.v)
		if err != nil {
			return l, fmt.Errorf("encode transaction %s: %w", t.TransactionalID, err)
		}
		*f.dst = string(b)
	}
	return l, nil
}

// Decode fills t's lists.
func (l Lists) Decode(t *metastore.Txn) error {
	for _, f := range []struct {
		src string
		v   any
	}{{l.Partitions, &t.Partitions}, {l.Groups, &t.Groups}, {l.Offsets, &t.Offsets}} {
		if err := json.Unmarshal([]byte(f.src), f.v); err != nil {
			return fmt.Errorf("decode transaction %s: %w", t.TransactionalID, err)
		}
	}
	return nil
}
