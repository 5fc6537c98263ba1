#!/usr/bin/env node
// Throughput against the Kafka ceiling (`npm run bench`; --help for options). Each repetition,
// on one broker (its own, or KAFKA_BROKERS), in a namespace of its own:
//   S    completed sagas/s at saturation, all confirmed (after 1,000 sagas of warm-up; 4,000 in
//        the first repetition, on a broker just started): --orders placed as fast as
//        --concurrency allows, their ends counted as a reader of order.confirmed/order.failed
//        sees them;
//        CPU per process (services and the broker) over that phase; the records every topic got,
//        per saga; the hops of a saga (its causation chain, order.placed to order.confirmed);
//   lat  saga latency p50/p99 (POST sent -> order.confirmed read) at 5/s and at half of S;
//   S20  S with one order in five declined (compensated);
//   H    the consume -> produce hop ceiling of the product's own code without the product: the
//        runtime's Transactions (its producers, transactional ids per partition, how far it has
//        read in the transaction, on a state topic) relaying records copied from this run's saga
//        topics, records/s; and the
//        single-hop latency p50/p99 (produced -> relayed record read) at 50 records/s.
// Prints min/median/max over the repetitions, the ratios S x records-per-saga / H and
// p50 / (hops x hop p50), and writes the figures as JSON (--out). --profile: the services of the
// last repetition run under V8's CPU profiler, and their top functions by self time are printed.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
// Built by `npm run bench` before this runs.
import { allTopics, SAGA_TOPICS, SERVICE_NAMES } from '@ordersaga/contracts';
import { consumedRecord, createLogger, ensureTopics, TopicNamer, Transactions } from '@ordersaga/runtime';
import { benchOptions, BenchRun, cpuSeconds, median, spread } from './bench-support.js';
import { requireProjectNode } from './node-version.js';

requireProjectNode('npm run bench');

const USAGE = `Usage: npm run bench -- [--repetitions 3] [--orders 3000] [--concurrency 100]
                     [--relay-records 20000] [--out bench-results.json] [--profile]

  --repetitions    repetitions of every phase (min/median/max over them)
  --orders         sagas placed for each saturation phase
  --concurrency    orders placed at a time at saturation
  --relay-records  records relayed to measure the hop ceiling H
  --out            where the figures are written as JSON
  --profile        CPU-profile the services in the last repetition; print their top functions
Uses KAFKA_BROKERS, or starts a broker of its own (scripts/kafka.sh) and stops it at the end.
The sagas run on saga version SAGA_VERSION (1 by default).`;

const values = benchOptions(
  USAGE,
  {
    repetitions: { type: 'string', default: '3' },
    orders: { type: 'string', default: '3000' },
    concurrency: { type: 'string', default: '100' },
    'relay-records': { type: 'string', default: '20000' },
    out: { type: 'string', default: 'bench-results.json' },
    profile: { type: 'boolean', default: false },
  },
  ['repetitions', 'orders', 'concurrency', 'relay-records'],
);
const REPETITIONS = Number(values.repetitions);
const ORDERS = Number(values.orders);
const CONCURRENCY = Number(values.concurrency);
const RELAY_RECORDS = Number(values['relay-records']);
/** Sagas run before any figure is taken. */
const WARM_UP_ORDERS = 1_000;
/** The first repetition's warm-up: a broker just started (its JVM not yet compiled hot) needs more. */
const FIRST_WARM_UP_ORDERS = 4_000;
/** How long each latency phase places orders (or relays records) at its pace. */
const PACED_SECONDS = 15;
const TERMINAL = ['order.confirmed', 'order.failed'];
const PARTITIONS = allTopics()[0].partitions;

const run = new BenchRun('bench');
const say = (text) => run.say(text);
const quiet = createLogger('bench');
quiet.level = 'error';

const percentile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

/** Watches the terminal topics: when each order's end was read, and how it ended. */
async function watchEnds(namer) {
  const ends = new Map();
  const watcher = await run.read(
    TERMINAL.map((t) => namer.physical(t)),
    ({ topic, message }) => ends.set(message.key.toString(), { at: Date.now(), topic: namer.logical(topic) }),
  );
  return { ends, stop: () => watcher.stop() };
}

async function waitFor(ends, ids, what) {
  const deadline = Date.now() + 10 * 60_000;
  while (ids.some((id) => !ends.has(id))) {
    if (Date.now() > deadline) throw new Error(`${what}: sagas not ended after 10 min`);
    await sleep(20);
  }
}

/** CPU cores each process used while `work` ran. */
async function cpuDuring(work) {
  const pids = Object.fromEntries(SERVICE_NAMES.map((s) => [s, run.pid(s)]));
  const broker = run.brokerPid();
  if (broker) pids.broker = broker;
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)]));
  const started = Date.now();
  const result = await work();
  const seconds = (Date.now() - started) / 1000;
  const cores = Object.fromEntries(
    Object.entries(pids).map(([name, pid]) => [name, (cpuSeconds(pid) - before[name]) / seconds]),
  );
  return { result, cores };
}

/** Sagas at saturation: completed sagas/s from the first order sent to the last end read. */
async function saturation(ends, declinedEvery) {
  const ids = [];
  let first;
  const { result: perSecond, cores } = await cpuDuring(async () => {
    await run.placeOrders(ORDERS, {
      concurrency: CONCURRENCY,
      declinedEvery,
      onPlaced: (id, sentAt) => {
        first ??= sentAt;
        ids.push(id);
      },
    });
    await waitFor(ends, ids, 'saturation');
    const last = Math.max(...ids.map((id) => ends.get(id).at));
    return ids.length / ((last - first) / 1000);
  });
  const confirmed = ids.filter((id) => ends.get(id).topic === 'order.confirmed').length;
  return { perSecond, cores, confirmed, ids };
}

/** Saga latency (POST sent -> its end read) at `rate` orders/s. */
async function latency(ends, rate) {
  const sent = new Map();
  await run.placeOrders(Math.max(10, Math.round(rate * PACED_SECONDS)), {
    concurrency: 50,
    rate,
    onPlaced: (id, sentAt) => sent.set(id, sentAt),
  });
  await waitFor(ends, [...sent.keys()], `latency at ${rate}/s`);
  const ms = [...sent].map(([id, at]) => ends.get(id).at - at);
  return { p50: percentile(ms, 0.5), p99: percentile(ms, 0.99) };
}

/** Records every topic of the namespace holds, per saga; and a sample of the saga records, with a saga's hops. */
async function recordsOf(namer, sagas, confirmedId) {
  const topics = allTopics()
    .filter((t) => !t.name.endsWith('.dlt'))
    .map((t) => namer.physical(t.name));
  let records = 0;
  const byTopic = {};
  const sample = [];
  const envelopes = new Map();
  const all = await run.read(topics, ({ topic, message }) => {
    records++;
    const logical = namer.logical(topic);
    byTopic[logical] = (byTopic[logical] ?? 0) + 1;
    if (!(logical in SAGA_TOPICS) || message.value === null) return;
    if (sample.length < 2_000) sample.push({ key: message.key, value: message.value, headers: message.headers });
    const envelope = JSON.parse(message.value.toString());
    if (envelope.orderId === confirmedId) envelopes.set(envelope.id, envelope);
  });
  await all.reached();
  await all.stop();
  // The causation chain of the confirmed saga's end: each message caused by the one before.
  let hops = 0;
  let at = [...envelopes.values()].find((e) => e.type === 'order.confirmed');
  while (at?.causationId && envelopes.has(at.causationId)) {
    hops++;
    at = envelopes.get(at.causationId);
  }
  const perTopic = Object.fromEntries(Object.entries(byTopic).map(([t, n]) => [t, Number((n / sagas).toFixed(2))]));
  return { perSaga: records / sagas, perTopic, hops, sample };
}

/** The hop ceiling: records relayed by the runtime's Transactions, as a task of the product commits them. */
async function relay(namespace, sample) {
  const namer = new TopicNamer(namespace);
  const [input, output, state] = ['relay.in', 'relay.out', 'relay.state'].map((t) => namer.physical(t));
  const admin = run.kafka.admin();
  await admin.connect();
  await ensureTopics(
    admin,
    namer,
    [
      { name: 'relay.in', partitions: PARTITIONS, config: {} },
      { name: 'relay.out', partitions: PARTITIONS, config: {} },
      { name: 'relay.state', partitions: PARTITIONS, config: { 'cleanup.policy': 'compact' } },
    ],
    1,
    quiet,
  );
  await admin.disconnect();
  const producer = run.kafka.producer();
  await producer.connect();
  // Batches well under the broker's largest message (1 MB), product records being ~0.5-1 KB.
  for (let i = 0; i < RELAY_RECORDS; i += 500) {
    const messages = Array.from(
      { length: Math.min(500, RELAY_RECORDS - i) },
      (_, j) => sample[(i + j) % sample.length],
    );
    await producer.send({ topic: input, messages });
  }

  const group = namer.id('relay');
  const transactions = new Transactions(run.kafka, group, quiet);
  const consumer = run.kafka.consumer({ groupId: group, readUncommitted: false, maxWaitTimeInMs: 500 });
  await consumer.connect();
  await consumer.subscribe({ topic: input, fromBeginning: true });
  let relayed = 0;
  // As the processor does: the partitions' tasks opened (their ids fenced) before their work.
  let tasksReady = Promise.resolve();
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    tasksReady = transactions.assign(new Set(Object.values(payload.memberAssignment).flat()));
  });
  const started = Date.now();
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: PARTITIONS,
    eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
      if (batch.isEmpty()) return;
      await tasksReady;
      const messages = batch.messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers }));
      // How far the input is relayed goes with the output, on a state topic, as the product's does.
      const consumed = consumedRecord(batch.partition, { [input]: Number(batch.lastOffset()) + 1 });
      await transactions.commit(
        batch.partition,
        new Map([
          [output, messages],
          [state, [consumed]],
        ]),
      );
      resolveOffset(batch.lastOffset());
      relayed += messages.length;
      await heartbeat();
    },
  });
  while (relayed < RELAY_RECORDS) {
    if (Date.now() - started > 10 * 60_000) throw new Error('relay: not done after 10 min');
    await sleep(20);
  }
  const perSecond = RELAY_RECORDS / ((Date.now() - started) / 1000);

  // One hop at a gentle pace: produced -> relayed -> read.
  const arrived = new Map();
  const out = await run.read([output], ({ message }) => {
    const sentAt = message.headers['bench-sent-at'];
    if (sentAt) arrived.set(sentAt.toString(), Date.now());
  });
  const sent = [];
  for (let i = 0; i < 50 * PACED_SECONDS; i++) {
    const at = Date.now();
    const record = sample[i % sample.length];
    await producer.send({
      topic: input,
      messages: [{ ...record, headers: { ...record.headers, 'bench-sent-at': `${at}-${i}` } }],
    });
    sent.push(`${at}-${i}`);
    await sleep(Math.max(0, at + 20 - Date.now()));
  }
  const deadline = Date.now() + 60_000;
  while (sent.some((s) => !arrived.has(s)) && Date.now() < deadline) await sleep(20);
  const ms = sent.filter((s) => arrived.has(s)).map((s) => arrived.get(s) - Number(s.split('-')[0]));
  await out.stop();
  await consumer.disconnect();
  await transactions.disconnect();
  await producer.disconnect();
  return { perSecond, p50: percentile(ms, 0.5), p99: percentile(ms, 0.99) };
}

async function repetition(r) {
  const namespace = `bench${r}-${Date.now().toString(36)}.`;
  const namer = new TopicNamer(namespace);
  say(`repetition ${r}/${REPETITIONS}: starting the services in ${namespace}`);
  const profileDir = values.profile && r === REPETITIONS ? join(run.workDir, 'profiles') : undefined;
  await run.startAll(namespace, { profileDir });
  const { ends, stop } = await watchEnds(namer);
  // Not measured: the first sagas open the transactions, fetch sessions and connections.
  const warmUp = [];
  const warmUpOrders = r === 1 ? FIRST_WARM_UP_ORDERS : WARM_UP_ORDERS;
  await run.placeOrders(warmUpOrders, { concurrency: CONCURRENCY, onPlaced: (id) => warmUp.push(id) });
  await waitFor(ends, warmUp, 'warm-up');
  say(`  S: ${ORDERS} orders, ${CONCURRENCY} at a time ...`);
  const s = await saturation(ends, 0);
  if (s.confirmed !== ORDERS) throw new Error(`S: ${ORDERS - s.confirmed} of ${ORDERS} sagas not confirmed`);
  say(`  S = ${s.perSecond.toFixed(0)} sagas/s; counting the records of every topic ...`);
  const records = await recordsOf(namer, warmUpOrders + ORDERS, s.ids[0]);
  say(`  ${records.perSaga.toFixed(1)} records per saga, ${records.hops} hops; latency at 5/s ...`);
  const idle = await latency(ends, 5);
  const half = Math.max(5, Math.round(s.perSecond / 2));
  say(`  p50 ${idle.p50} ms, p99 ${idle.p99} ms; latency at ${half}/s (half of S) ...`);
  const loaded = await latency(ends, half);
  say(`  p50 ${loaded.p50} ms, p99 ${loaded.p99} ms; S with 20% declined ...`);
  const declined = await saturation(ends, 5);
  say(`  S20 = ${declined.perSecond.toFixed(0)} sagas/s; the hop ceiling H ...`);
  await stop();
  await run.stopAll();
  if (profileDir) printProfiles(profileDir);
  const hop = await relay(namespace, records.sample);
  say(`  H = ${hop.perSecond.toFixed(0)} records/s, hop p50 ${hop.p50} ms, p99 ${hop.p99} ms`);
  return {
    sagasPerSecond: s.perSecond,
    cores: s.cores,
    recordsPerSaga: records.perSaga,
    recordsPerSagaByTopic: records.perTopic,
    hops: records.hops,
    idle,
    loaded: { rate: half, ...loaded },
    declinedSagasPerSecond: declined.perSecond,
    hop,
  };
}

/** Where each service spent its CPU (self time), from the profiles V8 wrote when it stopped. */
function printProfiles(dir) {
  for (const service of SERVICE_NAMES) {
    const files = readdirSync(join(dir, service)).filter((f) => f.endsWith('.cpuprofile'));
    const { nodes, samples, startTime, endTime } = JSON.parse(readFileSync(join(dir, service, files[0]), 'utf8'));
    const perSample = (endTime - startTime) / 1000 / samples.length; // ms
    const byFunction = new Map();
    for (const { callFrame, hitCount } of nodes) {
      const where = callFrame.url
        ? `${callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(services|operator)\//, '$1/')}:${callFrame.lineNumber + 1}`
        : '';
      const name = `${callFrame.functionName || '(anonymous)'} ${where}`.trim();
      byFunction.set(name, (byFunction.get(name) ?? 0) + hitCount);
    }
    const busy = samples.length - (byFunction.get('(idle)') ?? 0);
    const top = [...byFunction]
      .filter(([name]) => name !== '(idle)')
      .sort(([, a], [, b]) => b - a)
      .slice(0, 12);
    console.log(
      `\nCPU profile of ${service}: ${((busy * perSample) / 1000).toFixed(1)} s busy; top functions by self time:`,
    );
    for (const [name, hits] of top) console.log(`  ${((100 * hits) / busy).toFixed(1).padStart(5)}%  ${name}`);
  }
}

function report(reps) {
  const over = (figure, digits = 0) => spread(reps.map(figure), digits);
  const mid = (figure) => median(reps.map(figure));
  const processes = Object.keys(reps[0].cores);
  const lines = [
    '',
    `bench: ${REPETITIONS} repetition(s), min / median / max; ${cpus().length} cores (${cpus()[0].model}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node.js ${process.version}`,
    '| figure | value |',
    '|---|---:|',
    `| S: completed sagas/s at saturation (all confirmed) | ${over((r) => r.sagasPerSecond)} |`,
    `| S20: with 20% declined | ${over((r) => r.declinedSagasPerSecond)} |`,
    `| records per saga (every topic) | ${over((r) => r.recordsPerSaga, 1)} |`,
    `| hops of a saga (order.placed to order.confirmed) | ${over((r) => r.hops)} |`,
    `| saga p50 / p99 at 5/s (ms) | ${over((r) => r.idle.p50)} · ${over((r) => r.idle.p99)} |`,
    `| saga p50 / p99 at half of S (ms) | ${over((r) => r.loaded.p50)} · ${over((r) => r.loaded.p99)} |`,
    `| H: hop ceiling, records/s | ${over((r) => r.hop.perSecond)} |`,
    `| single hop p50 / p99 (ms) | ${over((r) => r.hop.p50)} · ${over((r) => r.hop.p99)} |`,
    ...processes.map((p) => `| CPU at saturation, ${p} (cores) | ${over((r) => r.cores[p], 2)} |`),
    '',
    `S x records per saga / H = ${((mid((r) => r.sagasPerSecond) * mid((r) => r.recordsPerSaga)) / mid((r) => r.hop.perSecond)).toFixed(2)}` +
      ` (target >= 0.8); p50 at 5/s / (hops x hop p50) = ${(mid((r) => r.idle.p50) / (mid((r) => r.hops) * mid((r) => r.hop.p50))).toFixed(2)}` +
      ` (target <= 1.5); S20 / S = ${(mid((r) => r.declinedSagasPerSecond) / mid((r) => r.sagasPerSecond)).toFixed(2)} (target >= 0.8)`,
  ];
  const byTopic = Object.entries(reps[0].recordsPerSagaByTopic).sort(([, a], [, b]) => b - a);
  lines.push(`records per saga by topic (repetition 1): ${byTopic.map(([t, n]) => `${t} ${n}`).join(', ')}`);
  console.log(lines.join('\n'));
}

let failed = false;
try {
  say(`Kafka at ${await run.connect()}`);
  const reps = [];
  for (let r = 1; r <= REPETITIONS; r++) reps.push(await repetition(r));
  report(reps);
  const machine = {
    cores: cpus().length,
    cpu: cpus()[0].model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  };
  writeFileSync(
    values.out,
    `${JSON.stringify({ at: new Date().toISOString(), machine, options: { orders: ORDERS, concurrency: CONCURRENCY, relayRecords: RELAY_RECORDS }, repetitions: reps }, null, 2)}\n`,
  );
  say(`figures written to ${values.out}`);
} catch (err) {
  failed = true;
  console.error(`bench failed: ${err.stack ?? err}`);
} finally {
  await run.cleanUp();
}
process.exit(failed ? 1 : 0);
