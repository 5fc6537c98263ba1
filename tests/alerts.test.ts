/**
 * The alerts (cdk8s/src/alerts.ts, shipped as a PrometheusRule) checked by Prometheus' own
 * promtool: the rules are valid, and the alerts fire on the faults they are for, not otherwise.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { ALERT_RULE_GROUPS, ALERTS } from '../cdk8s/src/alerts.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'ordersaga-alerts-'));
const rules = join(dir, 'rules.yaml');
writeFileSync(rules, stringify(ALERT_RULE_GROUPS));

const annotations = (alert: string, description: string) => ({
  summary: ALERTS.find((a) => a.alert === alert)!.annotations.summary,
  description,
});

test('promtool check rules: the rules are valid', async () => {
  const { stdout } = await run('promtool', ['check', 'rules', rules]).catch((err) => {
    throw new Error(`promtool (Debian package prometheus) failed or is missing: ${err.stderr ?? err}`);
  });
  expect(stdout).toMatch(new RegExp(`SUCCESS: ${ALERTS.length} rules found`));
});

test('promtool test rules: each alert fires on its fault, and only then', async () => {
  const tests = {
    rule_files: ['rules.yaml'],
    evaluation_interval: '1m',
    tests: [
      {
        interval: '1m',
        input_series: [
          // A saga stuck: its age keeps growing past the bound.
          {
            series: 'ordersaga_saga_oldest_in_flight_age_seconds{instance="order-0"}',
            values: '0 60 120 180 240 300 360',
          },
          // Poison on stock.checked at minute 2.
          { series: 'ordersaga_dead_letters_total{topic="stock.checked",kind="poison"}', values: '0 0 3 3 3 3 3' },
          // A reservation nobody settled, released at minute 4; authorizations all settled.
          { series: 'ordersaga_holds_expired_total{hold="stock-reservation"}', values: '0 0 0 0 1 1 1' },
          { series: 'ordersaga_holds_expired_total{hold="payment-authorization"}', values: '0x6' },
          // The controller leads and keeps up.
          { series: 'ordersaga_operator_leader{instance="operator-0"}', values: '1x6' },
          { series: 'ordersaga_operator_pending_writes{instance="operator-0"}', values: '0x6' },
        ],
        alert_rule_test: [
          { eval_time: '2m', alertname: 'OrdersagaSagaStuck', exp_alerts: [] },
          {
            eval_time: '6m',
            alertname: 'OrdersagaSagaStuck',
            exp_alerts: [
              {
                exp_labels: { severity: 'critical' },
                exp_annotations: annotations(
                  'OrdersagaSagaStuck',
                  'The oldest saga in flight is 6m 0s old: is the order service consuming?',
                ),
              },
            ],
          },
          { eval_time: '1m', alertname: 'OrdersagaDeadLetters', exp_alerts: [] },
          {
            eval_time: '3m',
            alertname: 'OrdersagaDeadLetters',
            exp_alerts: [
              {
                exp_labels: { severity: 'warning', topic: 'stock.checked', kind: 'poison' },
                exp_annotations: annotations(
                  'OrdersagaDeadLetters',
                  '3 messages of stock.checked dead-lettered (poison) in 10 minutes: see stock.checked.dlt',
                ),
              },
            ],
          },
          { eval_time: '3m', alertname: 'OrdersagaHoldsExpired', exp_alerts: [] },
          {
            eval_time: '5m',
            alertname: 'OrdersagaHoldsExpired',
            exp_alerts: [
              {
                exp_labels: { severity: 'warning', hold: 'stock-reservation' },
                exp_annotations: annotations(
                  'OrdersagaHoldsExpired',
                  '1 stock-reservation holds released by their hold time in 10 minutes: a bug, a replay or a foreign writer asked for them (the log names each order)',
                ),
              },
            ],
          },
          { eval_time: '6m', alertname: 'OrdersagaControllerNotMirroring', exp_alerts: [] },
          { eval_time: '6m', alertname: 'OrdersagaConsumerLag', exp_alerts: [] },
        ],
      },
      {
        interval: '1m',
        // No controller replica leads.
        input_series: [{ series: 'ordersaga_operator_leader{instance="operator-0"}', values: '0x10' }],
        alert_rule_test: [
          {
            eval_time: '6m',
            alertname: 'OrdersagaControllerNotMirroring',
            exp_alerts: [
              {
                exp_labels: { severity: 'warning' },
                exp_annotations: annotations(
                  'OrdersagaControllerNotMirroring',
                  'SagaOrders are behind their sagas and nothing is written, or no controller replica leads',
                ),
              },
            ],
          },
        ],
      },
    ],
  };
  writeFileSync(join(dir, 'tests.yaml'), stringify(tests));
  const { stdout } = await run('promtool', ['test', 'rules', join(dir, 'tests.yaml')]).catch((err) => {
    throw new Error(`promtool test rules failed:\n${err.stdout}\n${err.stderr}`);
  });
  expect(stdout).toMatch(/SUCCESS/);
});
