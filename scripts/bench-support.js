// What the benchmarks (bench.js, bench-state.js) share: a broker of their own unless
// KAFKA_BROKERS is set, the four services as processes with their resident memory and CPU,
// orders placed over HTTP, and min/median/max.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
// Built by the npm script before this runs.
import { COMPONENTS, SERVICE_NAMES } from '@ordersaga/contracts';
import { ReadPosition } from '@ordersaga/runtime';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const KAFKA_SH = join(ROOT, 'scripts', 'kafka.sh');
/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

// Stock and credit enough for every saga; bob cannot pay (his orders are declined, compensated).
const SERVICE_ENV = {
  STOCK_CATALOG: JSON.stringify({ 'KB-001': { quantity: 1_000_000_000, price: 4_990 } }),
  BILLING_ACCOUNTS: JSON.stringify({ alice: 1_000_000_000_000, bob: 0 }),
  LOG_LEVEL: 'warn',
  // The saga version to measure (1 unless SAGA_VERSION says: 2 asks Billing first, one more round trip).
  ...(process.env.SAGA_VERSION ? { SAGA_VERSION: process.env.SAGA_VERSION } : {}),
};

/**
 * A benchmark's options (parseArgs' `options`, and -h/--help printing `usage`); those named in
 * `integers` must be positive integers (or comma lists of them).
 */
export function benchOptions(usage, options, integers) {
  const { values } = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h', default: false } } });
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const positive = (n) => Number.isInteger(Number(n)) && Number(n) >= 1;
  const wrong = integers.filter((name) => !String(values[name]).split(',').every(positive));
  if (wrong.length > 0) {
    console.error(`${wrong.map((name) => `--${name}`).join(', ')}: positive integers only\n\n${usage}`);
    process.exit(2);
  }
  return values;
}

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
export const spread = (xs, digits) =>
  `${Math.min(...xs).toFixed(digits)} / ${median(xs).toFixed(digits)} / ${Math.max(...xs).toFixed(digits)}`;

export async function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function kafkaSh(command, env) {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [KAFKA_SH, command], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`kafka.sh ${command} exited ${code}`))));
  });
}

/** CPU seconds a process has used so far (user + system), from /proc. */
export function cpuSeconds(pid) {
  // The fields after the command (which may hold spaces) start after its closing parenthesis.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}

/**
 * One benchmark run: a work directory, a broker (its own, or KAFKA_BROKERS), the services it
 * starts, and the clean-up of all of them on the way out, Ctrl-C included.
 */
export class BenchRun {
  /** A running service, by name: its process, port and how it ended. */
  running = new Map();

  constructor(name) {
    this.name = name;
    this.workDir = mkdtempSync(join(tmpdir(), `ordersaga-${name.replace(/[^a-z0-9]+/gi, '-')}-`));
    this.brokerEnv = { KAFKA_PORT: process.env.KAFKA_PORT ?? '29500', KAFKA_DATA_DIR: join(this.workDir, 'kafka') };
    this.ownBroker = !process.env.KAFKA_BROKERS;
    for (const signal of ['SIGINT', 'SIGTERM'])
      process.once(signal, () => {
        this.say(`${signal}: stopping`);
        void this.cleanUp().finally(() => process.exit(130));
      });
  }

  say(text) {
    console.log(`[${this.name} ${new Date().toISOString().slice(11, 19)}] ${text}`);
  }

  async connect() {
    this.brokers = this.ownBroker
      ? /KAFKA_BROKERS=(\S+)/.exec(await kafkaSh('start', this.brokerEnv))[1]
      : process.env.KAFKA_BROKERS;
    this.kafka = new Kafka({ clientId: this.name, brokers: this.brokers.split(','), logLevel: logLevel.NOTHING });
    return this.brokers;
  }

  /**
   * A read-committed reader of `topics` from their start, calling `onRecord({ topic, partition,
   * message })`; `reached()` resolves once everything committed to them before it was called is read.
   */
  async read(topics, onRecord) {
    const consumer = this.kafka.consumer({ groupId: `${this.name}-reader-${randomUUID()}`, maxWaitTimeInMs: 50 });
    const position = new ReadPosition(consumer);
    await consumer.connect();
    for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ autoCommit: false, eachMessage: async (record) => onRecord(record) });
    const admin = this.kafka.admin();
    await admin.connect();
    return {
      reached: async () => {
        for (const topic of topics) await position.reached(admin, topic, 120_000);
      },
      stop: async () => {
        await admin.disconnect();
        await consumer.disconnect();
      },
    };
  }

  /** The broker's process, when it is this run's (its CPU is measured too). */
  brokerPid() {
    if (!this.ownBroker) return undefined;
    return Number(readFileSync(join(this.brokerEnv.KAFKA_DATA_DIR, 'kafka.pid'), 'utf8'));
  }

  /** Starts a service on namespace's topics; resolves with the seconds from spawn to ready. */
  async startService(name, namespace, { profileDir } = {}) {
    const port = await freePort();
    // A CPU profile (V8's sampling profiler) written into profileDir when the service exits.
    const profile = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, name)}`] : [];
    const main = join(ROOT, COMPONENTS[name].workspace, 'dist', 'main.js');
    const child = spawn(process.execPath, [...profile, main], {
      env: {
        PATH: process.env.PATH,
        ...SERVICE_ENV,
        KAFKA_BROKERS: this.brokers,
        ORDERSAGA_NAMESPACE: namespace,
        PORT: String(port),
        STATE_DIR: this.stateDir(namespace, name),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // The log (warnings and errors, on stdout) and stderr: their tail says why a start failed.
    let output = '';
    const keep = (chunk) => (output = (output + chunk).slice(-4_000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const exited = new Promise((resolve) => child.on('close', resolve));
    this.running.set(name, { child, port, exited });
    const started = Date.now();
    for (;;) {
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) return (Date.now() - started) / 1000;
      if (child.exitCode !== null) {
        await exited;
        throw new Error(`${name} exited (${child.exitCode}) during start-up:\n${output}`);
      }
      if (Date.now() - started > 30 * 60_000) throw new Error(`${name} not ready after 30 min`);
      await sleep(50);
    }
  }

  /**
   * Every service (the registry's first alone, then the others together): seconds to ready, by
   * name. `profileDir`: each writes a CPU profile there when it stops.
   */
  async startAll(namespace, options = {}) {
    const [first, ...others] = SERVICE_NAMES;
    const times = { [first]: await this.startService(first, namespace, options) };
    const rest = await Promise.all(others.map((name) => this.startService(name, namespace, options)));
    others.forEach((name, i) => (times[name] = rest[i]));
    return times;
  }

  async stopAll() {
    for (const { child } of this.running.values()) child.kill('SIGTERM');
    await Promise.all([...this.running.values()].map(({ exited }) => exited));
    this.running.clear();
  }

  stateDir(namespace, name) {
    return join(this.workDir, 'state', namespace, name);
  }

  pid(name) {
    return this.running.get(name).child.pid;
  }

  /** Resident memory (MB): in all, and its anonymous part (heaps; the rest is mostly store pages mapped). */
  residentMb(name) {
    const status = readFileSync(`/proc/${this.pid(name)}/status`, 'utf8');
    const kB = (field) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)[1]);
    return { rss: kB('VmRSS') / 1024, anon: kB('RssAnon') / 1024 };
  }

  get api() {
    return `http://127.0.0.1:${this.running.get('order').port}`;
  }

  /**
   * Places `count` orders, `concurrency` at a time, at `rate` per second if given; every
   * `declinedEvery`-th by bob (declined, compensated). `onPlaced(orderId, sentAt)` for each.
   */
  async placeOrders(count, { concurrency = 50, rate = Infinity, declinedEvery = 0, onPlaced = () => {} } = {}) {
    const started = Date.now();
    let next = 0;
    const placer = async () => {
      while (next < count) {
        const n = next++;
        const due = started + (n * 1000) / rate;
        if (due > Date.now()) await sleep(due - Date.now());
        const customerId = declinedEvery > 0 && n % declinedEvery === declinedEvery - 1 ? 'bob' : 'alice';
        const body = JSON.stringify({ customerId, items: [{ sku: 'KB-001', quantity: 1 }] });
        for (;;) {
          const sentAt = Date.now();
          const response = await fetch(`${this.api}/orders`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
          });
          if (response.status === 202) {
            onPlaced((await response.json()).orderId, sentAt);
            break;
          }
          if (response.status !== 503)
            throw new Error(`POST /orders answered ${response.status}: ${await response.text()}`);
          await sleep(100);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, placer));
  }

  /** The sagas the order service has finished (its ordersaga_sagas_finished_total, every outcome). */
  async sagasFinished() {
    const text = await fetch(`${this.api}/metrics`).then((r) => r.text());
    let sum = 0;
    for (const line of text.split('\n'))
      if (line.startsWith('ordersaga_sagas_finished_total')) sum += Number(line.split(' ').pop());
    return sum;
  }

  /** The services killed, the broker stopped if it is this run's, the work directory removed. */
  async cleanUp() {
    for (const { child } of this.running.values()) child.kill('SIGKILL');
    if (this.ownBroker) await kafkaSh('stop', this.brokerEnv).catch(() => undefined);
    rmSync(this.workDir, { recursive: true, force: true });
  }
}
