// Package txn is the transaction coordinator. Transactional ids are placed
// on live agents like groups (cluster placement); every state change is a
// compare-and-set in the metastore (metastore.TxnStore.PutTxn), so two
// agents that both believe they coordinate an id cannot both move it, and
// fenced by the id's coordinator epoch: an agent claims an id before its
// first change to it (ClaimTxn), so a request a deposed coordinator still
// had in hand, such as an EndTxn of the previous transaction, cannot end
// the transaction its successor runs (same producer id and epoch before
// KIP-890) and is answered NOT_COORDINATOR.
//
// Ending a transaction first saves PrepareCommit/PrepareAbort, then writes a
// marker to every partition of the transaction through the write pipeline
// and waits for it, then saves CompleteCommit/CompleteAbort; the save of
// CompleteCommit applies the pending group offsets in the same store
// transaction, so only the coordinator whose save wins applies them. A coordinator that dies between the two
// saves leaves a Prepare* state, which the next coordinator finishes
// (markers are idempotent: one for a partition with no open transaction
// changes nothing). The store ties each marker to the transaction it ends:
// it takes one only while that transaction is in a state that writes it
// (metastore.MarkerStates), so a deposed coordinator's late marker is
// refused (metastore.ErrStaleMarker) and changes nothing. Ongoing
// transactions older than their timeout are aborted with a bumped epoch,
// which fences the producer.
//
// The coordinator never touches partition data itself: markers go through
// the write pipeline (Markers, an ingest.Pipeline), and topic names are
// resolved by the agent's cache (Topics). It must not import agent,
// partition or group; the agent's handlers decode requests and call it.
package txn
