#!/usr/bin/env node
// A quick load against a running stack (npm start): places N orders, C at a time, waits until
// every saga has ended, and prints completed sagas/s and saga latency percentiles (from the
// order's own timestamps: placed -> confirmed/failed). A figure to watch, not a benchmark.
// With --rate, orders are placed at that pace (per second) instead of as fast as possible.
// With --mix, some orders fail on purpose (every 10th by bob, who cannot pay: a compensation;
// every 20th for SKU SOLD-OUT, which the catalogue does not hold), so dashboards show every
// outcome.
//
//   node scripts/quick-load.js [--orders 500] [--concurrency 50] [--sku KB-001] [--customer alice]
//     [--rate 50] [--mix] [--api http://127.0.0.1:3000]
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    orders: { type: 'string', default: '500' },
    concurrency: { type: 'string', default: '50' },
    sku: { type: 'string', default: 'KB-001' },
    customer: { type: 'string', default: 'alice' },
    rate: { type: 'string' },
    mix: { type: 'boolean', default: false },
    api: { type: 'string', default: 'http://127.0.0.1:3000' },
  },
});
const total = Number(values.orders);
const concurrency = Number(values.concurrency);
const rate = values.rate === undefined ? Infinity : Number(values.rate);
const bodyOf = (n) => {
  const declined = values.mix && n % 10 === 9;
  const outOfStock = values.mix && n % 20 === 4;
  return JSON.stringify({
    customerId: declined ? 'bob' : values.customer,
    items: [{ sku: outOfStock ? 'SOLD-OUT' : values.sku, quantity: 1 }],
  });
};

const started = Date.now();
const ids = [];
let next = 0;
async function placer() {
  while (next < total) {
    const n = next++;
    const due = started + (n * 1000) / rate;
    if (due > Date.now()) await sleep(due - Date.now());
    const body = bodyOf(n);
    const response = await fetch(`${values.api}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    if (response.status !== 202) throw new Error(`POST /orders answered ${response.status}: ${await response.text()}`);
    ids.push((await response.json()).orderId);
  }
}
await Promise.all(Array.from({ length: concurrency }, placer));
const placedIn = Date.now() - started;
console.log(`placed ${total} orders in ${placedIn} ms (${((total * 1000) / placedIn).toFixed(0)} orders/s accepted)`);

const finished = new Map();
let lastReport = Date.now();
while (finished.size < ids.length) {
  for (const id of ids) {
    if (finished.has(id)) continue;
    const order = await (await fetch(`${values.api}/orders/${id}`)).json();
    if (order.status === 'CONFIRMED' || order.status === 'FAILED') finished.set(id, order);
  }
  if (Date.now() - lastReport > 2_000) {
    console.log(`  ${finished.size}/${ids.length} sagas ended`);
    lastReport = Date.now();
  }
  if (finished.size < ids.length) await sleep(100);
  if (Date.now() - started > 300_000) throw new Error(`only ${finished.size}/${ids.length} sagas ended in 5 minutes`);
}

const orders = [...finished.values()];
const ends = orders.map((o) => Date.parse(o.updatedAt));
const firstPlaced = Math.min(...orders.map((o) => Date.parse(o.placedAt)));
const wall = Math.max(...ends) - firstPlaced;
const latencies = orders.map((o) => Date.parse(o.updatedAt) - Date.parse(o.placedAt)).sort((a, b) => a - b);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
const outcomes = orders.reduce((acc, o) => ({ ...acc, [o.status]: (acc[o.status] ?? 0) + 1 }), {});
console.log(
  `${orders.length} sagas ended in ${wall} ms: ${((orders.length * 1000) / wall).toFixed(1)} sagas/s`,
  outcomes,
);
console.log(`saga latency ms: p50 ${pct(50)}  p90 ${pct(90)}  p99 ${pct(99)}  max ${latencies.at(-1)}`);
