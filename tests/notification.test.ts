/**
 * Notifications: one per terminal order, kept readable over HTTP; a customer's webhook is called
 * over https, retried, and dead-lettered with the reason when it keeps failing; a webhook that
 * leads into the cluster (loopback, a private address, a name resolving to loopback, a redirect
 * to loopback) is refused, with the reason, and counted; a plain-http webhook stops the start.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventually, Stack } from './support/stack.js';
import { testCertificate } from './support/tls.js';

// The receiver is on 127.0.0.2, the one non-public address the service is told to allow: the
// rest of loopback stays refused, as every other private range.
const RECEIVER = '127.0.0.2';
const received: Array<{ path: string; body: any; idempotencyKey: string | undefined }> = [];
let failures = 0;
let server: Server;
let stack: Stack;
let port: number;

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let data = '';
    req.on('data', (chunk) => (data += chunk));
    req.on('end', () => resolve(data));
  });

const certificate = testCertificate('webhooks', [`IP:${RECEIVER}`, 'IP:127.0.0.1', 'DNS:localhost']);
const CUSTOMERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'] as const;

beforeAll(async () => {
  server = createServer({ cert: certificate.cert, key: certificate.key }, async (req, res) => {
    const body = JSON.parse(await readBody(req));
    if (req.url === '/broken') {
      failures++;
      res.writeHead(500).end();
      return;
    }
    if (req.url === '/moved') {
      res.writeHead(302, { location: `https://127.0.0.1:${port}/alice` }).end();
      return;
    }
    received.push({ path: req.url!, body, idempotencyKey: req.headers['idempotency-key'] as string | undefined });
    res.writeHead(204).end();
  });
  await new Promise<void>((resolve) => server.listen(0, RECEIVER, resolve));
  port = (server.address() as AddressInfo).port;
  const base = `https://${RECEIVER}:${port}`;
  stack = new Stack({
    env: {
      stock: { STOCK_CATALOG: JSON.stringify({ SOCK: { quantity: 50, price: 500 } }) },
      billing: { BILLING_ACCOUNTS: JSON.stringify(Object.fromEntries(CUSTOMERS.map((c) => [c, 10_000]))) },
      notification: {
        NOTIFICATION_WEBHOOKS: JSON.stringify({
          alice: `${base}/alice`,
          bob: `${base}/broken`,
          carol: `https://127.0.0.1:${port}/carol`,
          dave: 'https://10.0.0.1/dave',
          erin: `https://localhost:${port}/erin`,
          frank: `${base}/moved`,
        }),
        NOTIFICATION_WEBHOOK_ALLOWED_CIDRS: `${RECEIVER}/32`,
        NODE_EXTRA_CA_CERTS: certificate.caFile,
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

const storedNotification = (orderId: string) =>
  eventually('the stored notification', async () => {
    const { status, body: n } = await stack.http('notification', `/notifications/${orderId}`);
    return status === 200 ? n : undefined;
  });

const deadLetterOf = (orderId: string) =>
  eventually('the dead letter', async () =>
    (await stack.readTopic('order.confirmed.dlt')).find((r) => r.key === orderId),
  );

test("the customer's https webhook is called once per order, with the notification", async () => {
  const { body } = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'SOCK', quantity: 2 }] });
  await stack.finished(body.orderId);
  const call = await eventually('the webhook call', async () => received.find((r) => r.body.orderId === body.orderId));
  expect(call).toMatchObject({ path: '/alice', idempotencyKey: `notification-${body.orderId}` });
  expect(call.body).toMatchObject({ outcome: 'confirmed', customerId: 'alice' });
  expect(call.body.message).toMatch(/is confirmed: 10.00 EUR/);
  // The webhook is called before the record is committed (at least once, never lost): poll for it.
  const stored = await storedNotification(body.orderId);
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
  const dead = await deadLetterOf(body.orderId);
  expect(dead.headers['dlt-kind']).toBe('effect-failed');
  expect(dead.headers['dlt-reason']).toMatch(/webhook https:\/\/127.0.0.2:\d+\/broken: webhook answered HTTP 500/);
  expect(failures).toBe(4); // the first call and three retries
  // The customer is still told once, in the record kept by the service.
  expect((await storedNotification(body.orderId)).outcome).toBe('confirmed');
  // ...and the next order's notification is not held up.
  const next = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'SOCK', quantity: 1 }] });
  await stack.finished(next.body.orderId);
  await eventually('the next webhook call', async () => received.find((r) => r.body.orderId === next.body.orderId));
});

test.each([
  ['carol', 'loopback', /127\.0\.0\.1 is not a public address/],
  ['dave', 'a private address', /10\.0\.0\.1 is not a public address/],
  ['erin', 'a name that resolves to loopback', /localhost resolves to (127\.0\.0\.1|::1), not a public address/],
  [
    'frank',
    'a redirect to loopback',
    /webhook answered HTTP 302 to https:\/\/127\.0\.0\.1:\d+\/alice: redirects are not followed/,
  ],
])("%s's webhook to %s is refused at once, with the reason", async (customerId, _what, reason) => {
  const before = received.length;
  const { body } = await stack.placeOrder({ customerId, items: [{ sku: 'SOCK', quantity: 1 }] });
  await stack.finished(body.orderId);
  const dead = await deadLetterOf(body.orderId);
  expect(dead.headers['dlt-kind']).toBe('effect-failed');
  expect(dead.headers['dlt-reason']).toMatch(reason);
  expect((await storedNotification(body.orderId)).outcome).toBe('confirmed');
  // Not retried (a refusal is not transient), and nothing reached a receiver.
  const log = stack.logTail('notification-0', 400);
  expect(
    log
      .split('\n')
      .filter((l) => l.includes(body.orderId) || l.includes(`/${customerId}`))
      .join('\n'),
  ).not.toMatch(/failed; retrying/);
  expect(received.length).toBe(before);
});

test('refusals are counted by reason', async () => {
  const { body } = await stack.http('notification', '/metrics');
  const count = (reason: string) =>
    Number(new RegExp(`^ordersaga_webhooks_refused_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(body)?.[1]);
  expect(count('address')).toBe(3);
  expect(count('redirect')).toBe(1);
});

test('a plain-http webhook is a configuration error at start-up, which says how to allow it', async () => {
  await expect(
    stack.start('notification', 'http', {
      NOTIFICATION_WEBHOOKS: JSON.stringify({ alice: 'http://hooks.example.com/alice' }),
    }),
  ).rejects.toThrow(
    /NOTIFICATION_WEBHOOKS\.alice: http webhooks are refused, only https \(NOTIFICATION_WEBHOOK_ALLOW_HTTP=true allows http\)/,
  );
});
