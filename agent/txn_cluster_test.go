package agent_test

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTransactionsAcrossAgents: transactional ids coordinated by different
// agents of one cluster; producers bootstrap from one agent, consumers read
// from another, which learns the last stable offset and aborted
// transactions from the store after the other agents' commits.
func TestTransactionsAcrossAgents(t *testing.T) {
	t.Parallel()
	agents := startCluster(t, "", "", "")
	createTopic(t, agents[0].client(t), "xtxn", 3, nil)
	var committed []string
	for i := 0; i < 4; i++ {
		p := agents[0].client(t, kgo.TransactionalID(fmt.Sprintf("x-%d", i)), kgo.DefaultProduceTopic("xtxn"))
		var c, a []string
		for j := 0; j < 6; j++ {
			c = append(c, fmt.Sprintf("c-%d-%d", i, j))
			a = append(a, fmt.Sprintf("a-%d-%d", i, j))
		}
		transact(t, p, true, c...)
		transact(t, p, false, a...)
		committed = append(committed, c...)
	}
	got := consumeValues(t, agents[2], "xtxn", kgo.ReadCommitted(), len(committed))
	want := append([]string(nil), committed...)
	sortStrings(want)
	if !equal(got, want) {
		t.Fatalf("read_committed on another agent = %v, want %v", got, want)
	}
	if got := consumeValues(t, agents[1], "xtxn", kgo.ReadUncommitted(), 2*len(committed)); len(got) != 2*len(committed) {
		t.Fatalf("read_uncommitted = %d records, want %d", len(got), 2*len(committed))
	}
}
