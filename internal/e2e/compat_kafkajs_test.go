package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/siltstream/silt/internal/testenv"
)

// kafkajsDir is where testdata/kafkajs/package-lock.json pins kafkajs and
// its codec plugins; npm ci installs them into its node_modules
// (git-ignored).
const kafkajsDir = "testdata/kafkajs"

// kafkajsInstalled returns the node binary once kafkajsDir/node_modules
// holds what package-lock.json pins, running `npm ci` when it does not (a
// fresh clone, or a changed lock file). A stamp with the lock file's hash
// marks a finished install, so later runs reuse it; an flock on the lock
// file keeps two test processes from installing at once.
func kafkajsInstalled(t *testing.T) string {
	t.Helper()
	node, nerr := exec.LookPath("node")
	npm, perr := exec.LookPath("npm")
	if nerr != nil || perr != nil {
		msg := fmt.Sprintf("node and npm are needed for kafkajs (apt-get install nodejs npm): node: %v, npm: %v", nerr, perr)
		if testenv.RequireServices() {
			t.Fatal(msg)
		}
		t.Skip("SKIPPING: " + msg)
	}
	lockPath := filepath.Join(kafkajsDir, "package-lock.json")
	lock, err := os.ReadFile(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(kafkajsDir, "node_modules", ".silt-installed")

	f, err := os.Open(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("lock %s: %v", lockPath, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing unlocks too

	if got, err := os.ReadFile(stamp); err == nil && string(got) == want {
		return node
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// --ignore-scripts: everything pinned is plain JavaScript or
	// WebAssembly; nothing needs building.
	cmd := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund")
	cmd.Dir = kafkajsDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s (installs kafkajs from the npm registry): %v\n%s", kafkajsDir, err, out)
	}
	if err := os.WriteFile(stamp, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	return node
}

// runKafkaJS runs one step of testdata/kafkajs/matrix.js.
func runKafkaJS(t *testing.T, node string, c *siltCluster, args ...string) []map[string]json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"matrix.js", strings.Join(c.addrs, ",")}, args...)...)
	cmd.Dir = kafkajsDir
	return runMatrixScript(t, cmd)
}

// TestKafkaJS: kafkajs 2.2.4 (npm) against three agents on Postgres and
// MinIO: produce with every codec and consume in a group (content checked
// record by record, and read again by franz-go, which sees kafkajs' codec
// on every batch); a group whose second member joins and leaves while
// records flow, each record consumed exactly once; the admin client; and
// transactions with commit, abort and sendOffsets under read_committed.
func TestKafkaJS(t *testing.T) {
	node := kafkajsInstalled(t)
	c := startSiltCluster(t, 3)
	for _, codec := range matrixCodecs {
		t.Run("produce/"+codec.name, func(t *testing.T) {
			checkProduce(t, c, runKafkaJS(t, node, c, "produce", codec.name), "kafkajs-"+codec.name, codec.attr)
		})
	}
	t.Run("group", func(t *testing.T) {
		checkGroup(t, c, runKafkaJS(t, node, c, "group"), "kafkajs-group")
	})
	t.Run("admin", func(t *testing.T) {
		want := matrixAdmin()
		// kafkajs' fetchOffsets asks for every partition of the topic; those
		// without a commit answer -1. It deletes groups too.
		want["fetch_offsets"] = "[[0,-1],[1,2],[2,-1],[3,1]]"
		want["listed_group_after_delete"] = "false"
		checkAdmin(t, runKafkaJS(t, node, c, "admin"), want)
	})
	t.Run("txn", func(t *testing.T) {
		checkTxn(t, c, runKafkaJS(t, node, c, "txn"), "kafkajs-txn", "kafkajs-txn-in", "kafkajs-txn-group")
	})
}
