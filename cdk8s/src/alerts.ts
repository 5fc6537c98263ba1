/**
 * The platform's alerts, as Prometheus rules (a PrometheusRule for the Prometheus Operator).
 * Expressions use the metrics the services and the controller export; `tests/alerts.test.ts`
 * checks them with promtool.
 */
export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for: string;
  readonly labels: { readonly severity: 'warning' | 'critical' };
  readonly annotations: { readonly summary: string; readonly description: string };
}

/** A saga waits at most a step timeout plus a compensation timeout (15 s + 15 s by default). */
export const STUCK_AFTER_SECONDS = 120;

/** Messages waiting on one partition past which its consumer is said to fall behind. */
export const LAGGING_AFTER_MESSAGES = 1000;

export const ALERTS: readonly AlertRule[] = [
  {
    alert: 'OrdersagaSagaStuck',
    expr: `max(ordersaga_saga_oldest_in_flight_age_seconds) > ${STUCK_AFTER_SECONDS}`,
    for: '2m',
    labels: { severity: 'critical' },
    annotations: {
      summary: 'A saga has been in flight far past its timeouts',
      description: 'The oldest saga in flight is {{ $value | humanizeDuration }} old: is the order service consuming?',
    },
  },
  {
    alert: 'OrdersagaDeadLetters',
    expr: 'sum by (topic, kind) (increase(ordersaga_dead_letters_total[10m])) > 0',
    for: '0m',
    labels: { severity: 'warning' },
    annotations: {
      summary: 'Messages are going to a dead-letter topic',
      description:
        '{{ $value }} messages of {{ $labels.topic }} dead-lettered ({{ $labels.kind }}) in 10 minutes: see {{ $labels.topic }}.dlt',
    },
  },
  {
    alert: 'OrdersagaHoldsExpired',
    expr: 'sum by (hold) (increase(ordersaga_holds_expired_total[10m])) > 0',
    for: '0m',
    labels: { severity: 'warning' },
    annotations: {
      summary: 'Holds expired: stock or credit was held for an order no saga settled',
      description:
        '{{ $value }} {{ $labels.hold }} holds released by their hold time in 10 minutes: a bug, a replay or a foreign writer asked for them (the log names each order)',
    },
  },
  {
    alert: 'OrdersagaConsumerLag',
    expr: `max by (topic) (ordersaga_consumer_lag_messages) > ${LAGGING_AFTER_MESSAGES}`,
    for: '5m',
    labels: { severity: 'warning' },
    annotations: {
      summary: 'A consumer falls behind',
      description: '{{ $labels.topic }} has {{ $value }} messages waiting on a partition',
    },
  },
  {
    alert: 'OrdersagaCompensationSpike',
    expr: 'sum(rate(ordersaga_saga_compensations_total[5m])) / clamp_min(sum(rate(ordersaga_sagas_started_total[5m])), 0.001) > 0.2',
    for: '5m',
    labels: { severity: 'warning' },
    annotations: {
      summary: 'Many sagas are being compensated',
      description: '{{ $value | humanizePercentage }} of the sagas started need a compensation',
    },
  },
  {
    alert: 'OrdersagaControllerNotMirroring',
    expr: 'max(ordersaga_operator_pending_writes) > 0 and sum(increase(ordersaga_operator_reconciles_total{result="written"}[5m])) == 0 or absent(max(ordersaga_operator_leader) == 1)',
    for: '5m',
    labels: { severity: 'warning' },
    annotations: {
      summary: 'The SagaOrder controller is not mirroring',
      description: 'SagaOrders are behind their sagas and nothing is written, or no controller replica leads',
    },
  },
];

/** The alerts as Prometheus rule groups: a PrometheusRule's spec, and a rules file's content. */
export const ALERT_RULE_GROUPS = { groups: [{ name: 'ordersaga', rules: ALERTS }] };
