package agent_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/agent"
)

// TestInitProducerIDTransactionTimeout: as in Kafka, a transactional
// producer's timeout must be positive and at most transaction.max.timeout.ms;
// otherwise INVALID_TRANSACTION_TIMEOUT, and no producer id. An idempotent
// producer's timeout is not checked.
func TestInitProducerIDTransactionTimeout(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, func(c *agent.Config) { c.TxnMaxTimeout = 90 * time.Second })
	for _, tc := range []struct {
		txnID   *string
		timeout int32
		code    int16
	}{
		{kmsg.StringPtr("tx-long"), 90001, kerr.InvalidTransactionTimeout.Code},
		{kmsg.StringPtr("tx-zero"), 0, kerr.InvalidTransactionTimeout.Code},
		{kmsg.StringPtr("tx-negative"), -1, kerr.InvalidTransactionTimeout.Code},
		{kmsg.StringPtr("tx-max"), 90000, 0},
		{nil, 1 << 30, 0},
	} {
		for _, v := range []int16{0, 5} {
			req := kmsg.NewPtrInitProducerIDRequest()
			req.SetVersion(v)
			req.TransactionalID, req.TransactionTimeoutMillis = tc.txnID, tc.timeout
			resp := kmsg.NewPtrInitProducerIDResponse()
			resp.SetVersion(v)
			rawRequest(t, ta.addr, req, resp)
			if resp.ErrorCode != tc.code {
				t.Fatalf("v%d txn id %v timeout %d: %v, want %v", v, tc.txnID, tc.timeout, kerr.ErrorForCode(resp.ErrorCode), kerr.ErrorForCode(tc.code))
			}
			if (resp.ProducerID >= 0) != (tc.code == 0) {
				t.Fatalf("v%d txn id %v timeout %d: producer id %d with %v", v, tc.txnID, tc.timeout, resp.ProducerID, kerr.ErrorForCode(resp.ErrorCode))
			}
		}
	}
}
