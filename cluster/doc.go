// Package cluster owns membership and placement: which agents are alive, the
// membership epoch, and which agent leads a partition or coordinates a
// consumer group or transactional id.
//
// Membership registers this agent in the metastore, heartbeats, and rereads
// the live agents into a View. A View is immutable; placement is a pure
// function of it (rendezvous hashing), so every agent that sees the same
// view routes clients the same way. Leadership only routes clients and keeps
// caches warm: any agent serves any partition, and every coordinator state
// change is fenced in the metastore, so two agents that briefly disagree on
// placement cannot corrupt anything.
//
// This package knows nothing of Kafka requests, partitions' data or
// coordinators' state; it must not import agent, ingest, partition, group or
// txn.
package cluster
