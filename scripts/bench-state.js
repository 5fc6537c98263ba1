#!/usr/bin/env node
// State that does not grow with history, measured (`npm run bench:state`; --help for options).
//
// For each size N it places N finished sagas in a namespace of their own, then reports each
// service's RSS at rest, its restart-to-ready time and the saga throughput after the restart.
// The N sagas are not run one by one (1M at a few hundred sagas/s would take an hour): a
// template of real sagas is run through the four services first, and its state rows, as the
// services wrote them, are copied N times onto the state topics under new order ids, each drawn
// on its template's partition (so every row stays where its owner reads it). Then per size:
//   1. cold start: the services start on an empty STATE_DIR and restore everything from the topics;
//   2. --restarts times: every service is stopped (SIGTERM) and started again on its store,
//      timed from spawn to /readyz ready; RSS read from /proc once at rest; then --orders new
//      sagas are placed and the completed sagas/s measured (ordersaga_sagas_finished_total).
// Prints a table per size with min/median/max over the restarts, and a summary of the ratios of
// the largest size to the smallest.
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Partitioners } from 'kafkajs';
// Built by `npm run bench:state` before this runs.
import { allTopics, DEFAULT_PARTITIONS, SERVICE_NAMES, STATE_TOPICS } from '@ordersaga/contracts';
import { consumedOf, ensureTopics, TopicNamer } from '@ordersaga/runtime';
import { benchOptions, BenchRun, median, spread } from './bench-support.js';
import { requireProjectNode } from './node-version.js';

requireProjectNode('npm run bench:state');

const USAGE = `Usage: npm run bench:state -- [--sizes 10000,100000,1000000] [--template 1000]
                             [--restarts 3] [--orders 1000] [--concurrency 50]

  --sizes        finished sagas placed per size, comma separated
  --template     real sagas run first, whose rows are copied (one in ten declined: compensated)
  --restarts     restarts per size (min/median/max over them)
  --orders       sagas placed after each restart to measure the throughput
  --concurrency  orders placed at a time
Uses KAFKA_BROKERS, or starts a broker of its own (scripts/kafka.sh) and stops it at the end.`;

const values = benchOptions(
  USAGE,
  {
    sizes: { type: 'string', default: '10000,100000,1000000' },
    template: { type: 'string', default: '1000' },
    restarts: { type: 'string', default: '3' },
    orders: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '50' },
  },
  ['sizes', 'template', 'restarts', 'orders', 'concurrency'],
);
const SIZES = values.sizes.split(',').map(Number);
const TEMPLATE = Number(values.template);
const RESTARTS = Number(values.restarts);
const ORDERS = Number(values.orders);
const CONCURRENCY = Number(values.concurrency);

const run = new BenchRun('bench:state');
const say = (text) => run.say(text);

/** Places `count` orders (one in ten declined, compensated) and waits for their end; completed sagas/s. */
async function placeOrders(count) {
  const before = await run.sagasFinished();
  const started = Date.now();
  await run.placeOrders(count, { concurrency: CONCURRENCY, declinedEvery: 10 });
  while ((await run.sagasFinished()) < before + count) {
    if (Date.now() - started > 10 * 60_000) throw new Error('sagas not finished after 10 min');
    await sleep(100);
  }
  return count / ((Date.now() - started) / 1000);
}

// ---------------------------------------------------------------- state rows

/** Every state topic read to its end: the latest record of each key, by topic (rows only). */
async function readState(namespace) {
  const namer = new TopicNamer(namespace);
  const rows = new Map();
  for (const topic of Object.keys(STATE_TOPICS)) {
    const latest = new Map();
    rows.set(topic, latest);
    const reader = await run.read([namer.physical(topic)], ({ partition, message }) => {
      // How far the template's services read their topics: nothing to copy.
      if (consumedOf(message)) return;
      const value = message.value === null ? null : message.value.toString();
      latest.set(message.key.toString(), { partition, value });
    });
    await reader.reached();
    await reader.stop();
  }
  return rows;
}

const partitioner = Partitioners.DefaultPartitioner();
const partitionMetadata = Array.from({ length: DEFAULT_PARTITIONS }, (_, partitionId) => ({ partitionId, leader: 0 }));
const partitionOf = (key) => partitioner({ topic: '', partitionMetadata, message: { key, value: null } });

/** A new order id on the given partition, as the services would place it there. */
function orderIdOn(partition) {
  for (;;) {
    const id = crypto.randomUUID();
    if (partitionOf(id) === partition) return id;
  }
}

/**
 * The template's rows, by order (every row whose key holds the order's id) and the others
 * (a SKU's units, a customer's credit), which are written once.
 */
function splitTemplate(rows) {
  const orderIds = [...rows.get('order.state').keys()];
  const byOrder = new Map(orderIds.map((id) => [id, []]));
  const shared = [];
  for (const [topic, latest] of rows)
    for (const [key, { partition, value }] of latest) {
      if (value === null) continue;
      const owner = orderIds.find((id) => key.includes(id));
      if (owner) byOrder.get(owner).push({ topic, key, partition, value });
      else shared.push({ topic, key, partition, value });
    }
  return { orders: [...byOrder], shared };
}

/** N copies of the template's orders (each under a new id on the same partition), then the shared rows. */
async function seed(namespace, template, n) {
  const namer = new TopicNamer(namespace);
  const admin = run.kafka.admin();
  await admin.connect();
  await ensureTopics(admin, namer, allTopics(), 1, { info: () => undefined });
  await admin.disconnect();
  const producer = run.kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  const started = Date.now();
  let batch = new Map();
  let inBatch = 0;
  let written = 0;
  const flush = async () => {
    await producer.sendBatch({ topicMessages: [...batch].map(([topic, messages]) => ({ topic, messages })) });
    written += inBatch;
    batch = new Map();
    inBatch = 0;
  };
  const queue = (topic, message) => {
    const physical = namer.physical(topic);
    if (!batch.has(physical)) batch.set(physical, []);
    batch.get(physical).push(message);
    inBatch++;
  };
  let nextReport = Date.now() + 10_000;
  for (let i = 0; i < n; i++) {
    const [templateId, templateRows] = template.orders[i % template.orders.length];
    const id = orderIdOn(partitionOf(templateId));
    for (const { topic, key, partition, value } of templateRows)
      queue(topic, { key: key.replaceAll(templateId, id), partition, value: value.replaceAll(templateId, id) });
    if (inBatch >= 10_000) await flush();
    if (Date.now() >= nextReport) {
      nextReport += 10_000;
      const rate = written / ((Date.now() - started) / 1000);
      say(`  seeding: ${i + 1}/${n} sagas, ${written} rows (${rate.toFixed(0)} rows/s)`);
    }
  }
  for (const { topic, key, partition, value } of template.shared) queue(topic, { key, partition, value });
  await flush();
  await producer.disconnect();
  return { rows: written, seconds: (Date.now() - started) / 1000 };
}

// ---------------------------------------------------------------- figures

async function measure(n, template) {
  const namespace = `bench${n}-${Date.now().toString(36)}.`;
  say(`${n} finished sagas: seeding namespace ${namespace}`);
  const seeded = await seed(namespace, template, n);
  say(`  seeded ${seeded.rows} rows in ${seeded.seconds.toFixed(0)} s; cold start (stores empty) ...`);
  const cold = await run.startAll(namespace);
  say(`  cold start to ready (s): ${SERVICE_NAMES.map((s) => `${s} ${cold[s].toFixed(1)}`).join(', ')}`);
  const runs = [];
  for (let r = 0; r < RESTARTS; r++) {
    await run.stopAll();
    const ready = await run.startAll(namespace);
    await sleep(5_000);
    const resident = SERVICE_NAMES.map((s) => [s, run.residentMb(s)]);
    const rss = Object.fromEntries(resident.map(([s, r]) => [s, r.rss]));
    const anon = Object.fromEntries(resident.map(([s, r]) => [s, r.anon]));
    const sagasPerSecond = await placeOrders(ORDERS);
    runs.push({ ready, rss, anon, sagasPerSecond });
    say(
      `  restart ${r + 1}: ready (s) ${SERVICE_NAMES.map((s) => `${s} ${ready[s].toFixed(1)}`).join(', ')}; ` +
        `RSS (anonymous) MB ${SERVICE_NAMES.map((s) => `${s} ${rss[s].toFixed(0)} (${anon[s].toFixed(0)})`).join(', ')}; ` +
        `${sagasPerSecond.toFixed(0)} sagas/s`,
    );
  }
  await run.stopAll();
  rmSync(run.stateDir(namespace, ''), { recursive: true, force: true });
  return { n, rows: seeded.rows, cold, runs };
}

function report(results) {
  const lines = [
    '',
    `bench:state: ${RESTARTS} restart(s) per size; min / median / max; ${ORDERS} sagas placed after each restart`,
    '| sagas | rows seeded | service | cold restore to ready (s) | restart to ready (s) | RSS at rest (MB) | of which anonymous (MB) | sagas/s after restart |',
    '|---:|---:|---|---:|---:|---:|---:|---:|',
  ];
  for (const { n, rows, cold, runs } of results)
    for (const s of SERVICE_NAMES) {
      const over = (figure, digits) => spread(runs.map(figure), digits);
      const cells = [n, rows, s, cold[s].toFixed(1), over((r) => r.ready[s], 1), over((r) => r.rss[s], 0)];
      cells.push(
        over((r) => r.anon[s], 0),
        s === 'order' ? over((r) => r.sagasPerSecond, 0) : '',
      );
      lines.push(`| ${cells.join(' | ')} |`);
    }
  if (results.length > 1) {
    const [small, large] = [results[0], results.at(-1)];
    lines.push('', `${large.n} against ${small.n} (median over the restarts):`);
    for (const s of SERVICE_NAMES) {
      const ratio = (key) => median(large.runs.map((r) => r[key][s])) / median(small.runs.map((r) => r[key][s]));
      lines.push(
        `  ${s.padEnd(12)} RSS x${ratio('rss').toFixed(2)} (anonymous x${ratio('anon').toFixed(2)}), ` +
          `restart to ready x${ratio('ready').toFixed(2)}`,
      );
    }
    const throughput =
      median(large.runs.map((r) => r.sagasPerSecond)) / median(small.runs.map((r) => r.sagasPerSecond));
    lines.push(`  sagas/s after restart x${throughput.toFixed(2)}`);
  }
  console.log(lines.join('\n'));
}

// ---------------------------------------------------------------- main

const BROKERS = await run.connect();
let failed = false;
try {
  const templateNs = `benchtemplate-${Date.now().toString(36)}.`;
  say(`Kafka at ${BROKERS}; template: ${TEMPLATE} real sagas in namespace ${templateNs} ...`);
  await run.startAll(templateNs);
  await placeOrders(TEMPLATE);
  await run.stopAll();
  const template = splitTemplate(await readState(templateNs));
  const rowsPerSaga = template.orders.reduce((sum, [, rows]) => sum + rows.length, 0) / template.orders.length;
  say(
    `  template: ${template.orders.length} sagas, ${rowsPerSaga.toFixed(1)} rows each, ${template.shared.length} shared rows`,
  );
  const results = [];
  for (const n of SIZES) results.push(await measure(n, template));
  report(results);
} catch (err) {
  failed = true;
  console.error(`bench:state failed: ${err.stack ?? err}`);
} finally {
  await run.cleanUp();
}
process.exit(failed ? 1 : 0);
