// kafkajs against Ringlet, run by tests/kafkajs_client.rs.
//
// kafkajs's consumer always joins a consumer group, which the broker does not serve yet, so this
// script checks: admin createTopics + metadata, producer.send with acks=-1 (all), admin
// fetchTopicOffsets (ListOffsets latest/earliest), fetchTopicOffsetsByTimestamp, and reads the
// messages back through kafkajs's lower-level broker.fetch() (no group involved). It prints
// "DELIVERED <index> <partition> <offset>" for every acknowledged message so the Rust test can
// read the same messages with librdkafka and compare. Exits 1 on the first mismatch.
'use strict'

const MESSAGES = 200
const PARTITIONS = 3
const DISTINCT_KEYS = 7
const WAIT_MS = 180000 // hang detector for polling loops, not a performance limit

function fail(what) {
  console.error(`FAIL ${what}`)
  process.exit(1)
}

function check(condition, what) {
  if (!condition) fail(what)
  console.log(`OK   ${what}`)
}

let kafkajs
try {
  kafkajs = require('kafkajs')
} catch (err) {
  fail(`kafkajs is not installed (${err.message}). Run scripts/test.sh (it runs npm ci in tests/js).`)
}
const { Kafka, logLevel, Partitioners } = kafkajs

function parseArgs() {
  const args = { bootstrap: null, topic: null, baseTimestamp: null }
  const argv = process.argv.slice(2)
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--bootstrap') args.bootstrap = argv[i + 1]
    else if (argv[i] === '--topic') args.topic = argv[i + 1]
    else if (argv[i] === '--base-timestamp') args.baseTimestamp = Number(argv[i + 1])
    else fail(`unknown argument ${argv[i]}`)
  }
  if (!args.bootstrap || !args.topic || !args.baseTimestamp) {
    fail('usage: kafkajs_check.js --bootstrap HOST:PORT --topic NAME --base-timestamp MS')
  }
  return args
}

// Must match expected_kafkajs_message() in tests/kafkajs_client.rs.
function expected(index, baseTimestamp) {
  return {
    key: `key-${index % DISTINCT_KEYS}`,
    value: `kafkajs-value-${index}-${'j'.repeat(index % 40)}`,
    headers: { seq: String(index), client: 'kafkajs' },
    timestamp: String(baseTimestamp + index),
  }
}

async function createTopic(admin, topic) {
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
    waitForLeaders: true,
    timeout: WAIT_MS,
  })
  check(created === true, `kafkajs: admin.createTopics created ${topic}`)
  const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
  const partitions = metadata.topics[0].partitions
  check(partitions.length === PARTITIONS, `kafkajs: metadata shows ${partitions.length} partitions`)
  check(partitions.every(p => p.leader >= 0), 'kafkajs: every partition has a leader')
}

// Sends in batches; the offsets of a batch's messages in one partition are baseOffset + position.
async function produce(producer, topic, baseTimestamp) {
  const placed = new Map() // index -> [partition, offset]
  const batch = 50
  for (let start = 0; start < MESSAGES; start += batch) {
    const indexes = []
    for (let i = start; i < Math.min(start + batch, MESSAGES); i++) indexes.push(i)
    const messages = indexes.map(i => expected(i, baseTimestamp))
    const partitioner = Partitioners.DefaultPartitioner()
    const partitionOf = indexes.map((i, n) =>
      partitioner({ topic, partitionMetadata: range(PARTITIONS).map(p => ({ partitionId: p, leader: 0 })), message: messages[n] }))
    const results = await producer.send({ topic, acks: -1, timeout: WAIT_MS, messages: messages.map((m, n) => ({ ...m, partition: partitionOf[n] })) })
    for (const r of results) {
      if (r.errorCode !== 0) fail(`kafkajs: produce to partition ${r.partition} returned error ${r.errorCode}`)
    }
    const positionInPartition = new Map()
    indexes.forEach((index, n) => {
      const partition = partitionOf[n]
      const result = results.find(r => r.partition === partition)
      if (!result) fail(`kafkajs: no produce result for partition ${partition}`)
      const position = positionInPartition.get(partition) || 0
      positionInPartition.set(partition, position + 1)
      placed.set(index, [partition, Number(result.baseOffset) + position])
    })
  }
  check(placed.size === MESSAGES, `kafkajs: ${MESSAGES} messages acknowledged with acks=-1`)
  return placed
}

function range(n) {
  return Array.from({ length: n }, (_, i) => i)
}

async function checkOffsets(admin, topic, placed, baseTimestamp) {
  const counts = range(PARTITIONS).map(p => [...placed.values()].filter(([q]) => q === p).length)
  const offsets = await admin.fetchTopicOffsets(topic)
  for (const o of offsets) {
    check(Number(o.low) === 0 && Number(o.high) === counts[o.partition],
      `kafkajs: fetchTopicOffsets partition ${o.partition}: low ${o.low} high ${o.high} (expected 0..${counts[o.partition]})`)
  }
  // The first message of each partition with timestamp >= baseTimestamp + MESSAGES/2.
  const probe = baseTimestamp + Math.floor(MESSAGES / 2)
  const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, probe)
  for (const o of byTime) {
    const want = [...placed.entries()]
      .filter(([index, [p]]) => p === o.partition && baseTimestamp + index >= probe)
      .map(([, [, offset]]) => offset)
    const expectedOffset = want.length ? Math.min(...want) : counts[o.partition]
    check(Number(o.offset) === expectedOffset,
      `kafkajs: fetchTopicOffsetsByTimestamp partition ${o.partition} -> ${o.offset} (expected ${expectedOffset})`)
  }
}

// Lower-level read: kafkajs's internal cluster + broker.fetch(), which involves no group.
async function fetchAll(kafka, topic, placed, baseTimestamp) {
  const createCluster = Object.getOwnPropertySymbols(kafka).find(s => String(s) === 'Symbol(private:Kafka:createCluster)')
  if (!createCluster) fail('kafkajs internals changed: no private createCluster (pin kafkajs 2.2.4)')
  const cluster = kafka[createCluster]({ allowAutoTopicCreation: false })
  await cluster.connect()
  await cluster.addTargetTopic(topic)
  const atOffset = new Map([...placed.entries()].map(([index, [p, o]]) => [`${p}/${o}`, index]))
  let read = 0
  for (const partition of range(PARTITIONS)) {
    const leaders = cluster.findLeaderForPartitions(topic, [partition])
    const broker = await cluster.findBroker({ nodeId: Object.keys(leaders)[0] })
    const total = [...placed.values()].filter(([p]) => p === partition).length
    let next = 0
    const deadline = Date.now() + WAIT_MS
    while (next < total) {
      if (Date.now() > deadline) fail(`kafkajs: fetch of partition ${partition} stalled at offset ${next}`)
      const response = await broker.fetch({
        maxWaitTime: 100,
        topics: [{ topic, partitions: [{ partition, fetchOffset: String(next), maxBytes: 1048576 }] }],
      })
      const part = response.responses[0].partitions[0]
      if (part.errorCode !== 0) fail(`kafkajs: fetch partition ${partition} error ${part.errorCode}`)
      for (const m of part.messages) {
        const offset = Number(m.offset)
        if (offset < next) continue // a batch may start before the requested offset
        if (offset !== next) fail(`kafkajs: partition ${partition} offset ${offset} after ${next - 1}`)
        const index = atOffset.get(`${partition}/${offset}`)
        const want = expected(index, baseTimestamp)
        const got = {
          key: m.key && m.key.toString(),
          value: m.value && m.value.toString(),
          headers: Object.fromEntries(Object.entries(m.headers || {}).map(([k, v]) => [k, v.toString()])),
          timestamp: m.timestamp,
        }
        if (JSON.stringify(got) !== JSON.stringify(want)) {
          fail(`kafkajs: ${partition}/${offset} is ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`)
        }
        next += 1
        read += 1
      }
    }
  }
  await cluster.disconnect()
  check(read === MESSAGES, `kafkajs: broker.fetch read all ${read} messages in order with matching key, value, headers, timestamp`)
}

async function main() {
  const args = parseArgs()
  const kafka = new Kafka({
    clientId: 'ringlet-kafkajs-check',
    brokers: [args.bootstrap],
    logLevel: logLevel.WARN,
    requestTimeout: WAIT_MS,
    retry: { retries: 10 },
  })
  console.log(`kafkajs ${require('kafkajs/package.json').version}`)
  const admin = kafka.admin()
  await admin.connect()
  await createTopic(admin, args.topic)
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false })
  await producer.connect()
  const placed = await produce(producer, args.topic, args.baseTimestamp)
  await producer.disconnect()
  for (const [index, [partition, offset]] of placed) console.log(`DELIVERED ${index} ${partition} ${offset}`)
  await checkOffsets(admin, args.topic, placed, args.baseTimestamp)
  await fetchAll(kafka, args.topic, placed, args.baseTimestamp)
  await admin.disconnect()
  console.log('ALL CHECKS PASSED')
}

main().catch(err => fail(`unexpected error: ${err && err.stack ? err.stack : err}`))
