package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/siltstream/silt/internal/testenv"
)

// TestSIGKILLOnMinIOAndPostgres: an agent on MinIO + Postgres is killed with
// SIGKILL in the middle of a load and restarted; every record whose produce
// was acknowledged is read back, and no index row points at a missing
// object.
func TestSIGKILLOnMinIOAndPostgres(t *testing.T) {
	mio := testenv.MinIO(t)
	pg := testenv.Postgres(t)
	bucketName, bucketURL := mio.NewBucket(t)
	dbURL := pg.NewDatabase(t)
	env := append(mio.Env(), "SILT_BUCKET_URL="+bucketURL, "SILT_METASTORE_URL="+dbURL)

	addr := freeAddr(t)
	p := startSilt(t, addr, env, "agent", "--agent-id", "killme")
	const partitions = 16
	createTopic(t, addr, "survive", partitions)

	// Produce in the background; kill the agent once a good part is acked.
	var ack acked
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loadDone := make(chan int64, 1)
	go func() { loadDone <- produceLoad(ctx, addr, "survive", partitions, 60000, &ack) }()
	deadline := time.Now().Add(2 * time.Minute)
	for ack.n.Load() < 15000 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d records acknowledged after 2 minutes\n%s", ack.n.Load(), p.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.kill()
	killedAt := ack.n.Load()
	p.start() // same address and id: the producer's retries reach the new process
	failed := <-loadDone
	t.Logf("acknowledged %d records (%d when killed), %d failed", ack.n.Load(), killedAt, failed)

	checkAllAcked(t, &ack, consumeAll(t, addr, "survive"))
	p.stop()

	checkIndexObjectsExist(t, mio, bucketName, dbURL)
}
