package metastore

import "context"

// Membership is the set of live agents and its epoch.
type Membership struct {
	Agents []Agent // ordered by id
	// Epoch moves forward whenever the set of live agents changes. Agents
	// use it as every partition's leader epoch.
	Epoch int64
}

// CommitWatcher is implemented by stores that can tell an agent about
// flushes other agents commit (postgres, through LISTEN/NOTIFY). A
// single-node store does not need it.
type CommitWatcher interface {
	// WatchCommits calls fn(agentID, segmentKey) for every flush committed
	// from now on, by any agent, until ctx ends or the connection fails. It
	// calls ready once it is listening. Commits made while it was not
	// listening are not reported: after it returns, the caller must assume
	// it missed some.
	WatchCommits(ctx context.Context, ready func(), fn func(agentID, segmentKey string)) error
}
