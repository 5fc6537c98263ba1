/**
 * Reads while a service restores its state after a crash: thousands of orders in the state,
 * SIGKILL, restart, and GETs all along. A reader is never told that an existing order does not
 * exist, nor a wrong level or balance: it gets the right answer, or 503 with Retry-After.
 */
import { eventually, Stack, type Component } from './support/stack.js';

const ORDERS = 2_000;
/** Clients reading at once: enough that even a short restore is read through. */
const READERS = 8;
const PRICE = 100;
const stack = new Stack({
  env: {
    stock: { STOCK_CATALOG: JSON.stringify({ PEN: { quantity: 1_000_000, price: PRICE } }) },
    billing: { BILLING_ACCOUNTS: JSON.stringify({ alice: 1_000_000_000 }) },
  },
});

let orderIds: string[] = [];

beforeAll(async () => {
  await stack.startAll();
  const queue = Array.from({ length: ORDERS }, (_, i) => i);
  const placed: string[] = [];
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (queue.shift() !== undefined) {
        const { status, body } = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'PEN', quantity: 1 }] });
        if (status !== 202) throw new Error(`POST /orders answered ${status}: ${JSON.stringify(body)}`);
        placed.push(body.orderId);
      }
    }),
  );
  orderIds = placed;
  await eventually(
    `all ${ORDERS} orders to be sold and captured`,
    async () => {
      const [{ body: pen }, { body: alice }] = await Promise.all([
        stack.http('stock', '/stock/PEN'),
        stack.http('billing', '/accounts/alice'),
      ]);
      return pen.sold === ORDERS && alice.charged === ORDERS * PRICE ? true : undefined;
    },
    180_000,
  );
}, 240_000);
afterAll(() => stack.stopAll());

interface Sample {
  readonly path: string;
  readonly status: number;
  readonly body: any;
  readonly retryAfter: string | null;
}

/**
 * SIGKILLs the service, restarts it, and reads `paths()` with READERS clients from before its port
 * opens until it is ready, and a little after. Returns every answer it got.
 */
async function readThroughRestart(service: Component, paths: () => string): Promise<Sample[]> {
  await stack.stop(service, '0', 'SIGKILL');
  let ready = false;
  const restarted = stack.start(service).then(() => (ready = true));
  const samples: Sample[] = [];
  let afterReady = 0;
  const reader = async () => {
    while (!ready || afterReady < 20) {
      const path = paths();
      let url: string;
      try {
        url = stack.url(service);
      } catch {
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      const response = await fetch(`${url}${path}`).catch(() => undefined);
      if (!response) continue; // not listening yet
      if (ready) afterReady++;
      samples.push({
        path,
        status: response.status,
        body: await response.json(),
        retryAfter: response.headers.get('retry-after'),
      });
    }
  };
  await Promise.all([restarted, ...Array.from({ length: READERS }, reader)]);
  const unavailable = samples.filter((s) => s.status === 503).length;
  console.log(`${service} restart with ${ORDERS} orders: ${samples.length} reads, ${unavailable} answered 503`);
  return samples;
}

const pick = () => orderIds[Math.floor(Math.random() * orderIds.length)]!;

/** Every answer is the right one (as `check` says) or a 503 with a reason and Retry-After; some are each. */
function expectRightOr503(samples: Sample[], check: (sample: Sample) => void) {
  const unavailable = samples.filter((s) => s.status === 503);
  const answered = samples.filter((s) => s.status !== 503);
  for (const sample of unavailable) {
    expect(sample.retryAfter).toMatch(/^\d+$/);
    expect(sample.body.message).toMatch(/restoring its state/);
  }
  for (const sample of answered) {
    expect({ path: sample.path, status: sample.status }).toEqual({ path: sample.path, status: 200 });
    check(sample);
  }
  // The restore was read through (503s), and ended (right answers).
  expect(unavailable.length).toBeGreaterThan(0);
  expect(answered.length).toBeGreaterThan(0);
}

test('order: every GET during the restore is 200 with the right order or 503, never 404', async () => {
  const samples = await readThroughRestart('order', () => `/orders/${pick()}`);
  expectRightOr503(samples, ({ path, body }) => {
    expect(`/orders/${body.orderId}`).toBe(path);
    expect(body.status).toBe('CONFIRMED');
  });
});

test('stock: levels read during the restore are right or 503', async () => {
  const samples = await readThroughRestart('stock', () => (Math.random() < 0.5 ? '/stock/PEN' : '/stock'));
  expectRightOr503(samples, ({ body }) => {
    const pen = Array.isArray(body) ? body.find((l: any) => l.sku === 'PEN') : body;
    expect(pen).toMatchObject({ sold: ORDERS, reserved: 0, available: 1_000_000 - ORDERS });
  });
});

test('billing: accounts and payments read during the restore are right or 503', async () => {
  const samples = await readThroughRestart('billing', () =>
    Math.random() < 0.5 ? '/accounts/alice' : `/payments/${pick()}`,
  );
  expectRightOr503(samples, ({ path, body }) => {
    if (path === '/accounts/alice') expect(body).toMatchObject({ charged: ORDERS * PRICE, held: 0 });
    else expect(body).toMatchObject({ status: 'captured', amount: PRICE });
  });
});

test('notification: records read during the restore are right or 503', async () => {
  const samples = await readThroughRestart('notification', () => `/notifications/${pick()}`);
  expectRightOr503(samples, ({ path, body }) => {
    expect(`/notifications/${body.orderId}`).toBe(path);
    expect(body).toMatchObject({ outcome: 'confirmed', knownFrom: { topic: 'order.state', phase: 'CONFIRMED' } });
  });
});
