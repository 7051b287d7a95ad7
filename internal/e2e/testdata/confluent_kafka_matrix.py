"""confluent-kafka-python (librdkafka) against a broker, run by
internal/e2e/compat_confluent_test.go.

Usage: confluent_kafka_matrix.py BROKERS STEP [ARG]

BROKERS is host:port[,host:port...]. STEP is one of
  produce CODEC  create confluent-CODEC (3 partitions), produce 60 keyed
                 records to each partition with CODEC (none, gzip, snappy,
                 lz4, zstd), consume them in a group and commit
  group          two members of one group share confluent-group while
                 records are produced; one joins, then leaves
  admin          AdminClient calls (what 1.7.0 has), offsets and groups
  txn            transactional producer: commit, abort,
                 send_offsets_to_transaction; a read_committed consumer
Each step prints JSON lines on stdout (what the test checks), the same as
testdata/kafkajs/matrix.js, and exits nonzero on any failure. Every wait
is a loop on a condition with a deadline; nothing sleeps for
synchronisation.
"""
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

brokers, step = sys.argv[1], sys.argv[2]
arg = sys.argv[3] if len(sys.argv) > 3 else None
base = {"bootstrap.servers": brokers, "client.id": "silt-confluent-kafka"}


def report(**kv):
    print(json.dumps(kv), flush=True)


def key(p, i):
    return "key-p%d-%04d" % (p, i)


def value(p, i):
    return "value-p%d-%04d: the quick brown fox jumps over the lazy dog" % (p, i)


def until(what, seconds, cond, between=None):
    """Asks cond until it holds, calling between (a poll) in between."""
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit("timed out after %ss waiting for %s" % (seconds, what() if callable(what) else what))
        if between is not None:
            between()
        else:
            time.sleep(0.05)


def admin_client():
    return AdminClient(dict(base))


def wait_all(futures):
    """Waits for an AdminClient call's futures; any failure raises."""
    return {k: f.result(timeout=30) for k, f in futures.items()}


def create_topic(admin, topic, partitions, config=None):
    wait_all(admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1,
                                           config=config or {})], request_timeout=30))
    until("%s in metadata with %d partitions" % (topic, partitions), 30,
          lambda: len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == partitions)


def consumer(group, **extra):
    conf = dict(base, **{"group.id": group, "auto.offset.reset": "earliest",
                         "session.timeout.ms": 10000, "heartbeat.interval.ms": 300,
                         "fetch.wait.max.ms": 250})
    conf.update(extra)
    return Consumer(conf)


last_offsets = {}


def committed_at_end(group, topic, partitions):
    """The group's committed offsets of topic equal its end offsets."""
    c = consumer(group)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        committed = c.committed(tps, timeout=10)
        ends = [c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)]
        last_offsets[group] = {"committed": [tp.offset for tp in committed], "ends": ends}
        # A partition with nothing to consume has no commit (OFFSET_INVALID).
        return all(tp.error is None and (tp.offset == ends[tp.partition] or tp.offset < 0 and ends[tp.partition] == 0)
                   for tp in committed)
    finally:
        c.close()


class Delivery:
    """Delivery reports of a producer: offsets per partition, errors."""

    def __init__(self):
        self.offsets, self.errors = {}, []

    def __call__(self, err, msg):
        if err is not None:
            self.errors.append(str(err))
        else:
            self.offsets.setdefault(msg.partition(), []).append(msg.offset())


def produce_step(codec):
    if codec not in ("none", "gzip", "snappy", "lz4", "zstd"):
        raise SystemExit("unknown codec " + codec)
    topic = group = "confluent-" + codec
    partitions, per_partition = 3, 60
    create_topic(admin_client(), topic, partitions)

    producer = Producer(dict(base, **{"acks": "all", "compression.type": codec, "linger.ms": 5,
                                      "enable.idempotence": True}))
    # Three rounds of 20 records per partition: multi-record batches.
    for start in range(0, per_partition, 20):
        d = Delivery()
        for i in range(start, start + 20):
            for p in range(partitions):
                producer.produce(topic, key=key(p, i), value=value(p, i), partition=p, on_delivery=d)
        if producer.flush(30) != 0:
            raise SystemExit("flush: records left undelivered")
        for p in range(partitions):
            offs = d.offsets.get(p, [])
            report(sent=p, base_offset=min(offs) if offs else -1,
                   error_code=0 if not d.errors and len(offs) == 20 else -1, start=start)
        if d.errors:
            raise SystemExit("delivery errors: %s" % d.errors[:5])

    c = consumer(group, **{"enable.auto.commit": False})
    c.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + 45
    while seen < partitions * per_partition:
        if time.monotonic() > deadline:
            raise SystemExit("consumed %d of %d records" % (seen, partitions * per_partition))
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            raise KafkaException(m.error())
        report(p=m.partition(), o=m.offset(), k=m.key().decode(), v=m.value().decode())
        seen += 1
    c.commit(asynchronous=False)
    c.close()
    until("the group to commit the end of every partition", 30,
          lambda: committed_at_end(group, topic, partitions))


def group_step():
    topic = group = "confluent-group"
    partitions = 6
    create_topic(admin_client(), topic, partitions)
    producer = Producer(dict(base, **{"acks": "all", "linger.ms": 5}))
    members, assignment, joins, consumed = {}, {}, {}, {"A": 0, "B": 0}
    produced = [0]

    def start_member(name):
        c = consumer(group, **{"enable.auto.commit": True, "auto.commit.interval.ms": 100})

        def on_assign(_, tps):
            joins[name] = joins.get(name, 0) + 1
            assignment[name] = sorted(tp.partition for tp in tps if tp.topic == topic)
            report(join=name, generation_join=joins[name], assignment=assignment[name])

        def on_revoke(_, tps):
            assignment[name] = []

        c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
        members[name] = c

    def poll_members():
        for name, c in list(members.items()):
            m = c.poll(0.05)
            if m is None:
                continue
            if m.error():
                raise KafkaException(m.error())
            consumed[name] += 1
            report(member=name, p=m.partition(), o=m.offset(), v=m.value().decode())

    def produce(phase, n):
        d = Delivery()
        for i in range(n):
            # Spread over every partition (librdkafka's sticky partitioner
            # would put a phase's unkeyed records in one or two).
            producer.produce(topic, value="%s-%04d" % (phase, i), partition=i % partitions, on_delivery=d)
        if producer.flush(30) != 0 or d.errors:
            raise SystemExit("produce %s: %s" % (phase, d.errors[:5]))
        produced[0] += n
        report(produced=phase, count=n)

    def drained(what):
        until(lambda: "%s: every record consumed and committed (consumed %s, produced %d, offsets %s)"
              % (what, consumed, produced[0], last_offsets.get(group)), 30,
              lambda: consumed["A"] + consumed["B"] >= produced[0]
              and committed_at_end(group, topic, partitions), poll_members)

    def assigned(names):
        parts = sorted(p for n in names for p in assignment.get(n, []))
        return all(assignment.get(n) for n in names) and parts == list(range(partitions))

    start_member("A")
    until("A assigned every partition", 30, lambda: assigned(["A"]), poll_members)
    produce("alone", 120)
    drained("A alone")

    start_member("B")
    until("A and B to share the partitions", 45, lambda: assigned(["A", "B"]), poll_members)
    admin = admin_client()

    def described():
        gs = admin.list_groups(group, timeout=10)
        return len(gs) == 1 and gs[0].state == "Stable" and len(gs[0].members) == 2
    until("list_groups to describe two members, Stable", 30, described, poll_members)
    g = admin.list_groups(group, timeout=10)[0]
    report(describe=g.id, state=g.state, protocol_type=g.protocol_type, protocol=g.protocol,
           members=len(g.members))
    produce("shared", 240)
    drained("A and B")

    members.pop("B").close()  # commits, then LeaveGroup
    report(left="B")
    until("A alone to hold every partition again", 45, lambda: assigned(["A"]), poll_members)
    produce("after", 120)
    drained("A after B left")
    report(consumed_a=consumed["A"], consumed_b=consumed["B"], total=produced[0])
    members.pop("A").close()


def admin_step():
    topic = "confluent-admin"
    admin = admin_client()
    md = admin.list_topics(timeout=10)
    report(cluster_id=md.cluster_id, brokers=len(md.brokers), controller=md.controller_id)

    create_topic(admin, topic, 2, {"retention.ms": "86400000"})
    report(listed_after_create=topic in admin.list_topics(timeout=10).topics)

    wait_all(admin.create_partitions([NewPartitions(topic, 4)], request_timeout=30))
    t = admin.list_topics(topic, timeout=10).topics[topic]
    report(metadata=topic, partitions=sorted(t.partitions),
           leaders=all(p.leader >= 0 and p.error is None for p in t.partitions.values()))

    resource = ConfigResource("topic", topic)

    def retention():
        configs = wait_all(admin.describe_configs([resource], request_timeout=30))[resource]
        return configs["retention.ms"].value
    report(retention_created=retention())
    wait_all(admin.alter_configs([ConfigResource("topic", topic, set_config={"retention.ms": "3600000"})],
                                 request_timeout=30))
    report(retention_altered=retention())

    producer = Producer(dict(base, **{"acks": "all"}))
    for p, n in ((1, 3), (3, 2)):
        for i in range(n):
            producer.produce(topic, value="admin-%d" % i, partition=p)
    if producer.flush(30) != 0:
        raise SystemExit("flush: records left undelivered")
    c = consumer("confluent-admin-group")
    ends = []
    for p in range(4):
        low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        ends.append([p, low, high])
    report(topic_offsets=ends)

    # 1.7.0's AdminClient has no offset or group deletion calls: a group's
    # offsets are set and read through a consumer that does not subscribe.
    c.commit(offsets=[TopicPartition(topic, 1, 2), TopicPartition(topic, 3, 1)], asynchronous=False)
    committed = c.committed([TopicPartition(topic, p) for p in range(4)], timeout=10)
    report(fetch_offsets=[[tp.partition, tp.offset] for tp in committed])
    c.close()
    report(listed_group=any(g.id == "confluent-admin-group" for g in admin.list_groups(timeout=10)))
    g = admin.list_groups("confluent-admin-group", timeout=10)[0]
    report(describe=g.id, state=g.state, members=len(g.members))

    wait_all(admin.delete_topics([topic], request_timeout=30))
    until(topic + " gone from list_topics", 30, lambda: topic not in admin.list_topics(timeout=10).topics)
    report(listed_after_delete=topic in admin.list_topics(timeout=10).topics)


def txn_step():
    topic, inp, group = "confluent-txn", "confluent-txn-in", "confluent-txn-group"
    partitions = 2
    admin = admin_client()
    create_topic(admin, topic, partitions)
    create_topic(admin, inp, 1)

    producer = Producer(dict(base, **{"transactional.id": "confluent-txn", "linger.ms": 5}))
    producer.init_transactions(30)
    offsets_of = consumer(group)  # its group metadata, for send_offsets_to_transaction

    def txn(name, n, offset=None, commit=True):
        producer.begin_transaction()
        for i in range(n):
            producer.produce(topic, value="%s-%04d" % (name, i), partition=i % partitions)
        if offset is not None:
            producer.send_offsets_to_transaction([TopicPartition(inp, 0, offset)],
                                                 offsets_of.consumer_group_metadata(), 30)
        # Delivered before the end: an abort purges what is still queued,
        # and the aborted records must be in the log to be filtered.
        if producer.flush(30) != 0:
            raise SystemExit("flush: records left undelivered")
        if commit:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)
        report(txn=name, count=n)

    txn("committed", 20)
    txn("aborted", 20, commit=False)
    txn("offsets", 10, offset=10)
    txn("aborted-offsets", 10, offset=99, commit=False)
    txn("end", partitions)

    committed = offsets_of.committed([TopicPartition(inp, 0)], timeout=10)
    report(group_offsets=[[tp.partition, tp.offset] for tp in committed])
    offsets_of.close()

    c = consumer("confluent-txn-reader", **{"isolation.level": "read_committed", "enable.auto.commit": False})
    c.subscribe([topic])
    ended = set()
    deadline = time.monotonic() + 45
    while len(ended) < partitions:
        if time.monotonic() > deadline:
            raise SystemExit("the read_committed consumer reached the end of %s only" % sorted(ended))
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            raise KafkaException(m.error())
        v = m.value().decode()
        report(read_committed=v, p=m.partition(), o=m.offset())
        if v.startswith("end-"):
            ended.add(m.partition())
    c.close()


steps = {"produce": lambda: produce_step(arg), "group": group_step, "admin": admin_step, "txn": txn_step}
if step not in steps:
    raise SystemExit("unknown step " + step)
steps[step]()
