// Package quota is Kafka's client quotas: which quota keys exist, how an
// alteration is validated, how DescribeClientQuotas filters match, which
// configured entity applies to a (user, client id) pair, and the rate
// sensors that turn recorded bytes or handling time into a throttle time.
//
// The main type is Enforcer: it keeps the stored quotas (metastore
// QuotaStore) in memory, rates per (user, client id) and per IP (for
// connection_creation_rate), reloading them on a change notification and on
// an interval, and answers Record calls from the request handlers.
//
// Quotas are per agent, as Kafka's are per broker: each agent measures and
// limits the traffic it serves itself, with no coordination between
// agents. A client that spreads its requests over N agents may so use up
// to N times its quota, as a Kafka client spread over N brokers may; in
// practice a producer or consumer talks to the leaders of its partitions,
// which placement spreads over the agents, so the cluster-wide rate of a
// client is bounded by its quota times the number of agents it reaches.
//
// The package knows nothing of the wire protocol; agent maps requests and
// responses onto it, and wire applies the throttles (KIP-219).
package quota
