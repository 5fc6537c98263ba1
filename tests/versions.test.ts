/**
 * Saga versions: sagas started on v1 (reserve, charge) are in flight when the orchestrator is
 * redeployed to start new ones on v2 (verify the customer first). Each ends on the version it
 * started on, both run side by side, and the in-flight gauge shows how many of each are left.
 */
import { expectInvariants, type World } from './support/invariants.js';
import { eventually, Stack } from './support/stack.js';

const world: World = {
  catalog: { KB: { quantity: 100, price: 5_000 } },
  accounts: { alice: 1_000_000 },
};
const stack = new Stack({
  env: {
    // Long enough that nothing times out while Billing is down.
    order: { SAGA_STEP_TIMEOUT_MS: '60000', SAGA_VERSION: '1' },
    stock: { STOCK_CATALOG: JSON.stringify(world.catalog) },
    billing: { BILLING_ACCOUNTS: JSON.stringify(world.accounts) },
  },
});

beforeAll(() => stack.startAll());
afterAll(() => stack.stopAll());

const place = async (customerId: string) =>
  (await stack.placeOrder({ customerId, items: [{ sku: 'KB', quantity: 1 }] })).body.orderId as string;
const inPhase = (orderId: string, phase: string) =>
  eventually(`${orderId} to be ${phase}`, async () => {
    const { body } = await stack.http('order', `/orders/${orderId}`);
    return body.status === phase ? body : undefined;
  });
const inFlight = async () => {
  const metrics = (await stack.http('order', '/metrics')).body as string;
  return Object.fromEntries(
    [...metrics.matchAll(/^ordersaga_sagas_in_flight\{version="(\d+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]),
  );
};
const events = (order: { history: Array<{ event: string }> }) => order.history.map((h) => h.event);

test('sagas started on v1 finish on v1 after v2 is deployed; new ones run v2, its extra step included', async () => {
  await stack.stop('billing');
  const v1 = await Promise.all(Array.from({ length: 5 }, () => place('alice')));
  for (const orderId of v1) expect(await inPhase(orderId, 'CHARGING')).toMatchObject({ sagaVersion: 1 });

  // Deploy v2: the orchestrator restarts, starting new sagas on v2, its v1 sagas still waiting.
  await stack.stop('order');
  await stack.start('order', '0', { SAGA_VERSION: '2' });
  const v2 = await Promise.all(Array.from({ length: 5 }, () => place('alice')));
  const stranger = await place('mallory');
  for (const orderId of [...v2, stranger]) {
    expect(await inPhase(orderId, 'VERIFYING')).toMatchObject({ sagaVersion: 2, step: 'verifyCustomer' });
  }
  expect(await inFlight()).toEqual({ '1': 5, '2': 6 });

  await stack.start('billing');
  for (const orderId of v1) {
    const order = await stack.finished(orderId);
    expect(order).toMatchObject({ status: 'CONFIRMED', sagaVersion: 1 });
    expect(events(order)).not.toContain('customer verified');
  }
  for (const orderId of v2) {
    const order = await stack.finished(orderId);
    expect(order).toMatchObject({ status: 'CONFIRMED', sagaVersion: 2 });
    const story = events(order);
    expect(story.indexOf('customer verified')).toBeGreaterThan(-1);
    expect(story.indexOf('customer verified')).toBeLessThan(story.indexOf('stock reserved'));
  }
  // v2's extra step: an unknown customer's order fails before any stock is asked for.
  expect(await stack.finished(stranger)).toMatchObject({
    status: 'FAILED',
    failureReason: 'unknown customer mallory',
  });
  expect((await stack.readTopic('stock.check.request')).filter((r) => r.key === stranger)).toHaveLength(0);
  expect(await inFlight()).toEqual({ '1': 0, '2': 0 });
  await expectInvariants(stack, world);
});

test('a version the code does not have is refused at start, with the versions it has', async () => {
  await stack.stop('order');
  await expect(stack.start('order', '0', { SAGA_VERSION: '3' })).rejects.toThrow(
    /SAGA_VERSION is 3; this code runs saga versions 1, 2/,
  );
});
