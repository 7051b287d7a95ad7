package agent_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltstream/silt/internal/poll"
)

// TestShareGroupKgoConsumer: franz-go's own share consumer (kgo.ShareGroup)
// reads every record of a topic through a share group on Silt, its
// records accepted as it polls.
func TestShareGroupKgoConsumer(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, shareFetchOn(time.Minute, 5))
	cl := ta.client(t)
	createTopic(t, cl, "skgo", 3, nil)
	produceN(t, cl, "skgo", 3, 20, "k-")
	consumer := ta.client(t, kgo.ShareGroup("skgog"), kgo.ConsumeTopics("skgo"))
	seen := map[string]int{}
	poll.Until(t, "every record consumed", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		fs := consumer.PollFetches(ctx)
		fs.EachError(func(topic string, p int32, err error) {
			if err != context.DeadlineExceeded && !strings.Contains(err.Error(), "context deadline") {
				t.Logf("share consumer error on %s/%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
		return len(seen) == 60
	})
	for v, n := range seen {
		if n != 1 {
			t.Fatalf("record %s consumed %d times", v, n)
		}
	}
}
