/**
 * Observability end to end: a real Prometheus (Debian package) scrapes the four services and the
 * SagaOrder controller (against a real kube-apiserver) while orders go through every outcome;
 * then every query of every Grafana dashboard in the chart returns data, every alert rule is
 * valid and evaluated, and the dead-letter alert fires on an injected poison message.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ALERTS } from '../cdk8s/src/alerts.js';
import { expandQuery, panelsOf } from '../cdk8s/src/dashboards.js';
import { queryPrometheus, startPrometheus } from '../scripts/prometheus.js';
import { eventually, freePort, sleep, Stack, type Component } from '../tests/support/stack.js';
import { ROOT, TestCluster } from './support/cluster.js';

const KUBE_NAMESPACE = 'shop';
/** The `namespace` label Prometheus gives the targets, as a ServiceMonitor would. */
const NAMESPACE = 'ordersaga-e2e';
const COMPONENTS: readonly Component[] = ['order', 'stock', 'billing', 'notification', 'operator'];
/** Scrapes every second: `$__rate_interval` (four scrapes at least, in Grafana) becomes this. */
const RATE_INTERVAL = '10s';
const DASHBOARDS_DIR = join(ROOT, 'charts', 'ordersaga', 'dashboards');

let cluster: TestCluster;
let stack: Stack;
let prometheus: Awaited<ReturnType<typeof startPrometheus>>;
const loadStarted = Math.floor(Date.now() / 1000);

beforeAll(async () => {
  cluster = await TestCluster.start();
  await cluster.kubectl(['apply', '-f', join(ROOT, 'charts', 'ordersaga', 'crds', 'sagaorders.ordersaga.dev.yaml')]);
  await cluster.kubectl(['wait', '--for=condition=Established', 'crd/sagaorders.ordersaga.dev', '--timeout=60s']);
  await cluster.kubectl(['create', 'namespace', KUBE_NAMESPACE]);
  stack = new Stack({
    env: {
      order: { SAGA_STEP_TIMEOUT_MS: '3000', SAGA_COMPENSATION_TIMEOUT_MS: '3000' },
      stock: {
        STOCK_CATALOG: JSON.stringify({ KB: { quantity: 1_000, price: 4_990 }, LAMP: { quantity: 1, price: 4_000 } }),
      },
      billing: { BILLING_ACCOUNTS: JSON.stringify({ alice: 10_000_000, bob: 1_000 }) },
      operator: { KUBECONFIG: cluster.kubeconfig, WATCH_NAMESPACE: KUBE_NAMESPACE },
    },
  });
  await stack.startAll();
  await stack.start('operator');
  prometheus = await startPrometheus({
    targets: COMPONENTS.map((component) => ({ component, address: new URL(stack.url(component)).host })),
    namespace: NAMESPACE,
    interval: '1s',
    port: await freePort(),
  });
  // Prometheus hands its first targets to the scrapers some seconds after it is ready: the
  // counters' zeros must be scraped before the load, or their first increase goes unseen.
  await eventually('every target scraped', async () => {
    const { result } = await queryPrometheus(prometheus.url, `up{namespace="${NAMESPACE}"} == 1`);
    return result.length === COMPONENTS.length ? true : undefined;
  });
}, 180_000);

afterAll(async () => {
  await prometheus?.stop();
  await stack?.stopAll();
  await cluster?.stop();
});

/** The `data` of a Prometheus API answer. */
const api = async (path: string): Promise<any> =>
  ((await (await fetch(`${prometheus.url}${path}`)).json()) as any).data;

/** Every target expression of every panel of the dashboards the chart ships. */
function dashboardQueries(): Array<{ where: string; expr: string }> {
  return readdirSync(DASHBOARDS_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((file) => JSON.parse(readFileSync(join(DASHBOARDS_DIR, file), 'utf8')))
    .flatMap((dashboard) =>
      panelsOf<any>(dashboard).flatMap((panel) =>
        (panel.targets as any[]).map((target) => ({
          where: `${dashboard.title} / ${panel.title} / ${target.refId}`,
          expr: target.expr as string,
        })),
      ),
    );
}

const order = (customerId: string, sku: string, quantity = 1) =>
  stack.placeOrder({ customerId, items: [{ sku, quantity }] }).then((r) => {
    expect(r.status).toBe(202);
    return r.body.orderId as string;
  });

test('orders of every outcome, a poison message and a step timeout, scraped by Prometheus', async () => {
  const confirmed = await Promise.all(Array.from({ length: 30 }, () => order('alice', 'KB')));
  const outOfStock = await Promise.all([order('alice', 'LAMP', 5), order('alice', 'LAMP', 5)]);
  const declined = await Promise.all(Array.from({ length: 3 }, () => order('bob', 'KB')));
  expect((await stack.placeOrder({ customerId: 'alice', items: [] })).status).toBe(400);
  for (const id of confirmed) expect((await stack.finished(id)).status).toBe('CONFIRMED');
  for (const id of [...outOfStock, ...declined]) expect((await stack.finished(id)).status).toBe('FAILED');

  // The fault the dead-letter alert is for: a message no consumer can read.
  await stack.produce('stock.check.request', [{ key: 'poison', value: 'not json' }]);
  const firing = await eventually(
    'the OrdersagaDeadLetters alert to fire',
    async () => {
      const { alerts } = await api('/api/v1/alerts');
      return (alerts as any[]).find((a) => a.labels.alertname === 'OrdersagaDeadLetters' && a.state === 'firing');
    },
    30_000,
  );
  expect(firing.labels).toMatchObject({ topic: 'stock.check.request', kind: 'poison', severity: 'warning' });

  // Last, a step timeout: with Billing down the payment step times out and is compensated.
  await stack.stop('billing');
  const timedOut = await order('alice', 'KB');
  expect((await stack.finished(timedOut, 20_000)).failureReason).toMatch(/chargePayment timed out/);
  // The controller has mirrored every order (mirror lag observed for each).
  await eventually('every SagaOrder mirrored', async () => {
    const list = await cluster.json(['get', 'sagaorders', '-n', KUBE_NAMESPACE]);
    const ended = (list.items as any[]).filter((o) => ['Confirmed', 'Failed'].includes(o.status?.phase));
    return ended.length === confirmed.length + outOfStock.length + declined.length + 1 ? true : undefined;
  });
  // A few scrapes more so the last changes are in Prometheus.
  await sleep(3_000);
}, 180_000);

test('every dashboard panel query returns data', async () => {
  const queries = dashboardQueries();
  expect(queries.length).toBeGreaterThan(20);
  const range = { start: loadStarted, end: Math.ceil(Date.now() / 1000), step: 1 };
  const empty: string[] = [];
  for (const { where, expr } of queries) {
    const { result } = await queryPrometheus(
      prometheus.url,
      expandQuery(expr, { namespace: NAMESPACE, service: '.*', rateInterval: RATE_INTERVAL }),
      { range },
    );
    // Data: a series with at least one real number (a histogram quantile of no requests is NaN).
    const values = (result as Array<{ values: Array<[number, string]> }>).flatMap((s) => s.values.map(([, v]) => v));
    if (!values.some((v) => Number.isFinite(Number(v)))) empty.push(`${where}: ${expr}`);
  }
  expect(empty).toEqual([]);
});

test('every alert rule is valid and evaluated by Prometheus', async () => {
  const { groups } = await api('/api/v1/rules');
  const rules = (groups as any[]).flatMap((g) => g.rules);
  expect(rules.map((r) => r.name).sort()).toEqual(ALERTS.map((a) => a.alert).sort());
  for (const rule of rules) {
    expect({ alert: rule.name, health: rule.health, lastError: rule.lastError ?? '' }).toEqual({
      alert: rule.name,
      health: 'ok',
      lastError: '',
    });
  }
  // Each expression by itself: accepted by the query engine (an alert that is not firing is empty).
  for (const { expr } of ALERTS) await expect(queryPrometheus(prometheus.url, expr)).resolves.toBeDefined();
  // Healthy apart from the injected faults: no saga is stuck.
  const { alerts } = await api('/api/v1/alerts');
  expect((alerts as any[]).filter((a) => a.labels.alertname === 'OrdersagaSagaStuck')).toEqual([]);
});

test('the targets were the running components, labelled as a ServiceMonitor labels them', async () => {
  const { activeTargets } = await api('/api/v1/targets');
  const services = (activeTargets as any[]).map((t) => [t.labels.service, t.labels.namespace]).sort();
  expect(services).toEqual(COMPONENTS.map((c) => [`ordersaga-${c}`, NAMESPACE]).sort());
  const up = await queryPrometheus(prometheus.url, `max_over_time(up{namespace="${NAMESPACE}"}[5m])`);
  expect((up.result as any[]).every((s) => s.value[1] === '1')).toBe(true);
});
