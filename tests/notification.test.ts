/**
 * Notifications: one per terminal order, kept readable over HTTP; a customer's webhook is
 * called, retried, and dead-lettered with the reason when it keeps failing.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventually, Stack } from './support/stack.js';

const received: Array<{ path: string; body: any; idempotencyKey: string | undefined }> = [];
let failures = 0;
let server: Server;
let stack: Stack;

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let data = '';
    req.on('data', (chunk) => (data += chunk));
    req.on('end', () => resolve(data));
  });

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const body = JSON.parse(await readBody(req));
    if (req.url === '/broken') {
      failures++;
      res.writeHead(500).end();
      return;
    }
    received.push({ path: req.url!, body, idempotencyKey: req.headers['idempotency-key'] as string | undefined });
    res.writeHead(204).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  stack = new Stack({
    env: {
      stock: { STOCK_CATALOG: JSON.stringify({ SOCK: { quantity: 50, price: 500 } }) },
      billing: { BILLING_ACCOUNTS: JSON.stringify({ alice: 10_000, bob: 10_000 }) },
      notification: {
        NOTIFICATION_WEBHOOKS: JSON.stringify({ alice: `${base}/alice`, bob: `${base}/broken` }),
        RETRY_ATTEMPTS: '3',
        RETRY_INITIAL_MS: '50',
      },
    },
  });
  await stack.startAll();
});

afterAll(async () => {
  await stack.stopAll();
  await new Promise((resolve) => server.close(resolve));
});

test("the customer's webhook is called once per order, with the notification", async () => {
  const { body } = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'SOCK', quantity: 2 }] });
  await stack.finished(body.orderId);
  const call = await eventually('the webhook call', async () => received.find((r) => r.body.orderId === body.orderId));
  expect(call).toMatchObject({ path: '/alice', idempotencyKey: `notification-${body.orderId}` });
  expect(call.body).toMatchObject({ outcome: 'confirmed', customerId: 'alice' });
  expect(call.body.message).toMatch(/is confirmed: 10.00 EUR/);
  // The webhook is called before the record is committed (at least once, never lost): poll for it.
  const stored = await eventually('the stored notification', async () => {
    const { status, body: n } = await stack.http('notification', `/notifications/${body.orderId}`);
    return status === 200 ? n : undefined;
  });
  expect(stored).toMatchObject({
    orderId: body.orderId,
    outcome: 'confirmed',
    webhook: expect.stringMatching(/\/alice$/),
  });
  expect(received.filter((r) => r.body.orderId === body.orderId)).toHaveLength(1);
});

test('a webhook that keeps failing is retried, then dead-lettered with the reason', async () => {
  const { body } = await stack.placeOrder({ customerId: 'bob', items: [{ sku: 'SOCK', quantity: 1 }] });
  await stack.finished(body.orderId);
  const dead = await eventually('the dead letter', async () =>
    (await stack.readTopic('order.confirmed.dlt')).find((r) => r.key === body.orderId),
  );
  expect(dead.headers['dlt-kind']).toBe('effect-failed');
  expect(dead.headers['dlt-reason']).toMatch(/webhook http:\/\/127.0.0.1:\d+\/broken: webhook answered HTTP 500/);
  expect(failures).toBe(4); // the first call and three retries
  // The customer is still told once, in the record kept by the service.
  const stored = await eventually('the stored notification', async () => {
    const { status, body: n } = await stack.http('notification', `/notifications/${body.orderId}`);
    return status === 200 ? n : undefined;
  });
  expect(stored.outcome).toBe('confirmed');
  // ...and the next order's notification is not held up.
  const next = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'SOCK', quantity: 1 }] });
  await stack.finished(next.body.orderId);
  await eventually('the next webhook call', async () => received.find((r) => r.body.orderId === next.body.orderId));
});
