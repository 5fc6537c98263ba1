#!/usr/bin/env node
// A real Prometheus (Debian package `prometheus`) scraping a locally running ordersaga, with the
// platform's alerts loaded: to watch `npm start` the way Grafana would in a cluster, and, as a
// module, the Prometheus of the end-to-end observability test (tests/prometheus.test.ts).
//
// Each target gets the labels the chart's ServiceMonitors give it in Kubernetes (namespace,
// service, job, pod), so the dashboards' queries (charts/ordersaga/dashboards) work unchanged.
//
//   node scripts/prometheus.js [--port 9090] [--namespace local]     (npm run prometheus)
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
// Built by `npm run build` (npm start and npm test build first).
import { COMPONENTS } from '@ordersaga/contracts';

const PORTS = Object.entries(COMPONENTS).map(([component, { port }]) => [component, port]);
import { ALERT_RULE_GROUPS } from '../cdk8s/dist/alerts.js';

/**
 * The Prometheus configuration: every target scraped each `interval`, rules evaluated as often.
 * @param {{ targets: ReadonlyArray<{ component: string, address: string, instance?: string }>, namespace: string, interval?: string, rulesFile: string }} options
 */
export function prometheusConfig({ targets, namespace, interval = '5s', rulesFile }) {
  return stringify({
    global: { scrape_interval: interval, evaluation_interval: interval },
    rule_files: [rulesFile],
    scrape_configs: [
      {
        job_name: 'ordersaga',
        static_configs: targets.map(({ component, address, instance = '0' }) => ({
          targets: [address],
          labels: {
            namespace,
            service: `ordersaga-${component}`,
            job: `ordersaga-${component}`,
            pod: `ordersaga-${component}-${instance}`,
          },
        })),
      },
    ],
  });
}

/**
 * Starts Prometheus on 127.0.0.1:`port` with its data and log in `dir` (else a temporary
 * directory, removed on stop) and waits until it is ready.
 * @param {{ targets: ReadonlyArray<{ component: string, address: string, instance?: string }>, namespace: string, interval?: string, port: number, dir?: string }} options
 */
export async function startPrometheus({ targets, namespace, interval, port, dir }) {
  const workDir = dir ?? mkdtempSync(join(tmpdir(), 'ordersaga-prometheus-'));
  mkdirSync(workDir, { recursive: true });
  const rulesFile = join(workDir, 'alerts.yaml');
  const configFile = join(workDir, 'prometheus.yaml');
  // The same rules the chart ships as a PrometheusRule.
  writeFileSync(rulesFile, stringify(ALERT_RULE_GROUPS));
  writeFileSync(configFile, prometheusConfig({ targets, namespace, interval, rulesFile }));
  const url = `http://127.0.0.1:${port}`;
  const logFile = join(workDir, 'prometheus.log');
  const log = openSync(logFile, 'a');
  const child = spawn(
    'prometheus',
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(workDir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', log, log] },
  );
  const exited = new Promise((resolve, reject) => {
    child.on('error', (err) =>
      reject(new Error(`prometheus could not start (Debian package prometheus): ${err.message}`)),
    );
    child.on('exit', (code, signal) => resolve(signal ?? code));
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    if (!dir) rmSync(workDir, { recursive: true, force: true });
  };
  for (const deadline = Date.now() + 30_000; ; await sleep(200)) {
    const ready = await fetch(`${url}/-/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return { url, configFile, logFile, stop, exited };
    const ended = await Promise.race([exited, sleep(0).then(() => undefined)]);
    if (ended !== undefined) throw new Error(`prometheus exited (${ended}) before it was ready, see ${logFile}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus was not ready on ${url} after 30 s`);
    }
  }
}

/**
 * An instant query (`time` in seconds, else now) or, with `range`, a range query; resolves to
 * the result, and throws on a query Prometheus refuses.
 * @param {string} url
 * @param {string} query
 * @param {{ time?: number, range?: { start: number, end: number, step: number } }} [options]
 */
export async function queryPrometheus(url, query, options = {}) {
  const params = new URLSearchParams({ query });
  if (options.range) for (const [k, v] of Object.entries(options.range)) params.set(k, String(v));
  else if (options.time !== undefined) params.set('time', String(options.time));
  const endpoint = options.range ? 'query_range' : 'query';
  const response = await fetch(`${url}/api/v1/${endpoint}`, { method: 'POST', body: params });
  const body = await response.json();
  if (body.status !== 'success') throw new Error(`Prometheus refused ${JSON.stringify(query)}: ${body.error}`);
  return body.data;
}

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '9090' },
      namespace: { type: 'string', default: 'local' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(`Usage: node scripts/prometheus.js [--port 9090] [--namespace local]   (npm run prometheus)

Starts Prometheus (Debian package prometheus) scraping the services of \`npm start\` on
127.0.0.1 (${PORTS.map(([c, p]) => `${c} ${p}`).join(', ')}) every 5 s with the alerts loaded,
labelled namespace=<namespace> as in Kubernetes; data in ~/.cache/ordersaga/run/prometheus.
Runs until Ctrl-C. Then: http://127.0.0.1:<port>/graph, /alerts, and
node scripts/render-dashboard.js to plot a dashboard's panels into a PNG.`);
    process.exit(0);
  }
  const cache = process.env.ORDERSAGA_CACHE ?? join(homedir(), '.cache', 'ordersaga');
  const prometheus = await startPrometheus({
    targets: PORTS.map(([component, port]) => ({ component, address: `127.0.0.1:${port}` })),
    namespace: values.namespace,
    port: Number(values.port),
    dir: join(cache, 'run', 'prometheus'),
  });
  console.log(`prometheus: ready on ${prometheus.url}, config ${prometheus.configFile}, log ${prometheus.logFile}`);
  console.log('prometheus: Ctrl-C stops it');
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => prometheus.stop());
  const ended = await prometheus.exited;
  process.exitCode = ended === 'SIGTERM' || ended === 0 ? 0 : 1;
}
