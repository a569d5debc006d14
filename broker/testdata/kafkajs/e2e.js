// KafkaJS (a pure-JavaScript Kafka client) against a Gregor broker, run by
// broker/e2e_kafkajs_test.go with GREGOR_BROKERS set. It creates a topic,
// produces with an idempotent gzip producer, reads everything back with a
// two-member consumer group that commits, checks the committed offsets,
// deletes records and lists the start offsets. It prints one line per
// step and exits non-zero on the first failure.
'use strict'
const { Kafka, CompressionTypes, logLevel } = require('kafkajs')

const brokers = (process.env.GREGOR_BROKERS || '').split(',').filter(Boolean)
if (brokers.length === 0) {
  console.error('GREGOR_BROKERS is not set')
  process.exit(2)
}
const kafka = new Kafka({ clientId: 'gregor-kafkajs-e2e', brokers, logLevel: logLevel.ERROR, retry: { retries: 8 } })
const topic = 'kafkajs-e2e'
const group = 'kafkajs-e2e-group'
const partitions = 3
const perPartition = 200

function check (ok, what) {
  if (!ok) throw new Error(what)
}

async function main () {
  const admin = kafka.admin()
  await admin.connect()
  check(await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true }), 'createTopics created nothing')
  const described = await admin.describeConfigs({ resources: [{ type: 2, name: topic }], includeSynonyms: false })
  check(described.resources[0].errorCode === 0, 'describeConfigs failed')
  console.log('admin: created', topic)

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  for (let p = 0; p < partitions; p++) {
    const messages = []
    for (let i = 0; i < perPartition; i++) {
      messages.push({ partition: p, key: `k-${p}-${i}`, value: `v-${p}-${i}`, headers: { seq: String(i) } })
    }
    await producer.send({ topic, compression: CompressionTypes.GZIP, acks: -1, messages })
  }
  await producer.disconnect()
  console.log('producer: sent', partitions * perPartition)

  const seen = new Map() // "p/offset" -> value
  let duplicates = 0
  const consumers = [kafka.consumer({ groupId: group }), kafka.consumer({ groupId: group })]
  for (const c of consumers) {
    await c.connect()
    await c.subscribe({ topic, fromBeginning: true })
  }
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out with ${seen.size} records read`)), 60000)
    for (const c of consumers) {
      c.run({
        eachMessage: async ({ partition, message }) => {
          const k = `${partition}/${message.offset}`
          if (seen.has(k)) duplicates++
          seen.set(k, message.value.toString())
          check(message.headers.seq.toString() === message.offset, `header seq ${message.headers.seq} at offset ${message.offset}`)
          if (seen.size === partitions * perPartition) {
            clearTimeout(timer)
            resolve()
          }
        }
      }).catch(reject)
    }
  })
  await done
  for (const c of consumers) await c.disconnect() // commits what was read
  for (let p = 0; p < partitions; p++) {
    for (let i = 0; i < perPartition; i++) {
      check(seen.get(`${p}/${i}`) === `v-${p}-${i}`, `partition ${p} offset ${i}: ${seen.get(`${p}/${i}`)}`)
    }
  }
  console.log('consumers: read', seen.size, 'duplicates', duplicates)

  const committed = await admin.fetchOffsets({ groupId: group, topics: [topic] })
  for (const { partition, offset } of committed[0].partitions) {
    check(offset === String(perPartition), `committed offset of partition ${partition}: ${offset}`)
  }
  console.log('admin: committed offsets at', perPartition)

  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '50' }] })
  const starts = await admin.fetchTopicOffsets(topic)
  const p0 = starts.find(s => s.partition === 0)
  check(p0.low === '50' && p0.high === String(perPartition), `partition 0 after deleteTopicRecords: ${JSON.stringify(p0)}`)
  console.log('admin: deleted records below 50')
  await admin.disconnect()
}

main().then(() => console.log('ok'), err => {
  console.error('FAIL:', err && err.stack || err)
  process.exit(1)
})
