#!/usr/bin/env node
// Runs the whole saga locally: a Kafka broker (unless KAFKA_BROKERS is set), then the services of
// the component registry (services/contracts), with their logs on one terminal, until Ctrl-C.
// Run `node scripts/run-local.js --help`, or `npm start` (which builds first).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
// Built by `npm start` before this runs.
import { COMPONENTS, SERVICE_NAMES } from '@ordersaga/contracts';
import { requireProjectNode } from './node-version.js';

requireProjectNode('npm start');

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const KAFKA_SH = join(ROOT, 'scripts', 'kafka.sh');
// In the registry's order: the first is started alone, the others once it is ready.
const SERVICES = SERVICE_NAMES.map((name) => ({ name, ...COMPONENTS[name] }));
const HOST = process.env.HOST || '127.0.0.1';
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;
const PREFIX_WIDTH = Math.max(...SERVICES.map((s) => s.name.length));

const USAGE = `Usage: node scripts/run-local.js [--json]      (npm start: build, then this)

Runs ordersaga locally: a Kafka broker started with scripts/kafka.sh (unless
KAFKA_BROKERS is set), then the ${SERVICES[0].name} service, then ${SERVICES.slice(1)
  .map((s) => s.name)
  .join(', ')},
and prints their logs until Ctrl-C (or SIGTERM), which stops them all, and the
broker if this script started it. Ctrl-C twice forces.

Options:
  --json       print the services' log lines as raw JSON (or LOG_FORMAT=json);
               by default they are rendered as "HH:MM:SS LEVEL message"
  -h, --help   show this help

Environment:
  KAFKA_BROKERS  use this Kafka (comma list) instead of starting one; never stopped
  KAFKA_PORT     port of the broker started with scripts/kafka.sh (default 9092)
  HOST           address the services listen on (default 127.0.0.1)
  Ports: ${SERVICES.map((s) => `${s.name} ${s.port}`).join(', ')}.
  The rest (LOG_LEVEL, ORDERSAGA_NAMESPACE, STOCK_CATALOG, BILLING_ACCOUNTS,
  NOTIFICATION_WEBHOOKS, SAGA_STEP_TIMEOUT_MS, ...) is passed to the services.`;

const args = process.argv.slice(2);
if (args.includes('-h') || args.includes('--help')) {
  console.log(USAGE);
  process.exit(0);
}
const unknown = args.find((a) => a !== '--json');
if (unknown !== undefined) {
  console.error(`run-local: unknown argument '${unknown}'\n\n${USAGE}`);
  process.exit(2);
}
const RAW_JSON = args.includes('--json') || process.env.LOG_FORMAT === 'json';

/** 'starting' until every service is ready, 'running', then 'stopping' once shutdown began. */
let phase = 'starting';
/** Set by a second Ctrl-C: no more waiting for a graceful stop. */
let forced = false;
/** Whether the broker is ours to stop: only when this script ran `kafka.sh start` for it. */
let ownsBroker = false;
/** Set while `kafka.sh stop` runs: it is never interrupted, lest the broker outlive this script. */
let stoppingBroker = false;
/** Child processes still running, by display name, with a promise of how each ended. */
const children = new Map();

// ---------------------------------------------------------------- output

function print(name, text) {
  process.stdout.write(`${name.padEnd(PREFIX_WIDTH)} | ${text}\n`);
}
const note = (text) => print('run-local', text);

const LEVELS = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/**
 * A pino JSON line as "HH:MM:SS LEVEL msg[: error] [request] [correlationId=... orderId=...]";
 * anything else as is.
 */
function render(line) {
  if (RAW_JSON) return line;
  let entry;
  try {
    entry = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof entry?.level !== 'number') return line;
  const time = new Date(entry.time ?? Date.now()).toTimeString().slice(0, 8);
  const level = (LEVELS[entry.level] ?? String(entry.level)).padEnd(5);
  // A failure's reason is not in msg ("service failed to start"): it is in err, or in error for
  // the kafkajs lines.
  const reason = entry.err?.message ?? entry.error;
  const error = reason ? `: ${reason}` : '';
  // The HTTP access lines of fastify.
  const request = entry.req ? ` ${entry.req.method} ${entry.req.url}` : '';
  const response = entry.res ? ` ${entry.res.statusCode} in ${Math.round(entry.responseTime)} ms` : '';
  // Only string ids: the kafkajs lines carry a numeric correlationId of their own (a request's).
  const ids = ['correlationId', 'orderId']
    .filter((key) => typeof entry[key] === 'string')
    .map((key) => ` ${key}=${entry[key]}`)
    .join('');
  return `${time} ${level} ${entry.msg ?? ''}${error}${request}${response}${ids}`;
}

function printLines(name, stream) {
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => print(name, render(line)));
}

const describeExit = ({ code, signal }) => (signal ? `killed by ${signal}` : `exit code ${code}`);

// ---------------------------------------------------------------- child processes

/**
 * Spawns a child in a process group of its own, so that a Ctrl-C on the terminal reaches only
 * this script, which then stops the children in order (and can tell a crash from a stop).
 */
function launch(name, command, commandArgs, { env = {}, stderr = 'pipe' } = {}) {
  const child = spawn(command, commandArgs, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', stderr],
    detached: true,
  });
  const ended = new Promise((resolve) => {
    child.on('error', (err) => {
      print(name, `could not start: ${err.message}`);
      resolve({ code: null, signal: null });
    });
    // 'close' rather than 'exit': it comes after the last output line was read.
    child.on('close', (code, signal) => resolve({ code, signal }));
  }).then((how) => {
    children.delete(name);
    return how;
  });
  children.set(name, { child, ended });
  return { child, ended };
}

/** Runs `bash scripts/kafka.sh <command>`; resolves to its exit code and stdout. */
async function kafkaSh(command, { env, stderr = 'inherit' } = {}) {
  const { child, ended } = launch('kafka.sh', 'bash', [KAFKA_SH, command], { env, stderr });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
  const { code } = await ended;
  return { code, brokers: /^KAFKA_BROKERS=(.+)$/m.exec(stdout)?.[1].trim() };
}

/** The bootstrap servers to use: KAFKA_BROKERS, a broker kafka.sh already runs, or a new one. */
async function ensureBroker() {
  if (process.env.KAFKA_BROKERS) {
    note(`using the Kafka broker(s) in KAFKA_BROKERS: ${process.env.KAFKA_BROKERS}`);
    return process.env.KAFKA_BROKERS;
  }
  // `kafka.sh start` would just reuse a broker it already runs for this KAFKA_PORT: that one
  // belongs to whoever started it, so it is used but left running at the end.
  const status = await kafkaSh('status', { stderr: 'ignore' });
  if (status.code === 0 && status.brokers) {
    note(`using the broker scripts/kafka.sh already runs on ${status.brokers} (left running on exit)`);
    return status.brokers;
  }
  if (phase === 'stopping') return undefined;
  note('starting a Kafka broker with scripts/kafka.sh ...');
  // Ours from now on: even a start cut short by Ctrl-C may leave a JVM that `kafka.sh stop` finds.
  ownsBroker = true;
  const start = await kafkaSh('start');
  if (phase === 'stopping') return undefined;
  if (start.code !== 0 || !start.brokers) {
    throw new Error(`scripts/kafka.sh start failed (${describeExit(start)}), see its messages above`);
  }
  return start.brokers;
}

const entryPoint = ({ workspace }) => join(ROOT, workspace, 'dist', 'main.js');
const urlOf = (service, path = '') => `http://${HOST}:${service.port}${path}`;

async function isReady(service) {
  try {
    const response = await fetch(urlOf(service, '/readyz'), { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

/**
 * Starts a service and waits until its /readyz answers 200. Resolves to false if the run is
 * being stopped meanwhile (a service that dies is reported by its exit handler); throws on timeout.
 */
async function startService(service, brokers) {
  if (phase === 'stopping') return false;
  const { name, port } = service;
  const { child, ended } = launch(name, process.execPath, [entryPoint(service)], {
    env: { KAFKA_BROKERS: brokers, PORT: String(port) },
  });
  printLines(name, child.stdout);
  printLines(name, child.stderr);
  let exited = false;
  ended.then((how) => {
    exited = true;
    if (phase !== 'stopping') {
      const when = phase === 'running' ? 'unexpectedly' : 'during start-up';
      void shutdown(1, `${name} exited ${when} (${describeExit(how)})`);
    }
  });

  note(`started ${name} (pid ${child.pid}), waiting for ${urlOf(service, '/readyz')} ...`);
  const started = Date.now();
  let nextNote = started + 10_000;
  while (!exited && phase !== 'stopping') {
    if (await isReady(service)) {
      note(`${name} is ready (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      return true;
    }
    if (Date.now() - started > READY_TIMEOUT_MS) {
      throw new Error(`${name} was not ready within ${READY_TIMEOUT_MS / 1000} s`);
    }
    if (Date.now() >= nextNote) {
      note(`still waiting for ${name} (${Math.round((Date.now() - started) / 1000)} s) ...`);
      nextNote += 10_000;
    }
    await sleep(250);
  }
  return false;
}

// ---------------------------------------------------------------- stopping

/** SIGTERM to every child, SIGKILL to those still running after STOP_TIMEOUT_MS. */
async function stopChildren() {
  const running = [...children.entries()];
  if (running.length === 0) return;
  note(`stopping ${running.map(([name]) => name).join(', ')} ...`);
  for (const [, { child }] of running) child.kill('SIGTERM');
  const timer = setTimeout(() => {
    note(`still running after ${STOP_TIMEOUT_MS / 1000} s: ${[...children.keys()].join(', ')}; sending SIGKILL`);
    for (const { child } of children.values()) child.kill('SIGKILL');
  }, STOP_TIMEOUT_MS);
  const endings = await Promise.all(running.map(([, { ended }]) => ended));
  clearTimeout(timer);
  running.forEach(([name], i) => {
    if (SERVICE_NAMES.includes(name) && endings[i].code !== 0 && !forced) {
      note(`${name} did not stop cleanly (${describeExit(endings[i])})`);
    }
  });
}

/** Stops everything this script started, then exits with `code`. Later calls do nothing. */
async function shutdown(code, reason) {
  if (phase === 'stopping') return;
  phase = 'stopping';
  if (reason) console.error(`run-local: ${reason}`);
  await stopChildren();
  if (ownsBroker) {
    note('stopping the Kafka broker this script started ...');
    stoppingBroker = true;
    // After a forced stop, no graceful wait for the broker either.
    const stop = await kafkaSh('stop', { env: forced ? { KAFKA_STOP_TIMEOUT: '0' } : {} });
    if (stop.code !== 0) {
      console.error(`run-local: scripts/kafka.sh stop failed (${describeExit(stop)})`);
      code = 1;
    }
  }
  note(code === 0 ? 'everything stopped' : 'stopped after the failure above');
  process.exit(code);
}

function onSignal(signal) {
  if (phase !== 'stopping') {
    note(`${signal}: stopping (Ctrl-C again to force)`);
    void shutdown(0);
    return;
  }
  forced = true;
  if (stoppingBroker) {
    note('still stopping the Kafka broker (scripts/kafka.sh stop kills it after KAFKA_STOP_TIMEOUT s) ...');
  } else if (children.size > 0) {
    note(`forcing: SIGKILL to ${[...children.keys()].join(', ')}`);
    for (const { child } of children.values()) child.kill('SIGKILL');
  }
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => onSignal(signal));
// Last resort should this script itself crash: its children live in their own process groups.
process.on('exit', () => {
  for (const { child } of children.values()) child.kill('SIGKILL');
});

// ---------------------------------------------------------------- main

function printBanner(brokers) {
  // The public API is where orders are placed.
  const order = SERVICES.find((s) => s.ingress === 'public');
  const lines = [
    `ordersaga is running (Kafka: ${brokers})`,
    '',
    ...SERVICES.map((s) => `${s.name.padEnd(PREFIX_WIDTH)}  ${urlOf(s)}   ${s.endpoints.join(', ')}`),
    '',
    'Place an order:',
    `  curl -s -XPOST ${urlOf(order, '/orders')} -H 'content-type: application/json' ` +
      `-d '{"customerId":"alice","items":[{"sku":"KB-001","quantity":2}]}'`,
    'Follow it, with the orderId from the answer:',
    `  curl -s ${urlOf(order, '/orders/<orderId>')}`,
  ];
  if (!process.env.STOCK_CATALOG && !process.env.BILLING_ACCOUNTS) {
    lines.push(
      '',
      'Demo data: SKUs KB-001, MOUSE-01, SCREEN-27 (only 5 in stock);',
      '           customers alice (1000.00 EUR credit) and bob (10.00 EUR).',
    );
  }
  lines.push('', 'Ctrl-C stops everything.');
  const rule = '='.repeat(78);
  process.stdout.write(`\n${rule}\n${lines.map((l) => `  ${l}`.trimEnd()).join('\n')}\n${rule}\n\n`);
}

async function main() {
  const missing = SERVICES.map(entryPoint).filter((file) => !existsSync(file));
  if (missing.length > 0) {
    const files = missing.map((file) => relative(ROOT, file)).join(', ');
    console.error(`run-local: ${files} missing: run \`npm run build\` first (or \`npm start\`)`);
    process.exit(1);
  }
  const brokers = await ensureBroker();
  if (brokers === undefined) return;
  const [order, ...others] = SERVICES;
  if (!(await startService(order, brokers))) return;
  const ready = await Promise.all(others.map((service) => startService(service, brokers)));
  if (!ready.every(Boolean)) return;
  phase = 'running';
  printBanner(brokers);
}

main().catch((err) => shutdown(1, err.message));
