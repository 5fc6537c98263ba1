/**
 * The Order API's contract: validation, idempotency, 404s, OpenAPI; that refused requests
 * publish nothing; and the script `helm test` runs against it.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ASYNCAPI_FILE, ORDER_PHASES, SERVICE_NAMES } from '@ordersaga/contracts';
import { ROOT, Stack } from './support/stack.js';

const stack = new Stack({
  env: { stock: { STOCK_CATALOG: JSON.stringify({ PEN: { quantity: 100, price: 200 } }) } },
});

beforeAll(() => stack.startAll());
afterAll(() => stack.stopAll());

const invalid: Array<[string, unknown, RegExp]> = [
  ['no body fields', {}, /must have required property 'customerId'/],
  ['no items', { customerId: 'alice', items: [] }, /items must NOT have fewer than 1 items/],
  ['zero quantity', { customerId: 'alice', items: [{ sku: 'PEN', quantity: 0 }] }, /quantity must be >= 1/],
  ['fractional quantity', { customerId: 'alice', items: [{ sku: 'PEN', quantity: 1.5 }] }, /quantity must be integer/],
  ['bad sku', { customerId: 'alice', items: [{ sku: 'no spaces', quantity: 1 }] }, /sku must match pattern/],
  // Types are not coerced: what the saga carries is what the caller sent.
  ['quantity as a string', { customerId: 'alice', items: [{ sku: 'PEN', quantity: '3' }] }, /quantity must be integer/],
  ['customerId as a number', { customerId: 42, items: [{ sku: 'PEN', quantity: 1 }] }, /customerId must be string/],
  ['items as an object', { customerId: 'alice', items: { sku: 'PEN', quantity: 1 } }, /items must be array/],
  [
    'unknown field',
    { customerId: 'alice', items: [{ sku: 'PEN', quantity: 1 }], discount: 50 },
    /must NOT have additional properties/,
  ],
  ['malformed JSON', '{"customerId": "alice", "items": [', /JSON/],
];

test.each(invalid)('400 with a reason for %s, and nothing published', async (_name, body, reason) => {
  const response = await stack.placeOrder(body);
  expect(response.status).toBe(400);
  expect(response.body.message).toMatch(reason);
});

test('a refused request publishes nothing', async () => {
  // The batch above was all refused; one good order now is the only order.placed of this stack.
  const good = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'PEN', quantity: 1 }] });
  expect(good.status).toBe(202);
  const placed = await stack.readTopic('order.placed');
  expect(placed.map((r) => r.key)).toEqual([good.body.orderId]);
});

test('400 for a body that is not a JSON object', async () => {
  const response = await stack.http('order', '/orders', {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: 'two pens please',
  });
  expect(response.status).toBe(400);
  expect(response.body.message).toMatch(/body must be object/);
});

test('unknown order: 404 with a reason', async () => {
  const response = await stack.http('order', '/orders/does-not-exist');
  expect(response.status).toBe(404);
  expect(response.body.message).toBe('order does-not-exist not found');
});

test('the same Idempotency-Key returns the same order; another body with it is refused', async () => {
  const body = { customerId: 'alice', items: [{ sku: 'PEN', quantity: 2 }] };
  const headers = { 'idempotency-key': 'checkout-42' };
  const first = await stack.placeOrder(body, headers);
  expect(first.status).toBe(202);
  await stack.finished(first.body.orderId);
  const again = await stack.placeOrder(body, headers);
  expect(again.status).toBe(200);
  expect(again.body.orderId).toBe(first.body.orderId);
  expect(again.body.status).toBe('CONFIRMED');

  const other = await stack.placeOrder({ ...body, items: [{ sku: 'PEN', quantity: 3 }] }, headers);
  expect(other.status).toBe(422);
  expect(other.body.message).toMatch(/Idempotency-Key/);
  // The same key from another customer is another order.
  const bob = await stack.placeOrder({ ...body, customerId: 'bob' }, headers);
  expect(bob.status).toBe(202);
  expect(bob.body.orderId).not.toBe(first.body.orderId);

  const placed = (await stack.readTopic('order.placed')).filter((r) => r.key === first.body.orderId);
  expect(placed).toHaveLength(1);
});

test('the OpenAPI document describes the API', async () => {
  const { status, body } = await stack.http('order', '/openapi.json');
  expect(status).toBe(200);
  expect(body.openapi).toMatch(/^3\./);
  expect(Object.keys(body.paths)).toEqual(expect.arrayContaining(['/orders', '/orders/{id}']));
  expect(Object.keys(body.paths['/orders/{id}'])).toEqual(expect.arrayContaining(['get', 'delete']));
  expect(Object.keys(body.paths['/orders/{id}'].delete.responses)).toEqual(
    expect.arrayContaining(['202', '404', '409']),
  );
  expect(body.paths['/orders'].post.requestBody.content['application/json'].schema.required).toEqual([
    'customerId',
    'items',
  ]);
  // An order's status is one of the saga's phases, as its definition derives them.
  const order = body.paths['/orders/{id}'].get.responses['200'].content['application/json'].schema;
  expect(order.properties.status.anyOf.map((p: { const?: string; enum?: string[] }) => p.const ?? p.enum?.[0])).toEqual(
    [...ORDER_PHASES],
  );
});

test('the AsyncAPI document is served as docs/ holds it', async () => {
  const { status, body } = await stack.http('order', '/asyncapi.json');
  expect(status).toBe(200);
  expect(body).toEqual(JSON.parse(readFileSync(join(ROOT, ASYNCAPI_FILE), 'utf8')));
});

test('health, readiness and metrics endpoints', async () => {
  expect((await stack.http('stock', '/healthz')).status).toBe(200);
  expect((await stack.http('stock', '/readyz')).body).toEqual({ status: 'ready' });
  const metrics = await stack.http('order', '/metrics');
  expect(metrics.body).toMatch(/ordersaga_messages_consumed_total\{topic="order.placed"\} \d+/);
});

/** The topics a confirmed order's messages go through. */
const TOPICS_OF_A_CONFIRMED_ORDER = [
  'order.placed',
  'stock.check.request',
  'stock.checked',
  'payment.request',
  'order.confirmed',
] as const;

test("the caller's X-Correlation-Id follows the order through every message", async () => {
  const { body } = await stack.placeOrder(
    { customerId: 'alice', items: [{ sku: 'PEN', quantity: 1 }] },
    { 'x-correlation-id': 'checkout-7f3a' },
  );
  expect(body.correlationId).toBe('checkout-7f3a');
  await stack.finished(body.orderId);
  for (const topic of TOPICS_OF_A_CONFIRMED_ORDER) {
    const [record] = (await stack.readTopic(topic)).filter((r) => r.key === body.orderId);
    expect({ topic, correlationId: record!.json.correlationId, header: record!.headers['correlation-id'] }).toEqual({
      topic,
      correlationId: 'checkout-7f3a',
      header: 'checkout-7f3a',
    });
  }
});

test("the caller's W3C traceparent gives the order its trace id, carried by every message", async () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const { body } = await stack.placeOrder(
    { customerId: 'alice', items: [{ sku: 'PEN', quantity: 1 }] },
    { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
  );
  const order = await stack.finished(body.orderId);
  expect(order.traceId).toBe(traceId);
  for (const topic of TOPICS_OF_A_CONFIRMED_ORDER) {
    const [record] = (await stack.readTopic(topic)).filter((r) => r.key === body.orderId);
    expect({ topic, traceparent: record!.headers.traceparent?.split('-')[1] }).toEqual({ topic, traceparent: traceId });
  }
  // Without one, the order still gets a trace of its own.
  const other = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'PEN', quantity: 1 }] });
  expect((await stack.finished(other.body.orderId)).traceId).toMatch(/^[0-9a-f]{32}$/);
});

test('Prometheus metrics: HTTP requests by route and status, sagas by outcome', async () => {
  const { body } = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'PEN', quantity: 1 }] });
  await stack.finished(body.orderId);
  await stack.http('order', '/orders/no-such-order');
  const metrics = (await stack.http('order', '/metrics')).body as string;
  expect(metrics).toMatch(
    /ordersaga_http_request_duration_seconds_count\{method="POST",route="\/orders",status_code="202"\} [1-9]/,
  );
  expect(metrics).toMatch(
    /ordersaga_http_request_duration_seconds_count\{method="GET",route="\/orders\/:id",status_code="404"\} [1-9]/,
  );
  expect(metrics).toMatch(/ordersaga_sagas_started_total [1-9]/);
  expect(metrics).toMatch(/ordersaga_sagas_finished_total\{outcome="confirmed",reason="none"\} [1-9]/);
  expect(metrics).toMatch(/ordersaga_saga_duration_seconds_count\{outcome="confirmed"\} [1-9]/);
  expect(metrics).toMatch(/ordersaga_saga_step_duration_seconds_count\{step="chargePayment"\} [1-9]/);
  expect(metrics).toMatch(/ordersaga_sagas_in_flight\{version="1"\} 0/);
  expect(metrics).toMatch(/ordersaga_sagas_in_flight\{version="2"\} 0/);
});

describe("helm test's script (scripts/helm-test.mjs), run against these services", () => {
  const script = join(ROOT, 'scripts', 'helm-test.mjs');
  const run = (env: Record<string, string>) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      execFile(process.execPath, [script], { env: { PATH: process.env.PATH, ...env } }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      );
    });
  const readyz = () => SERVICE_NAMES.map((s) => `${stack.url(s)}/readyz`).join(' ');

  test('every component ready, an order placed and followed to its end: exit 0', async () => {
    const { code, out } = await run({
      ORDERSAGA_READYZ: readyz(),
      ORDERSAGA_ORDER_URL: stack.url('order'),
      ORDERSAGA_ORDER: JSON.stringify({ customerId: 'alice', items: [{ sku: 'PEN', quantity: 1 }] }),
    });
    expect(out).toMatch(/ended: order \S+ CONFIRMED/);
    expect(out.match(/^ready: /gm)).toHaveLength(SERVICE_NAMES.length);
    expect(code).toBe(0);
  });

  test('a component that does not answer, or an order refused: exit 1, saying which and why', async () => {
    const closed = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const away = await run({ ORDERSAGA_READYZ: `${readyz()} http://127.0.0.1:${closed}/readyz` });
    expect(away.code).toBe(1);
    expect(away.out).toContain(`helm test failed: GET http://127.0.0.1:${closed}/readyz: connect ECONNREFUSED`);
    const refused = await run({ ORDERSAGA_ORDER_URL: stack.url('order'), ORDERSAGA_ORDER: '{"customerId":"alice"}' });
    expect(refused.code).toBe(1);
    expect(refused.out).toMatch(/POST \S+\/orders answered 400: .*items/);
  });
});
