// kafkajs against a broker, run by internal/e2e/compat_kafkajs_test.go.
//
// Usage: node matrix.js BROKERS STEP [ARG]
//
// BROKERS is host:port[,host:port...]. STEP is one of
//   produce CODEC  create kafkajs-CODEC (3 partitions), produce 60 keyed
//                  records to each partition with CODEC (none, gzip, snappy,
//                  lz4, zstd), consume them in a group and commit
//   group          two members of one group share kafkajs-group while
//                  records are produced; one joins, then leaves
//   admin          topic, config, offset and group admin calls
//   txn            transactional producer: commit, abort, sendOffsets; a
//                  read_committed consumer
// Each step prints JSON lines on stdout (what the test checks) and exits
// nonzero on any failure. kafkajs' own log goes to stderr. Every wait is a
// loop on a condition with a deadline; nothing sleeps for synchronisation.
'use strict';

// The partitioner is chosen per record here (partition set), so kafkajs'
// notice about its v2 default partitioner says nothing to us.
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

const {
  Kafka, CompressionTypes, CompressionCodecs, ConfigResourceTypes, logLevel,
} = require('kafkajs');
const SnappyCodec = require('kafkajs-snappy');
// lz4-asm, under kafkajs-lz4, loads its WebAssembly with fetch() when
// there is one, which fails on a file path (Node 18+ has fetch); without
// fetch it reads the file.
const LZ4Codec = (() => {
  const { fetch } = globalThis;
  globalThis.fetch = undefined;
  try {
    return require('kafkajs-lz4');
  } finally {
    globalThis.fetch = fetch;
  }
})();
const { ZstdCodec } = require('zstd-codec');

// kafkajs has gzip built in; snappy and lz4 come from their plugins. The
// zstd plugin (@kafkajs/zstd) needs a native module that does not build
// on current Node, so zstd is zstd-codec (Emscripten) behind kafkajs'
// codec interface.
CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec;
const zstdReady = new Promise((resolve) => ZstdCodec.run(resolve));
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  async compress(encoder) {
    const z = await zstdReady;
    return Buffer.from(new z.Simple().compress(encoder.buffer, 3));
  },
  async decompress(buffer) {
    const z = await zstdReady;
    return Buffer.from(new z.Streaming().decompress(buffer));
  },
});

const codecs = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
};

const [brokers, step, arg] = process.argv.slice(2);

const kafka = new Kafka({
  clientId: 'silt-kafkajs',
  brokers: brokers.split(','),
  connectionTimeout: 10000,
  requestTimeout: 30000,
  retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 2000 },
  logLevel: logLevel.WARN,
  logCreator: () => ({ namespace, level, label, log }) => {
    const { message, ...extra } = log;
    process.stderr.write(`${label} [${namespace}] ${message} ${JSON.stringify(extra)}\n`);
  },
});

function report(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// key and value of record i of partition p, as the Go test's compatKey and
// compatValue.
const key = (p, i) => `key-p${p}-${String(i).padStart(4, '0')}`;
const value = (p, i) => `value-p${p}-${String(i).padStart(4, '0')}: the quick brown fox jumps over the lazy dog`;

// until asks cond (async) until it returns true, failing after ms.
async function until(what, ms, cond) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function withAdmin(fn) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

async function createTopic(admin, topic, numPartitions, configEntries) {
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions, replicationFactor: 1, configEntries }],
    waitForLeaders: true,
  });
  if (!created) throw new Error(`createTopics(${topic}) answered false: it already exists`);
}

// committedAtEnd: the group's committed offsets of topic equal the topic's
// end offsets on every partition.
async function committedAtEnd(admin, groupId, topic) {
  const ends = await admin.fetchTopicOffsets(topic);
  const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return ends.every((e) => {
    const c = committed.partitions.find((x) => x.partition === e.partition);
    // A partition with nothing to consume has no commit (-1).
    return c && (c.offset === e.high || (c.offset === '-1' && e.high === '0'));
  });
}

async function produceStep(codecName) {
  const compression = codecs[codecName];
  if (compression === undefined) throw new Error(`unknown codec ${codecName}`);
  const topic = `kafkajs-${codecName}`;
  const groupId = `kafkajs-${codecName}`;
  const partitions = 3;
  const perPartition = 60;
  await withAdmin((admin) => createTopic(admin, topic, partitions));

  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    // Three sends of 20 records per partition: multi-record batches, each
    // request carrying every partition.
    for (let start = 0; start < perPartition; start += 20) {
      const messages = [];
      for (let i = start; i < start + 20; i++) {
        for (let p = 0; p < partitions; p++) messages.push({ partition: p, key: key(p, i), value: value(p, i) });
      }
      const meta = await producer.send({ topic, acks: -1, compression, messages });
      for (const m of meta) {
        report({ sent: m.partition, base_offset: Number(m.baseOffset), error_code: m.errorCode, start });
      }
    }
  } finally {
    await producer.disconnect();
  }

  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 250, heartbeatInterval: 500, sessionTimeout: 10000 });
  await consumer.connect();
  let seen = 0;
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommitThreshold: 1,
      eachMessage: async ({ partition, message }) => {
        report({ p: partition, o: Number(message.offset), k: message.key.toString(), v: message.value.toString() });
        seen++;
      },
    });
    await until(`${partitions * perPartition} records consumed`, 45000, () => seen >= partitions * perPartition);
    await withAdmin((admin) => until('the group committed the end of every partition', 30000,
      () => committedAtEnd(admin, groupId, topic)));
  } finally {
    await consumer.disconnect();
  }
}

// groupStep: member A consumes alone; member B joins and both consume; B
// leaves and A consumes alone again. Before each change every record so
// far is consumed and committed, so no record is handed to two members.
async function groupStep() {
  const topic = 'kafkajs-group';
  const groupId = 'kafkajs-group';
  const partitions = 6;
  const admin = kafka.admin();
  await admin.connect();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const members = {};
  const consumed = { A: 0, B: 0 };
  let produced = 0;

  const startMember = async (name) => {
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 250, heartbeatInterval: 300, sessionTimeout: 10000, rebalanceTimeout: 20000 });
    const m = { consumer, assignment: null, joins: 0 };
    members[name] = m;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      m.joins++;
      m.assignment = (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b);
      report({ join: name, generation_join: m.joins, assignment: m.assignment });
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommitThreshold: 1,
      eachMessage: async ({ partition, message }) => {
        consumed[name]++;
        report({ member: name, p: partition, o: Number(message.offset), v: message.value.toString() });
      },
    });
    return m;
  };
  const produce = async (phase, n) => {
    const messages = [];
    for (let i = 0; i < n; i++) messages.push({ partition: i % partitions, value: `${phase}-${String(i).padStart(4, '0')}` });
    await producer.send({ topic, acks: -1, messages });
    produced += n;
    report({ produced: phase, count: n });
  };
  const drained = (what) => until(`${what}: every record consumed and committed`, 30000,
    async () => consumed.A + consumed.B >= produced && committedAtEnd(admin, groupId, topic));
  // assigned: each named member has a non-empty assignment, and together they
  // hold every partition exactly once.
  const assigned = (names) => {
    const all = names.flatMap((n) => members[n].assignment || []).sort((a, b) => a - b);
    return names.every((n) => (members[n].assignment || []).length > 0)
      && all.length === partitions && all.every((p, i) => p === i);
  };

  try {
    await createTopic(admin, topic, partitions);
    const a = await startMember('A');
    await until('A assigned every partition', 30000, () => assigned(['A']));
    await produce('alone', 120);
    await drained('A alone');

    const b = await startMember('B');
    await until('A and B to share the partitions', 45000, () => assigned(['A', 'B']));
    // describeGroups sees the two members of the stable group.
    await until('describeGroups to show two members, Stable', 30000, async () => {
      const { groups: [g] } = await admin.describeGroups([groupId]);
      return g.state === 'Stable' && g.members.length === 2;
    });
    const { groups: [g] } = await admin.describeGroups([groupId]);
    report({ describe: g.groupId, state: g.state, protocol_type: g.protocolType, protocol: g.protocol, members: g.members.length });
    await produce('shared', 240);
    await drained('A and B');

    await b.consumer.disconnect(); // LeaveGroup
    report({ left: 'B' });
    await until('A alone to hold every partition again', 45000, () => a.joins >= 3 && assigned(['A']));
    await produce('after', 120);
    await drained('A after B left');
    report({ consumed_a: consumed.A, consumed_b: consumed.B, total: produced });
    await a.consumer.disconnect();
  } finally {
    for (const m of Object.values(members)) await m.consumer.disconnect();
    await producer.disconnect();
    await admin.disconnect();
  }
}

async function adminStep() {
  const topic = 'kafkajs-admin';
  await withAdmin(async (admin) => {
    const cluster = await admin.describeCluster();
    report({ cluster_id: cluster.clusterId, brokers: cluster.brokers.length, controller: cluster.controller });

    await createTopic(admin, topic, 2, [{ name: 'retention.ms', value: '86400000' }]);
    let topics = await admin.listTopics();
    report({ listed_after_create: topics.includes(topic) });

    await admin.createPartitions({ topicPartitions: [{ topic, count: 4 }] });
    const md = await admin.fetchTopicMetadata({ topics: [topic] });
    const t = md.topics.find((x) => x.name === topic);
    report({
      metadata: t.name,
      partitions: t.partitions.map((p) => p.partitionId).sort((a, b) => a - b),
      leaders: t.partitions.every((p) => p.leader >= 0 && p.partitionErrorCode === 0),
    });

    const retention = async () => {
      const { resources: [r] } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }],
      });
      const e = r.configEntries.find((x) => x.configName === 'retention.ms');
      return e && e.configValue;
    };
    report({ retention_created: await retention() });
    await admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '3600000' }] }],
    });
    report({ retention_altered: await retention() });

    // Records in two partitions, and a group's offsets set and read back.
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: [0, 1, 2].map((i) => ({ partition: 1, value: `admin-${i}` })) });
    await producer.send({ topic, acks: -1, messages: [0, 1].map((i) => ({ partition: 3, value: `admin-${i}` })) });
    await producer.disconnect();
    const ends = await admin.fetchTopicOffsets(topic);
    report({ topic_offsets: ends.map((e) => [e.partition, Number(e.low), Number(e.high)]).sort((a, b) => a[0] - b[0]) });

    const groupId = 'kafkajs-admin-group';
    await admin.setOffsets({ groupId, topic, partitions: [{ partition: 1, offset: '2' }, { partition: 3, offset: '1' }] });
    const [fetched] = await admin.fetchOffsets({ groupId, topics: [topic] });
    report({
      fetch_offsets: fetched.partitions.map((p) => [p.partition, Number(p.offset)]).sort((a, b) => a[0] - b[0]),
    });
    const { groups } = await admin.listGroups();
    report({ listed_group: groups.some((g) => g.groupId === groupId) });
    const { groups: [g] } = await admin.describeGroups([groupId]);
    report({ describe: g.groupId, state: g.state, members: g.members.length });
    await admin.deleteGroups([groupId]);
    const { groups: after } = await admin.listGroups();
    report({ listed_group_after_delete: after.some((x) => x.groupId === groupId) });

    await admin.deleteTopics({ topics: [topic], timeout: 10000 });
    topics = await admin.listTopics();
    report({ listed_after_delete: topics.includes(topic) });
  });
}

// txnStep: a transactional producer commits one transaction, aborts one,
// commits one that also commits a group's offsets (sendOffsets), aborts
// one that would have moved them further, and commits a last one with one
// "end" record per partition. A read_committed consumer reads up to every
// "end" record.
async function txnStep() {
  const topic = 'kafkajs-txn';
  const input = 'kafkajs-txn-in';
  const groupId = 'kafkajs-txn-group';
  const partitions = 2;
  await withAdmin(async (admin) => {
    await createTopic(admin, topic, partitions);
    await createTopic(admin, input, 1);
  });

  const producer = kafka.producer({
    transactionalId: 'kafkajs-txn', idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false,
  });
  await producer.connect();
  const batch = (name, n) => Array.from({ length: n }, (_, i) => ({
    partition: i % partitions, value: `${name}-${String(i).padStart(4, '0')}`,
  }));
  try {
    let tx = await producer.transaction();
    await tx.send({ topic, acks: -1, messages: batch('committed', 20) });
    await tx.commit();
    report({ txn: 'committed', count: 20 });

    tx = await producer.transaction();
    await tx.send({ topic, acks: -1, messages: batch('aborted', 20) });
    await tx.abort();
    report({ txn: 'aborted', count: 20 });

    tx = await producer.transaction();
    await tx.send({ topic, acks: -1, messages: batch('offsets', 10) });
    await tx.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition: 0, offset: '10' }] }] });
    await tx.commit();
    report({ txn: 'offsets', count: 10 });

    tx = await producer.transaction();
    await tx.send({ topic, acks: -1, messages: batch('aborted-offsets', 10) });
    await tx.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition: 0, offset: '99' }] }] });
    await tx.abort();
    report({ txn: 'aborted-offsets', count: 10 });

    tx = await producer.transaction();
    await tx.send({ topic, acks: -1, messages: batch('end', partitions) });
    await tx.commit();
    report({ txn: 'end', count: partitions });
  } finally {
    await producer.disconnect();
  }

  const [committed] = await withAdmin((admin) => admin.fetchOffsets({ groupId, topics: [input] }));
  report({ group_offsets: committed.partitions.map((p) => [p.partition, Number(p.offset)]) });

  const consumer = kafka.consumer({ groupId: 'kafkajs-txn-reader', readUncommitted: false, maxWaitTimeInMs: 250 });
  await consumer.connect();
  const ended = new Set();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const v = message.value.toString();
        report({ read_committed: v, p: partition, o: Number(message.offset) });
        if (v.startsWith('end-')) ended.add(partition);
      },
    });
    await until('the read_committed consumer to reach every end record', 45000, () => ended.size === partitions);
  } finally {
    await consumer.disconnect();
  }
}

const steps = { produce: () => produceStep(arg), group: groupStep, admin: adminStep, txn: txnStep };

(async () => {
  if (!steps[step]) throw new Error(`unknown step ${step}`);
  await steps[step]();
})().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`kafkajs ${step} ${arg || ''}: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
