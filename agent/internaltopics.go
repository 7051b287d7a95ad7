package agent

// Internal topics: __consumer_offsets and __transaction_state, listed in
// Metadata with IsInternal as Kafka lists them, each with Kafka's default
// 50 partitions (offsets.topic.num.partitions,
// transaction.state.log.num.partitions).
//
// They are not topics in the store. __consumer_offsets is served from the
// committed offsets and saved groups (group.OffsetLog): partition p holds
// the groups Kafka's hash puts there, offsets are the store's sequence
// numbers, and its log start offset is 0 as in a compacted Kafka topic. __transaction_state is
// listed and readable but always empty: transaction state lives in the
// store's own tables, not in a log clients read.
//
// As in Kafka: produce to them answers INVALID_TOPIC_EXCEPTION; creating
// them answers TOPIC_ALREADY_EXISTS (they always exist). Silt also refuses
// what would break them: deleting them (INVALID_TOPIC_EXCEPTION), adding
// partitions (INVALID_PARTITIONS: clients compute a group's partition from
// the count) and altering their configs (INVALID_REQUEST). Reads are
// authorized like any topic's: DESCRIBE to see them, READ to fetch.
//
// No name starting with "__" is ever auto-created: a client asking for
// __consumer_offsets before this existed got an ordinary empty topic under
// that name, which hid the committed offsets from lag monitors. A store
// topic with an internal name (auto-created by an older Silt) is shadowed
// by the internal one.

import (
	"context"
	"crypto/sha256"
	"strings"

	"github.com/siltstream/silt/group"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/partition"
)

const (
	consumerOffsetsTopic  = "__consumer_offsets"
	transactionStateTopic = "__transaction_state"
)

// internalTopic is one internal topic as handlers see it.
type internalTopic struct {
	topic *partition.Topic // its id, name, configs and partition numbering; never loaded from the store
	// end returns a partition's high watermark.
	end func(ctx context.Context, part int32) (int64, error)
	// read returns record batches of a partition in [from, end), at most
	// maxBytes beyond the first batch.
	read func(ctx context.Context, part int32, from, end, maxBytes int64) ([]byte, error)
	// watch and unwatch register a long poll's channel for a partition.
	watch, unwatch func(part int32, ch chan struct{})
	// byTime returns the first offset below end whose record's timestamp
	// is at least ts, or -1.
	byTime func(ctx context.Context, part int32, ts, end int64) (offset, timestamp int64, err error)
	// maxTime returns the first record below end with the largest
	// timestamp, or -1.
	maxTime func(ctx context.Context, part int32, end int64) (offset, timestamp int64, err error)
}

// internalTopics are the agent's internal topics, by name.
type internalTopics map[string]*internalTopic

func newInternalTopics(log *group.OffsetLog) internalTopics {
	empty := &internalTopic{
		topic: syntheticTopic(transactionStateTopic, 50, map[string]string{"cleanup.policy": "compact", "compression.type": "uncompressed"}),
		end:   func(context.Context, int32) (int64, error) { return 0, nil },
		read:  func(context.Context, int32, int64, int64, int64) ([]byte, error) { return nil, nil },
		watch: func(int32, chan struct{}) {}, unwatch: func(int32, chan struct{}) {},
		byTime:  func(context.Context, int32, int64, int64) (int64, int64, error) { return -1, -1, nil },
		maxTime: func(context.Context, int32, int64) (int64, int64, error) { return -1, -1, nil },
	}
	return internalTopics{
		consumerOffsetsTopic: {
			topic:   syntheticTopic(consumerOffsetsTopic, metastore.OffsetsTopicPartitions, map[string]string{"cleanup.policy": "compact", "compression.type": "producer"}),
			end:     log.End,
			read:    log.Read,
			watch:   log.Watch,
			unwatch: log.Unwatch,
			byTime:  log.FirstAtOrAfter,
			maxTime: log.MaxTimestamp,
		},
		transactionStateTopic: empty,
	}
}

// syntheticTopic builds the topic handlers describe. Its id is derived from
// the name, so every agent gives clients the same one.
func syntheticTopic(name string, partitions int32, config map[string]string) *partition.Topic {
	sum := sha256.Sum256([]byte("silt internal topic " + name))
	t := &partition.Topic{Name: name, Config: config}
	copy(t.ID[:], sum[:])
	for i := range partitions {
		t.Partitions = append(t.Partitions, &partition.Partition{
			TP: metastore.TopicPartition{Topic: t.ID, Partition: i}, TopicName: name, Index: i,
		})
	}
	return t
}

// byName returns the internal topic called name, or nil.
func (its internalTopics) byName(name string) *internalTopic { return its[name] }

// byID returns the internal topic with id, or nil.
func (its internalTopics) byID(id metastore.TopicID) *internalTopic {
	for _, it := range its {
		if it.topic.ID == id {
			return it
		}
	}
	return nil
}

// sorted lists the internal topics by name.
func (its internalTopics) sorted() []*internalTopic {
	return []*internalTopic{its[consumerOffsetsTopic], its[transactionStateTopic]}
}

// reservedTopicName says whether name is never auto-created: Kafka's
// internal topics and everything else starting with "__", which Kafka and
// its tools use for internal state.
func reservedTopicName(name string) bool { return strings.HasPrefix(name, "__") }

// topic returns a topic by name for handlers that describe topics: an
// internal one, or one from the cache (falling back to the store).
func (a *Agent) topic(ctx context.Context, name string) (*partition.Topic, error) {
	if it := a.internal.byName(name); it != nil {
		return it.topic, nil
	}
	return a.topics.Get(ctx, name)
}

// topicByID is topic by id.
func (a *Agent) topicByID(ctx context.Context, id metastore.TopicID) (*partition.Topic, error) {
	if it := a.internal.byID(id); it != nil {
		return it.topic, nil
	}
	return a.topics.GetByID(ctx, id)
}

// offsetsWatcher passes the store's reports of offset commits (any
// agent's) to the long polls on __consumer_offsets, and wakes them all
// whenever the watch (re)starts: commits made while not listening are
// only in the store, and a woken long poll reads again.
type offsetsWatcher struct {
	metastore.CommitWatcher
	log *group.OffsetLog
}

func (w offsetsWatcher) WatchCommits(ctx context.Context, h metastore.CommitHandler) error {
	ready := h.Ready
	h.Ready = func(seq int64) error {
		w.log.CommittedAll()
		if ready != nil {
			return ready(seq)
		}
		return nil
	}
	h.OffsetsCommitted = w.log.CommittedPartition
	return w.CommitWatcher.WatchCommits(ctx, h)
}

// offsetCommitSignal is the store as the group and transaction
// coordinators write offsets through it: each successful write wakes the
// long polls on the group's partition of __consumer_offsets.
type offsetCommitSignal struct {
	metastore.Store
	log *group.OffsetLog
}

func (s offsetCommitSignal) CommitOffsets(ctx context.Context, g string, offsets []metastore.CommittedOffset) error {
	err := s.Store.CommitOffsets(ctx, g, offsets)
	if err == nil && len(offsets) > 0 {
		s.log.Committed(g)
	}
	return err
}

// PutTxn: the put that completes a commit applies the transaction's
// offsets (metastore.TxnStore.PutTxn).
func (s offsetCommitSignal) PutTxn(ctx context.Context, t metastore.Txn, prev *metastore.Txn) error {
	err := s.Store.PutTxn(ctx, t, prev)
	if err == nil {
		for _, g := range metastore.OffsetsCommittedBy(t, prev) {
			s.log.Committed(g.Group)
		}
	}
	return err
}

func (s offsetCommitSignal) CommitGroupOffsets(ctx context.Context, g string, epoch int64, generation int32, memberID string, offsets []metastore.CommittedOffset) error {
	err := s.Store.CommitGroupOffsets(ctx, g, epoch, generation, memberID, offsets)
	if err == nil && len(offsets) > 0 {
		s.log.Committed(g)
	}
	return err
}
