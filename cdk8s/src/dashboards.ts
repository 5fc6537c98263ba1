/**
 * The platform's Grafana dashboards, as code with Grafana's foundation SDK: the sagas, the health
 * of each service, Kafka lag and the SagaOrder controller. They are in Grafana's classic JSON
 * model (the SDK's `dashboard` package, not `dashboardv2`): what Grafana provisions from files,
 * as kube-prometheus-stack's sidecar has it do. The chart ships each as a JSON file
 * (charts/ordersaga/dashboards/) in a ConfigMap labelled for that sidecar. The queries read only
 * what the services and the controller export, with the target labels their ServiceMonitors add
 * (namespace, service, pod), and use no variables but $namespace, $service and $__rate_interval:
 * a test evaluates every one against a real stack.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import * as units from '@grafana/grafana-foundation-sdk/units';
import { LAGGING_AFTER_MESSAGES, STUCK_AFTER_SECONDS } from './alerts.js';

/** The label kube-prometheus-stack's Grafana sidecar looks for on ConfigMaps (value "1"). */
export const SIDECAR_LABEL = 'grafana_dashboard';

/** Every panel, query and variable reads the Prometheus picked in the `datasource` variable. */
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

/** Label matchers: the namespace picked, and the services picked in it. */
const IN_NAMESPACE = 'namespace="$namespace"';
const OF_SERVICES = `${IN_NAMESPACE},service=~"$service"`;

/** Every process of the platform, the controller included, has this series from its start. */
const ALWAYS_EXPORTED = 'ordersaga_transaction_duration_seconds_count';

interface Query {
  readonly expr: string;
  /** Grafana's legend template: {{label}} is the series' label. */
  readonly legend: string;
}

/** Per-second rate of a counter (or of a histogram's buckets or count). */
const rate = (metric: string, selector: string) => `rate(${metric}{${selector}}[$__rate_interval])`;

const percentile = (quantile: number, histogram: string, selector: string, by: readonly string[]): Query => ({
  expr: `histogram_quantile(${quantile}, sum by (${['le', ...by].join(', ')}) (${rate(`${histogram}_bucket`, selector)}))`,
  legend: [...by.map((label) => `{{${label}}}`), `p${Math.round(quantile * 100)}`].join(' '),
});

/** The median, 95th and 99th percentiles of a histogram, of all its series or per label. */
const percentiles = (histogram: string, selector: string, by: readonly string[] = []): Query[] =>
  [0.5, 0.95, 0.99].map((quantile) => percentile(quantile, histogram, selector, by));

interface PanelSpec {
  readonly title: string;
  readonly description: string;
  /** A Grafana unit. */
  readonly unit: string;
  readonly queries: readonly Query[];
}

/** A panel and the height it wants; the layout gives it its place, width and id. */
interface SizedPanel {
  readonly panel: timeseries.PanelBuilder | stat.PanelBuilder;
  readonly height: number;
}

function withQueries<P extends timeseries.PanelBuilder | stat.PanelBuilder>(panel: P, spec: PanelSpec): P {
  panel.title(spec.title).description(spec.description).unit(spec.unit).datasource(DATASOURCE);
  spec.queries.forEach((query, i) =>
    panel.withTarget(
      new prometheus.DataqueryBuilder()
        .datasource(DATASOURCE)
        .refId(String.fromCharCode(65 + i))
        .expr(query.expr)
        .legendFormat(query.legend),
    ),
  );
  return panel;
}

/** Lines over time, all of them in the tooltip. */
function graph(spec: PanelSpec): SizedPanel {
  const panel = withQueries(new timeseries.PanelBuilder(), spec)
    .fillOpacity(10)
    .legend(
      new common.VizLegendOptionsBuilder()
        .showLegend(true)
        .displayMode(common.LegendDisplayMode.List)
        .placement(common.LegendPlacement.Bottom),
    )
    .tooltip(
      new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending),
    );
  return { panel, height: 8 };
}

/** Colours from a value up: [from, colour] pairs, the first from -∞. */
type Bands = ReadonlyArray<readonly [number | null, string]>;

/**
 * The last value of each series, large, over its trend. Always with bands: Grafana's default
 * ones would turn a count red at 80.
 */
function singleStat(spec: PanelSpec & { readonly bands?: Bands }): SizedPanel {
  const panel = withQueries(new stat.PanelBuilder(), spec)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']))
    .graphMode(common.BigValueGraphMode.Area)
    .colorMode(common.BigValueColorMode.Value)
    .thresholds(
      new dashboard.ThresholdsConfigBuilder()
        .mode(dashboard.ThresholdsMode.Absolute)
        .steps((spec.bands ?? [[null, 'green']]).map(([value, color]) => ({ value, color }))),
    );
  return { panel, height: 4 };
}

interface DashboardSpec {
  /** Its file name and the end of its uid. */
  readonly name: string;
  readonly title: string;
  readonly description: string;
  /** Rows of panels, top to bottom; the panels of a row share its width equally. */
  readonly rows: ReadonlyArray<readonly SizedPanel[]>;
}

const GRID_WIDTH = 24;

/** Places the panels row by row and numbers them from 1 (the ids are unique per dashboard). */
function layout(rows: DashboardSpec['rows']): dashboard.Panel[] {
  let y = 0;
  let id = 0;
  return rows.flatMap((row) => {
    const width = GRID_WIDTH / row.length;
    if (!Number.isInteger(width)) throw new Error(`a row of ${row.length} panels does not divide the grid`);
    const height = Math.max(...row.map((p) => p.height));
    const panels = row.map(({ panel }, i) =>
      panel
        .id(++id)
        .gridPos({ x: i * width, y, w: width, h: height })
        .build(),
    );
    y += height;
    return panels;
  });
}

const namespaceVariable = new dashboard.QueryVariableBuilder('namespace')
  .label('Namespace')
  .datasource(DATASOURCE)
  .query(`label_values(${ALWAYS_EXPORTED}, namespace)`)
  .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
  .sort(dashboard.VariableSort.AlphabeticalAsc);

/** "All" stands for the services found (a regex of their names), not for anything in the namespace. */
const serviceVariable = new dashboard.QueryVariableBuilder('service')
  .label('Service')
  .datasource(DATASOURCE)
  .query(`label_values(${ALWAYS_EXPORTED}{${IN_NAMESPACE}}, service)`)
  .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
  .sort(dashboard.VariableSort.AlphabeticalAsc)
  .multi(true)
  .includeAll(true);

export interface Dashboard {
  /** Its file: charts/ordersaga/dashboards/<name>.json. */
  readonly name: string;
  /** Its JSON model, as Grafana imports it. */
  readonly model: dashboard.Dashboard;
}

/** A dashboard; it has the `service` variable only if its queries use it. */
function build(spec: DashboardSpec): Dashboard {
  const panels = layout(spec.rows);
  const perService = panels.some((p) => p.targets?.some((t) => (t as prometheus.Dataquery).expr.includes('$service')));
  const board = new dashboard.DashboardBuilder(spec.title)
    .uid(`ordersaga-${spec.name}`)
    .description(spec.description)
    .tags(['ordersaga'])
    .time({ from: 'now-1h', to: 'now' })
    .refresh('30s')
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    // The list even when empty, as Grafana writes it: it adds its built-in annotations there.
    .annotations([])
    .link(
      new dashboard.DashboardLinkBuilder('ordersaga')
        .type(dashboard.DashboardLinkType.Dashboards)
        .tags(['ordersaga'])
        .asDropdown(true)
        .includeVars(true)
        .keepTime(true),
    )
    .withVariable(new dashboard.DatasourceVariableBuilder('datasource').label('Data source').type('prometheus'))
    .withVariable(namespaceVariable);
  if (perService) board.withVariable(serviceVariable);
  return { name: spec.name, model: { ...board.build(), panels } };
}

const sagaOverview = build({
  name: 'saga-overview',
  title: 'ordersaga / Sagas',
  description: 'Orders placed, how their sagas end and how long they take, compensations, dead letters.',
  rows: [
    [
      singleStat({
        title: 'Success rate',
        description:
          'Sagas confirmed out of the sagas that ended. A failure can be the right answer: out of stock, payment declined.',
        unit: units.PercentUnit,
        queries: [
          {
            expr: `sum(${rate('ordersaga_sagas_finished_total', `${IN_NAMESPACE},outcome="confirmed"`)}) / sum(${rate('ordersaga_sagas_finished_total', IN_NAMESPACE)})`,
            legend: 'confirmed',
          },
        ],
      }),
      singleStat({
        title: 'Sagas in flight',
        description:
          'Started and not yet confirmed or failed, by the saga version they run on: an older version is needed while its count is above 0.',
        unit: units.Short,
        queries: [{ expr: `sum by (version) (ordersaga_sagas_in_flight{${IN_NAMESPACE}})`, legend: 'v{{version}}' }],
      }),
      singleStat({
        title: 'Oldest saga in flight',
        description: `Red past ${STUCK_AFTER_SECONDS} s, where the OrdersagaSagaStuck alert starts counting.`,
        unit: units.Seconds,
        queries: [{ expr: `max(ordersaga_saga_oldest_in_flight_age_seconds{${IN_NAMESPACE}})`, legend: 'age' }],
        bands: [
          [null, 'green'],
          [STUCK_AFTER_SECONDS, 'red'],
        ],
      }),
    ],
    [
      graph({
        title: 'Throughput',
        description: 'Sagas started, and ended by outcome.',
        unit: units.OpsPerSecond,
        queries: [
          { expr: `sum(${rate('ordersaga_sagas_started_total', IN_NAMESPACE)})`, legend: 'started' },
          {
            expr: `sum by (outcome) (${rate('ordersaga_sagas_finished_total', IN_NAMESPACE)})`,
            legend: '{{outcome}}',
          },
        ],
      }),
      graph({
        title: 'Saga duration',
        description: 'From order placed to confirmed or failed.',
        unit: units.Seconds,
        queries: percentiles('ordersaga_saga_duration_seconds', IN_NAMESPACE),
      }),
    ],
    [
      graph({
        title: 'Failures by reason',
        description: 'Sagas failed: out of stock, payment declined, a step timed out, or other.',
        unit: units.OpsPerSecond,
        queries: [
          {
            expr: `sum by (reason) (${rate('ordersaga_sagas_finished_total', `${IN_NAMESPACE},outcome="failed"`)})`,
            legend: '{{reason}}',
          },
        ],
      }),
      graph({
        title: 'Compensations and timeouts',
        description: 'Compensations run, and steps (or compensations) that timed out.',
        unit: units.OpsPerSecond,
        queries: [
          {
            expr: `sum by (compensation) (${rate('ordersaga_saga_compensations_total', IN_NAMESPACE)})`,
            legend: '{{compensation}}',
          },
          {
            expr: `sum by (step) (${rate('ordersaga_saga_timeouts_total', IN_NAMESPACE)})`,
            legend: '{{step}} timed out',
          },
        ],
      }),
    ],
    [
      graph({
        title: 'Step duration (p95)',
        description: 'From a step (or compensation) requested to its reply.',
        unit: units.Seconds,
        queries: [percentile(0.95, 'ordersaga_saga_step_duration_seconds', IN_NAMESPACE, ['step'])],
      }),
      graph({
        title: 'Dead letters',
        description:
          'Messages the services picked sent to a dead-letter topic (<topic>.dlt), by source topic and kind of reason.',
        unit: units.MessagesPerSecond,
        queries: [
          {
            expr: `sum by (topic, kind) (${rate('ordersaga_dead_letters_total', OF_SERVICES)})`,
            legend: '{{topic}} ({{kind}})',
          },
        ],
      }),
      graph({
        title: 'Holds expired',
        description:
          'Stock reservations and payment authorizations released by their hold time: held for an order no saga settled (a bug, a replay, a foreign writer). The logs name each order.',
        unit: units.OpsPerSecond,
        queries: [
          {
            expr: `sum by (hold) (${rate('ordersaga_holds_expired_total', OF_SERVICES)})`,
            legend: '{{hold}}',
          },
        ],
      }),
    ],
  ],
});

const serviceHealth = build({
  name: 'service-health',
  title: 'ordersaga / Services',
  description: 'Per service: targets up, HTTP traffic and latency, CPU, memory, event loop, retries, dead letters.',
  rows: [
    [
      singleStat({
        title: 'Targets up',
        description: 'Pods Prometheus scrapes successfully, per service.',
        unit: units.Short,
        queries: [{ expr: `sum by (service) (up{${OF_SERVICES}})`, legend: '{{service}}' }],
        bands: [
          [null, 'red'],
          [1, 'green'],
        ],
      }),
    ],
    [
      graph({
        title: 'HTTP requests',
        description: 'By route (its pattern) and status code; scrapes and probes included.',
        unit: units.RequestsPerSecond,
        queries: [
          {
            expr: `sum by (service, route, status_code) (${rate('ordersaga_http_request_duration_seconds_count', OF_SERVICES)})`,
            legend: '{{service}} {{route}} {{status_code}}',
          },
        ],
      }),
      graph({
        title: 'HTTP latency',
        description: 'Percentiles of the time to answer, per service.',
        unit: units.Seconds,
        queries: percentiles('ordersaga_http_request_duration_seconds', OF_SERVICES, ['service']),
      }),
    ],
    [
      graph({
        title: 'CPU',
        description: 'CPU time per second of each pod: 100% is one core.',
        unit: units.PercentUnit,
        queries: [{ expr: `sum by (pod) (${rate('process_cpu_seconds_total', OF_SERVICES)})`, legend: '{{pod}}' }],
      }),
      graph({
        title: 'Resident memory',
        description: 'Resident set size of each pod.',
        unit: units.BytesIEC,
        queries: [{ expr: `sum by (pod) (process_resident_memory_bytes{${OF_SERVICES}})`, legend: '{{pod}}' }],
      }),
    ],
    [
      graph({
        title: 'Event loop lag',
        description: 'How late Node.js runs a timer: a busy or blocked event loop.',
        unit: units.Seconds,
        queries: [{ expr: `max by (pod) (nodejs_eventloop_lag_seconds{${OF_SERVICES}})`, legend: '{{pod}}' }],
      }),
      graph({
        title: 'Retries',
        description: 'Retries of transient failures: a commit, or a side effect such as a webhook.',
        unit: units.OpsPerSecond,
        queries: [
          {
            expr: `sum by (service, operation) (${rate('ordersaga_retries_total', OF_SERVICES)})`,
            legend: '{{service}} {{operation}}',
          },
        ],
      }),
      graph({
        title: 'Dead letters',
        description: 'Messages a service sent to a dead-letter topic, by source topic and kind of reason.',
        unit: units.MessagesPerSecond,
        queries: [
          {
            expr: `sum by (service, topic, kind) (${rate('ordersaga_dead_letters_total', OF_SERVICES)})`,
            legend: '{{service}} {{topic}} ({{kind}})',
          },
        ],
      }),
    ],
  ],
});

/** A partition's lag as its consumer last saw it (a replica that lost the partition may still show it). */
const partitionLag = `max by (service, topic, partition) (ordersaga_consumer_lag_messages{${OF_SERVICES}})`;

const kafkaLag = build({
  name: 'kafka-lag',
  title: 'ordersaga / Kafka',
  description: 'Consumer lag per topic and partition, messages consumed and produced, transactions.',
  rows: [
    [
      singleStat({
        title: 'Highest partition lag',
        description: `Messages waiting on the most behind partition. Red from ${LAGGING_AFTER_MESSAGES}, the OrdersagaConsumerLag alert's bound.`,
        unit: units.Short,
        queries: [{ expr: `max(ordersaga_consumer_lag_messages{${OF_SERVICES}})`, legend: 'lag' }],
        bands: [
          [null, 'green'],
          [LAGGING_AFTER_MESSAGES, 'red'],
        ],
      }),
      singleStat({
        title: 'Consumed',
        description: 'Messages consumed by the services picked.',
        unit: units.MessagesPerSecond,
        queries: [{ expr: `sum(${rate('ordersaga_messages_consumed_total', OF_SERVICES)})`, legend: 'consumed' }],
      }),
      singleStat({
        title: 'Produced',
        description: 'Messages produced by the services picked.',
        unit: units.MessagesPerSecond,
        queries: [{ expr: `sum(${rate('ordersaga_messages_produced_total', OF_SERVICES)})`, legend: 'produced' }],
      }),
    ],
    [
      graph({
        title: 'Lag per topic',
        description: 'Messages waiting, per consumer (service) and topic: the sum over its partitions.',
        unit: units.Short,
        queries: [{ expr: `sum by (service, topic) (${partitionLag})`, legend: '{{service}} {{topic}}' }],
      }),
      graph({
        title: 'Lag per partition',
        description: 'Messages between the last processed offset and the high watermark.',
        unit: units.Short,
        queries: [{ expr: partitionLag, legend: '{{service}} {{topic}}/{{partition}}' }],
      }),
    ],
    [
      graph({
        title: 'Consumed by topic',
        description: 'Messages consumed, per service and topic.',
        unit: units.MessagesPerSecond,
        queries: [
          {
            expr: `sum by (service, topic) (${rate('ordersaga_messages_consumed_total', OF_SERVICES)})`,
            legend: '{{service}} {{topic}}',
          },
        ],
      }),
      graph({
        title: 'Produced by topic',
        description: 'Messages produced, per service and topic.',
        unit: units.MessagesPerSecond,
        queries: [
          {
            expr: `sum by (service, topic) (${rate('ordersaga_messages_produced_total', OF_SERVICES)})`,
            legend: '{{service}} {{topic}}',
          },
        ],
      }),
    ],
    [
      graph({
        title: 'Transaction duration',
        description: 'Time to handle the batches of one Kafka transaction and commit it.',
        unit: units.Seconds,
        queries: percentiles('ordersaga_transaction_duration_seconds', OF_SERVICES),
      }),
      graph({
        title: 'Transactions',
        description: 'Kafka transactions committed, per service.',
        unit: units.OpsPerSecond,
        queries: [
          {
            expr: `sum by (service) (${rate('ordersaga_transaction_duration_seconds_count', OF_SERVICES)})`,
            legend: '{{service}}',
          },
        ],
      }),
    ],
  ],
});

const controller = build({
  name: 'controller',
  title: 'ordersaga / SagaOrder controller',
  description: 'Leader election, reconciles, Kubernetes API requests, and how far SagaOrders are behind their sagas.',
  rows: [
    [
      singleStat({
        title: 'Leaders',
        description: 'Replicas holding the Lease: exactly one writes.',
        unit: units.Short,
        queries: [{ expr: `sum(ordersaga_operator_leader{${IN_NAMESPACE}})`, legend: 'leaders' }],
        bands: [
          [null, 'red'],
          [1, 'green'],
          [2, 'red'],
        ],
      }),
      singleStat({
        title: 'Pending writes',
        description: 'Orders whose SagaOrder is behind their saga.',
        unit: units.Short,
        queries: [{ expr: `max(ordersaga_operator_pending_writes{${IN_NAMESPACE}})`, legend: 'pending' }],
      }),
    ],
    [
      graph({
        title: 'Reconciles by result',
        description: 'Orders placed from SagaOrders, statuses written, skipped, SagaOrders expired.',
        unit: units.OpsPerSecond,
        queries: [
          {
            expr: `sum by (result) (${rate('ordersaga_operator_reconciles_total', IN_NAMESPACE)})`,
            legend: '{{result}}',
          },
        ],
      }),
      graph({
        title: 'Kubernetes API requests',
        description: 'By verb and outcome (ok, or the HTTP status).',
        unit: units.RequestsPerSecond,
        queries: [
          {
            expr: `sum by (verb, outcome) (${rate('ordersaga_operator_api_requests_total', IN_NAMESPACE)})`,
            legend: '{{verb}} {{outcome}}',
          },
        ],
      }),
    ],
    [
      graph({
        title: 'Mirror lag',
        description: 'From a saga change to its SagaOrder status write.',
        unit: units.Seconds,
        queries: percentiles('ordersaga_operator_mirror_lag_seconds', IN_NAMESPACE),
      }),
      graph({
        title: 'Leader by pod',
        description: 'Which replica holds the Lease: handovers show as steps.',
        unit: units.Short,
        queries: [{ expr: `max by (pod) (ordersaga_operator_leader{${IN_NAMESPACE}})`, legend: '{{pod}}' }],
      }),
    ],
  ],
});

export const DASHBOARDS: readonly Dashboard[] = [sagaOverview, serviceHealth, kafkaLag, controller];

/** A dashboard's file, as Grafana imports it. */
export const dashboardJson = (model: dashboard.Dashboard) => `${JSON.stringify(model, null, 2)}\n`;

/** What the queries' variables stand for: one namespace, the services picked (a regex), the rate window. */
export interface QueryVariables {
  readonly namespace: string;
  readonly service: string;
  readonly rateInterval: string;
}

/** A query as Grafana sends it, its variables filled in; a variable not among them is an error. */
export function expandQuery(expr: string, { namespace, service, rateInterval }: QueryVariables): string {
  const expanded = expr
    .replaceAll('$namespace', namespace)
    .replaceAll('$service', service)
    .replaceAll('$__rate_interval', rateInterval);
  if (expanded.includes('$'))
    throw new Error(`a variable other than $namespace, $service, $__rate_interval in ${expr}`);
  return expanded;
}

/** Every panel of a dashboard (a model, or its JSON parsed), those inside rows too. */
export function panelsOf<P extends { type: string; panels?: P[] }>(model: { panels?: P[] }): P[] {
  return (model.panels ?? []).flatMap((p) => (p.type === 'row' ? (p.panels ?? []) : [p]));
}
