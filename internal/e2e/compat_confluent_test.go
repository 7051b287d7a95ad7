package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// confluentPython returns a python3 that imports confluent-kafka.
func confluentPython(t *testing.T) string {
	t.Helper()
	return pythonWith(t, "confluent_kafka", "confluent-kafka", "python3-confluent-kafka")
}

// runConfluent runs one step of testdata/confluent_kafka_matrix.py.
func runConfluent(t *testing.T, py string, c *siltCluster, args ...string) []map[string]json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, append([]string{"testdata/confluent_kafka_matrix.py", strings.Join(c.addrs, ",")}, args...)...)
	return runMatrixScript(t, cmd)
}

// TestConfluentKafkaPython: confluent-kafka-python 1.7.0 (Debian's
// python3-confluent-kafka, on librdkafka) against three agents on Postgres
// and MinIO, held to the same checks as kafkajs (compat_matrix_test.go):
// produce with every codec and consume in a group, a group whose second
// member joins and leaves, the AdminClient, and transactions with
// send_offsets_to_transaction under read_committed.
func TestConfluentKafkaPython(t *testing.T) {
	py := confluentPython(t)
	c := startSiltCluster(t, 3)
	for _, codec := range matrixCodecs {
		t.Run("produce/"+codec.name, func(t *testing.T) {
			checkProduce(t, c, runConfluent(t, py, c, "produce", codec.name), "confluent-"+codec.name, codec.attr)
		})
	}
	t.Run("group", func(t *testing.T) {
		checkGroup(t, c, runConfluent(t, py, c, "group"), "confluent-group")
	})
	t.Run("admin", func(t *testing.T) {
		want := matrixAdmin()
		// librdkafka's committed() answers every partition asked for;
		// those without a commit answer OFFSET_INVALID (-1001).
		want["fetch_offsets"] = "[[0,-1001],[1,2],[2,-1001],[3,1]]"
		checkAdmin(t, runConfluent(t, py, c, "admin"), want)
	})
	t.Run("txn", func(t *testing.T) {
		checkTxn(t, c, runConfluent(t, py, c, "txn"), "confluent-txn", "confluent-txn-in", "confluent-txn-group")
	})
}
