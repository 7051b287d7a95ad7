package agent

// What the agent gives the consumer-group coordinator (package group), and
// how its handlers answer requests the coordinator parks.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/wire"
)

// partitionCount is the coordinator's view of topics: how many partitions
// one has, or an error wrapping metastore.ErrUnknownTopic.
func (a *Agent) partitionCount(ctx context.Context, topic string) (int, error) {
	t, err := a.topic(ctx, topic) // consumers of __consumer_offsets commit offsets too
	if err != nil {
		return 0, err
	}
	return len(t.Partitions), nil
}

// groupReply answers with resp, or, when the coordinator parked the
// request, with what parked delivers once the rebalance gets there.
func groupReply(resp kmsg.Response, parked <-chan kmsg.Response) wire.Reply {
	if parked == nil {
		return wire.Respond(resp)
	}
	return wire.Defer(func(ctx context.Context) kmsg.Response {
		select {
		case r := <-parked:
			return r
		case <-ctx.Done():
			return nil
		}
	})
}
