// Package cluster owns membership and placement: which agents are alive, the
// membership epoch, and which agent leads a partition or coordinates a
// consumer group or transactional id.
//
// Membership registers this agent in the metastore, heartbeats, and rereads
// the live agents into a View. A View is immutable; placement is a pure
// function of it (rendezvous hashing), so every agent that sees the same
// view routes clients the same way. Views only move forward (by the
// store's epoch). Leadership only routes clients and keeps caches warm:
// any agent serves any partition, and every coordinator state change is
// fenced in the metastore, so two agents that briefly disagree on
// placement cannot corrupt anything.
//
// Placement follows the store's epoch, not a cached view: an agent rereads
// the membership (Refresh) before it takes a coordinator role over, so it
// never takes a group on a view the store has moved past. Between
// heartbeats an agent that lost a group may still believe it coordinates
// it; the coordinators fence that in the store and answer NOT_COORDINATOR
// when their memory turns out to be behind it (see package group), so a
// membership change moves coordinators with no client-visible error but
// NOT_COORDINATOR.
//
// This package knows nothing of Kafka requests, partitions' data or
// coordinators' state; it must not import agent, ingest, partition, group or
// txn.
package cluster
