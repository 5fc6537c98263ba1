/**
 * A saga's phases and failure kinds come from its steps, and everything that lists phases (the
 * SagaOrder CRD's enum, the controller's mapping) reads them from there.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ORDER_FAILURE_KINDS, ORDER_PHASES, orderSagaV1, orderSagaV2 } from './order-saga.js';
import { command, failureKindsOf, phasesOf, type SagaDefinition } from './saga-definition.js';
import { SAGAORDER_PHASES, sagaOrderPhase } from './sagaorder.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');

test("the order saga's phases: PENDING, one per step of its versions in order, then COMPENSATING, CONFIRMED, FAILED", () => {
  expect(ORDER_PHASES).toEqual([
    'PENDING',
    ...orderSagaV2.steps.map((s) => s.phase),
    'COMPENSATING',
    'CONFIRMED',
    'FAILED',
  ]);
  expect(phasesOf(orderSagaV1)).toEqual(['PENDING', 'RESERVING', 'CHARGING', 'COMPENSATING', 'CONFIRMED', 'FAILED']);
  expect(ORDER_PHASES).toEqual([
    'PENDING',
    'VERIFYING',
    'RESERVING',
    'CHARGING',
    'COMPENSATING',
    'CONFIRMED',
    'FAILED',
  ]);
  expect(ORDER_FAILURE_KINDS).toEqual([
    'out_of_stock',
    'unknown_sku',
    'payment_declined',
    'unknown_customer',
    'timeout',
    'cancelled',
  ]);
});

test('a step of its own is a phase of its own; a phase used twice is refused', () => {
  const step = (name: string, phase: string) => ({
    name,
    phase,
    invoke: () => command('order.failed', { customerId: 'c', step: name, reason: 'r' }),
    reply: 'order.failed' as const,
    onReply: () => ({ ok: true as const, update: {}, event: 'done' }),
    failureKinds: [`${name}_refused`],
  });
  const saga = (...steps: ReturnType<typeof step>[]): SagaDefinition => ({
    name: 'test',
    version: 1,
    steps,
    confirmed: () => command('order.failed', { customerId: 'c', step: 's', reason: 'r' }),
    failed: () => command('order.failed', { customerId: 'c', step: 's', reason: 'r' }),
  });
  expect(phasesOf(saga(step('a', 'DOING_A'), step('b', 'DOING_B')))).toEqual([
    'PENDING',
    'DOING_A',
    'DOING_B',
    'COMPENSATING',
    'CONFIRMED',
    'FAILED',
  ]);
  expect(failureKindsOf(saga(step('a', 'DOING_A')))).toEqual(['a_refused', 'timeout', 'cancelled']);
  expect(() => phasesOf(saga(step('a', 'DOING'), step('b', 'DOING')))).toThrow(/phase DOING is used twice/);
  expect(() => phasesOf(saga(step('a', 'CONFIRMED')))).toThrow(/phase CONFIRMED is used twice/);
  // Versions: the newest's order first, then what only older ones have; a phase is one step's in all.
  const v2 = { ...saga(step('c', 'DOING_C'), step('a', 'DOING_A')), version: 2 };
  expect(phasesOf(saga(step('a', 'DOING_A'), step('b', 'DOING_B')), v2)).toEqual([
    'PENDING',
    'DOING_C',
    'DOING_A',
    'DOING_B',
    'COMPENSATING',
    'CONFIRMED',
    'FAILED',
  ]);
  expect(() => phasesOf(saga(step('a', 'DOING_A')), { ...saga(step('z', 'DOING_A')), version: 2 })).toThrow(
    /phase DOING_A is both a's and z's/,
  );
});

test("the SagaOrder CRD's phase enum is the saga's phases, CamelCase", () => {
  const crd = parse(readFileSync(join(ROOT, 'charts', 'ordersaga', 'crds', 'sagaorders.ordersaga.dev.yaml'), 'utf8'));
  const status = crd.spec.versions[0].schema.openAPIV3Schema.properties.status.properties;
  expect(status.phase.enum).toEqual([...SAGAORDER_PHASES]);
  expect(SAGAORDER_PHASES).toEqual([...ORDER_PHASES.map(sagaOrderPhase), 'Cancelling']);
  expect(SAGAORDER_PHASES).toEqual([
    'Pending',
    'Verifying',
    'Reserving',
    'Charging',
    'Compensating',
    'Confirmed',
    'Failed',
    'Cancelling',
  ]);
});
