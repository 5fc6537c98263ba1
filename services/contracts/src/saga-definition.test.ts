/**
 * A saga's phases and failure kinds come from its steps, and everything that lists phases (the
 * SagaOrder CRD's enum, the controller's mapping) reads them from there.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ORDER_FAILURE_KINDS, ORDER_PHASES, orderSaga } from './order-saga.js';
import { command, failureKindsOf, phasesOf, type SagaDefinition } from './saga-definition.js';
import { SAGAORDER_PHASES, sagaOrderPhase } from './sagaorder.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');

test("the order saga's phases: PENDING, one per step in order, then COMPENSATING, CONFIRMED, FAILED", () => {
  expect(ORDER_PHASES).toEqual([
    'PENDING',
    ...orderSaga.steps.map((s) => s.phase),
    'COMPENSATING',
    'CONFIRMED',
    'FAILED',
  ]);
  expect(ORDER_PHASES).toEqual(['PENDING', 'RESERVING', 'CHARGING', 'COMPENSATING', 'CONFIRMED', 'FAILED']);
  expect(ORDER_FAILURE_KINDS).toEqual(['out_of_stock', 'unknown_sku', 'payment_declined', 'timeout', 'cancelled']);
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
});

test("the SagaOrder CRD's phase enum is the saga's phases, CamelCase", () => {
  const crd = parse(readFileSync(join(ROOT, 'charts', 'ordersaga', 'crds', 'sagaorders.ordersaga.dev.yaml'), 'utf8'));
  const status = crd.spec.versions[0].schema.openAPIV3Schema.properties.status.properties;
  expect(status.phase.enum).toEqual([...SAGAORDER_PHASES]);
  expect(SAGAORDER_PHASES).toEqual(ORDER_PHASES.map(sagaOrderPhase));
  expect(SAGAORDER_PHASES).toEqual(['Pending', 'Reserving', 'Charging', 'Compensating', 'Confirmed', 'Failed']);
});
