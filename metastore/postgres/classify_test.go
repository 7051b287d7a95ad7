package postgres

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/siltstream/silt/metastore"
)

func TestPermanentIfRejected(t *testing.T) {
	for code, want := range map[string]bool{
		"23505": true,  // unique violation
		"22003": true,  // numeric value out of range
		"42883": true,  // undefined function: schema mismatch
		"40001": false, // serialization failure: retry
		"40P01": false, // deadlock: retry
		"57P01": false, // admin shutdown: retry
		"08006": false, // connection failure: retry
	} {
		err := permanentIfRejected(fmt.Errorf("commit flush k: %w", &pgconn.PgError{Code: code}))
		if got := metastore.IsPermanent(err); got != want {
			t.Errorf("SQLSTATE %s: permanent %v, want %v", code, got, want)
		}
	}
	if metastore.IsPermanent(permanentIfRejected(errors.New("connection reset by peer"))) {
		t.Error("a network error is permanent")
	}
}
