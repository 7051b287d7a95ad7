package metastore

import (
	"context"
	"time"
)

// Store is everything the agents keep in the metadata store. The postgres
// store serves clusters; the sqlite store serves the embedded single-node
// default. Both pass the conformance suite in metastoretest.
//
// Store is the union of role interfaces. Packages above the metastore take
// only the roles they use (the write pipeline a LogStore and an
// UploadStore, the group coordinator a GroupStore, ...), declared as a
// narrow interface in the package that needs it.
//
// Contract, for all implementations:
//   - Every method is safe for concurrent use, by many goroutines and (for
//     postgres) many agent processes.
//   - Sentinel errors (ErrTopicExists, ErrUnknownTopic, ...) are returned
//     wrapped; test them with errors.Is. *UnknownPartitionsError is tested
//     with errors.As.
//   - CommitFlush is one transaction: either everything in the flush is
//     recorded, or nothing is.
type Store interface {
	TopicStore
	LogStore
	UploadStore
	ProducerStore
	GroupStore
	OffsetStore
	OffsetLogStore
	TxnStore
	RetentionStore
	GCStore
	CompactionStore
	LeaseStore
	ClusterStore
	CredentialStore
	ACLStore
	QuotaStore
	ShareStore
	GroupConfigStore

	// SchemaVersion is the version of the newest migration applied.
	SchemaVersion(ctx context.Context) (int, error)
	// Close releases connections.
	Close() error
}

// TopicStore keeps topics, their configs and their partitions' offsets.
type TopicStore interface {
	// CreateTopic creates a topic with spec.Partitions partitions, all with
	// high watermark and log start offset 0. A zero spec.ID is replaced by a
	// random one. An existing name gives ErrTopicExists; the name of a
	// deleted topic whose deletion some live agent has not acknowledged
	// yet gives ErrTopicDeletionPending (after waiting a few seconds for
	// the acknowledgements; see CommitWatcher).
	CreateTopic(ctx context.Context, spec TopicSpec) (Topic, error)
	// DeleteTopic removes, in one transaction, a topic, its partitions, its
	// index rows, consumer groups' committed offsets for it, its ongoing
	// and aborted transactions and its producers' state, so that a topic
	// later created under the same name starts from nothing. The segments
	// that held its rows become garbage-collection candidates (see
	// GCStore): other topics' chunks may share them, so each is doomed
	// only once no index row references it.
	// Unknown names give ErrUnknownTopic.
	DeleteTopic(ctx context.Context, name string) error
	// Topic returns one topic. Unknown names give ErrUnknownTopic.
	Topic(ctx context.Context, name string) (Topic, error)
	// Topics lists all topics, ordered by name.
	Topics(ctx context.Context) ([]Topic, error)
	// SetTopicConfig replaces the topic's whole config map (the keys set
	// explicitly on the topic; absent keys take broker defaults) if it is
	// still prev (nil and empty are the same), a compare-and-set, so two
	// read-modify-writes racing cannot lose one's change. Otherwise nothing
	// changes and the error wraps ErrConfigChanged.
	SetTopicConfig(ctx context.Context, name string, config, prev map[string]string) error
	// CreatePartitions grows a topic to count partitions. Shrinking or
	// staying equal gives ErrInvalidPartitions.
	CreatePartitions(ctx context.Context, name string, count int32) error
	// Partitions returns the state of every partition of a topic, ordered by
	// partition. Unknown topic ids give ErrUnknownTopic.
	Partitions(ctx context.Context, topicID TopicID) ([]PartitionState, error)
}

// LogStore is the partitions' log: committing flushes, which assigns
// offsets, and the index of committed chunks that reads go through.
type LogStore interface {
	// CommitFlush records one flushed segment: in ONE transaction it locks
	// the touched partitions in (topic id, partition) order, assigns each
	// chunk a base offset by advancing its partition's high watermark by
	// chunk.OffsetCount, inserts one index row per chunk and marks the
	// segment committed (no longer an orphan candidate). Each partition may
	// appear at most once in f.Chunks.
	//
	// The upload must have been recorded with RecordUpload and not
	// forgotten; otherwise the error wraps ErrUploadNotRecorded and nothing
	// is committed. Committing a segment that is already committed (a retry
	// after an ambiguous failure) changes nothing and returns the base
	// offsets assigned the first time.
	//
	// If any chunk names a partition that does not exist (never created, or
	// deleted), nothing is committed and the error is an
	// *UnknownPartitionsError listing them, so the caller can drop those
	// chunks and commit the rest.
	CommitFlush(ctx context.Context, f Flush) (FlushResult, error)
	// Index returns the index rows of a partition whose offset ranges end
	// after offset (LastOffset >= offset), in offset order. It stops once the
	// rows returned add up to at least maxBytes bytes (always returning at
	// least one row if any exists) or limit rows.
	Index(ctx context.Context, tp TopicPartition, offset int64, maxBytes int64, limit int) ([]IndexEntry, error)
	// IndexByTimestamp returns the first index row of a partition (in offset
	// order) whose MaxTimestamp >= ts, or ok=false if there is none.
	IndexByTimestamp(ctx context.Context, tp TopicPartition, ts int64) (e IndexEntry, ok bool, err error)
	// IndexMaxTimestamp returns the index row holding the partition's
	// largest timestamp (the earliest such row on ties), or ok=false.
	IndexMaxTimestamp(ctx context.Context, tp TopicPartition) (e IndexEntry, ok bool, err error)
	// IndexBySegment returns the index rows of one committed segment, so an
	// agent told of another agent's commit can learn its new offsets.
	IndexBySegment(ctx context.Context, segmentKey string) ([]IndexEntry, error)
	// PartitionBytes returns, per partition of a topic that has index rows,
	// the bytes those rows hold in the bucket: the partition's stored size.
	// Partitions without rows are absent.
	PartitionBytes(ctx context.Context, topic TopicID) (map[int32]int64, error)
}

// UploadStore records uploads before they happen, so that an upload that
// never commits is an orphan the janitor can find.
type UploadStore interface {
	// RecordUpload notes, before an upload starts, that an object is about
	// to be written under key. An upload that is never committed stays
	// recorded so Orphans can find it. Nothing acknowledged is ever in an
	// orphan, because acknowledgement waits for CommitFlush.
	RecordUpload(ctx context.Context, key string, agentID string) error
	// RecordUploads records several future uploads in one round trip, so an
	// agent can reserve keys ahead and spend one store transaction per
	// flush (the commit). A reserved key that is never uploaded is an orphan
	// without an object, which the janitor forgets harmlessly.
	RecordUploads(ctx context.Context, keys []string, agentID string) error
	// Orphans lists uploads recorded before olderThan that were never
	// committed.
	Orphans(ctx context.Context, olderThan time.Time) ([]Upload, error)
	// ForgetUpload removes the record of an uncommitted upload, so that a
	// later CommitFlush of it is refused, and queues its object for
	// deletion (GCStore: it is doomed), and reports whether it did. A
	// committed upload is never forgotten: then, or if key is not recorded
	// at all, it changes nothing and returns false. Only after a forget
	// that returned true may the object be deleted; an upload listed
	// by Orphans may have committed since (a slow commit that kept
	// retrying), and its object is then referenced by the index.
	ForgetUpload(ctx context.Context, key string) (forgotten bool, err error)
	// AbandonUpload queues the object under key for deletion (GCStore) by
	// an uploader whose commit of it was refused with ErrUploadNotRecorded:
	// the record was doomed while the upload was still writing, so the
	// object may have been written after the collector deleted it. A key
	// with a segment record (uploading or committed) is left alone.
	AbandonUpload(ctx context.Context, key string) error
}

// ProducerStore hands out producer ids and expires idempotent producers'
// sequence state.
type ProducerStore interface {
	// AllocateProducerID returns a new, never before returned producer id.
	AllocateProducerID(ctx context.Context) (int64, error)
	// ExpireProducers forgets producer state (the sequence windows
	// CommitFlush checks) not touched since olderThan, as Kafka does after
	// producer.id.expiration.ms, and reports how many were removed.
	ExpireProducers(ctx context.Context, olderThan time.Time) (int, error)
	// PartitionProducers lists the producers tp keeps state for — those
	// whose sequences CommitFlush checks, and those with an open
	// transaction there — ordered by producer id, as Kafka's
	// DescribeProducers lists a partition's active producers. State below
	// the log start offset is pruned with it (see RetentionStore).
	PartitionProducers(ctx context.Context, tp TopicPartition) ([]PartitionProducer, error)
}

// PartitionProducer is one producer's state on one partition.
type PartitionProducer struct {
	ProducerID    int64
	ProducerEpoch int16 // -1 if unknown (a transaction whose state holds no batch here)
	LastSequence  int32 // of its newest batch kept; -1 if none
	LastTimestamp int64 // Unix ms of the state's last update; -1 if none
	// TxnStartOffset is the first offset of its open transaction on the
	// partition, -1 if none.
	TxnStartOffset int64
}

// OffsetStore keeps consumer groups' committed offsets, unfenced (the
// transaction coordinator applies a committed transaction's offsets; the
// fenced path is GroupStore.CommitGroupOffsets).
type OffsetStore interface {
	// CommitOffsets stores a consumer group's committed offsets, replacing
	// earlier ones for the same partitions.
	CommitOffsets(ctx context.Context, group string, offsets []CommittedOffset) error
	// FetchOffsets returns a group's committed offsets, ordered by topic and
	// partition. A group with none returns an empty slice.
	FetchOffsets(ctx context.Context, group string) ([]CommittedOffset, error)
}

// LeaseStore elects one holder at a time for background work.
type LeaseStore interface {
	// AcquireLease takes or renews the named lease for holder until ttl from
	// now (by the store's clock). It returns true if holder now holds it.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease gives up the lease if holder holds it.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// ClusterStore is the agent registry: registration, heartbeats and the
// membership epoch.
type ClusterStore interface {
	// RegisterAgent upserts an agent and extends its liveness to ttl from now
	// (by the store's clock); agents call it again to heartbeat. A new or
	// returning agent moves the membership epoch forward. A node id that
	// another live agent holds gives a *NodeIDTakenError and registers
	// nothing: no two live agents answer clients as the same broker.
	RegisterAgent(ctx context.Context, a Agent, ttl time.Duration) error
	// DeregisterAgent removes an agent at once, moving the membership epoch
	// forward if it was registered.
	DeregisterAgent(ctx context.Context, id string) error
	// Agents lists agents whose liveness has not lapsed, ordered by id.
	Agents(ctx context.Context) ([]Agent, error)
	// Membership removes agents whose liveness lapsed (moving the epoch
	// forward if there were any) and returns the live agents and the epoch.
	Membership(ctx context.Context) (Membership, error)
}

// TopicID is Kafka's 16-byte topic id (a UUID).
type TopicID [16]byte

// TopicSpec is what CreateTopic needs.
type TopicSpec struct {
	ID         TopicID // zero: the store picks a random id
	Name       string
	Partitions int32
	Config     map[string]string // explicitly set topic configs
}

// Topic is a created topic.
type Topic struct {
	ID         TopicID
	Name       string
	Partitions int32
	Config     map[string]string
}

// TopicPartition names one partition by topic id.
type TopicPartition struct {
	Topic     TopicID
	Partition int32
}

// PartitionState is a partition's offsets. Offsets in [LogStartOffset,
// HighWatermark) are readable.
type PartitionState struct {
	Partition      int32
	HighWatermark  int64
	LogStartOffset int64
	// LastStableOffset: offsets below it hold no open transaction's data
	// (see TxnStore); HighWatermark when none is open.
	LastStableOffset int64
}

// Flush is one segment object's worth of chunks to commit.
type Flush struct {
	SegmentKey string
	AgentID    string
	Size       int64 // object size in bytes
	Chunks     []Chunk
}

// Chunk is the bytes of one partition in a segment: one or more Kafka record
// batches stored back to back at [Position, Position+Length).
type Chunk struct {
	TopicPartition
	Position     int64 // byte offset of the chunk in the segment object
	Length       int64
	OffsetCount  int64 // offsets the chunk occupies: sum of (lastOffsetDelta+1)
	BatchCount   int32
	MinTimestamp int64
	MaxTimestamp int64
	// Batches, if set, lists the chunk's batches in order; CommitFlush then
	// checks idempotent producers' sequences batch by batch and indexes only
	// accepted batches (see IndexRuns). Nil: every batch is accepted and the
	// chunk is one index row.
	Batches []ProducerBatch
}

// FlushResult gives the base offset assigned to each chunk, in the order of
// Flush.Chunks (for chunks with Batches: the first accepted batch's, or -1),
// and for chunks with Batches the verdict on each batch.
type FlushResult struct {
	BaseOffsets []int64
	Batches     [][]BatchResult // parallel to Flush.Chunks; nil for chunks without Batches
}

// IndexEntry is one committed chunk: offsets [BaseOffset, LastOffset] of a
// partition live at [Position, Position+Length) of object SegmentKey.
type IndexEntry struct {
	TopicPartition
	BaseOffset   int64
	LastOffset   int64
	SegmentKey   string
	Position     int64
	Length       int64
	BatchCount   int32
	MinTimestamp int64
	MaxTimestamp int64
}

// Upload is a recorded, uncommitted upload.
type Upload struct {
	Key        string
	AgentID    string
	RecordedAt time.Time
}

// CommittedOffset is one partition's committed consumer offset.
type CommittedOffset struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
}

// Agent is one registered agent.
type Agent struct {
	ID      string
	Addr    string // advertised host:port
	Zone    string
	Expires time.Time // set by the store on read

	// Listeners are the advertised address of each of the agent's Kafka
	// listeners, by listener name (see AgentListener). Empty for an agent
	// that registered before listeners were recorded: it has one PLAINTEXT
	// listener at Addr.
	Listeners []AgentListener

	// NodeID is the Kafka node id the agent answers as; at most one live
	// agent holds each. Nil for an agent that registered before node ids
	// were recorded (its id is derived from ID, see cluster.NodeID).
	NodeID *int32
}
