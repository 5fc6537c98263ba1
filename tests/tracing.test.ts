/**
 * One order, one trace: the four services export their spans (OTLP/HTTP, configured by the
 * standard OTEL_* variables only) to a real OpenTelemetry Collector, and the trace it received is
 * checked: spans of every service and of the orchestrator, each linked to its parent across Kafka.
 */
import { SAGA_TOPICS, type SagaTopic, type TopicSpec } from '@ordersaga/contracts';
import { Collector, renderTrace, SpanKind, type ExportedSpan } from './support/collector.js';
import { eventually, Stack } from './support/stack.js';

const collector = new Collector();
let stack: Stack;

beforeAll(async () => {
  await collector.start();
  const otel = {
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
    OTEL_BSP_SCHEDULE_DELAY: '100',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=tracing-test',
  };
  stack = new Stack({
    env: {
      order: otel,
      stock: { ...otel, STOCK_CATALOG: JSON.stringify({ PEN: { quantity: 100, price: 200 } }) },
      billing: { ...otel, BILLING_ACCOUNTS: JSON.stringify({ alice: 100_000, bob: 100 }) },
      notification: otel,
    },
  });
  await stack.startAll();
});
afterAll(async () => {
  await stack?.stopAll();
  await collector.stop();
});

const pen = { customerId: 'alice', items: [{ sku: 'PEN', quantity: 1 }] };

/**
 * The first hops, the same for every order: Stock and Billing each ask the one owner of what
 * they decide on (the SKU, the customer) through their internal topics before they answer.
 */
const RESERVE_AND_CHARGE = `\
order: POST /orders
  order: send order.placed
    order: process order.placed
      order: saga orderSaga: reserveStock
        order: send stock.check.request
          stock: process stock.check.request
            stock: send stock.sku.reserve
              stock: process stock.sku.reserve
                stock: send stock.sku.reserved
                  stock: process stock.sku.reserved
                    stock: send stock.checked
                      order: process stock.checked
                        order: saga orderSaga: chargePayment
                          order: send payment.request
                            billing: process payment.request
                              billing: send billing.credit.authorize
                                billing: process billing.credit.authorize
                                  billing: send billing.credit.authorized
                                    billing: process billing.credit.authorized
                                      billing: send payment.result
                                        order: process payment.result`;

const CONFIRMED = `${RESERVE_AND_CHARGE}
                                          order: saga orderSaga: confirmed
                                            order: send order.confirmed
                                              billing: process order.confirmed
                                                billing: send billing.credit.capture
                                                  billing: process billing.credit.capture
                                              notification: process order.confirmed
                                              stock: process order.confirmed
                                                stock: send stock.sku.sell
                                                  stock: process stock.sku.sell`;

/** Stock's compensation and the saga's end, indented to sit at `depth` under the step that failed. */
const released = (reason: string, depth: number) =>
  `\
stock: process stock.release
  stock: send stock.released
    order: process stock.released
      order: saga orderSaga: failed [ERROR: ${reason}]
        order: send order.failed
          notification: process order.failed
  stock: send stock.sku.release
    stock: process stock.sku.release`
    .split('\n')
    .map((line) => `${'  '.repeat(depth)}${line}`)
    .join('\n');

const lines = (tree: string) => tree.split('\n').length;

/** The spans of a trace, once `count` have arrived (each service exports every 100 ms). */
function spansOf(traceId: string, count: number, what = `${count} spans of trace ${traceId}`) {
  return eventually(what, async () => {
    const spans = collector.spans().filter((s) => s.traceId === traceId);
    return spans.length >= count ? spans : undefined;
  });
}

/** Places an order, waits for its end and for its trace: `tree` says how many spans to expect. */
async function placeAndTrace(body: unknown, tree: string, headers: Record<string, string> = {}) {
  const placed = await stack.placeOrder(body, headers);
  expect(placed.status).toBe(202);
  const order = await stack.finished(placed.body.orderId);
  expect(order.traceId).toMatch(/^[0-9a-f]{32}$/);
  const spans = await spansOf(order.traceId, lines(tree));
  console.log(`trace ${order.traceId} of order ${order.orderId} (${order.status}):\n${renderTrace(spans)}`);
  return { order, spans };
}

/** What holds for every order's trace. */
function expectOneLinkedTrace(order: any, spans: readonly ExportedSpan[]) {
  // Every span about the order is in its trace: one order, one trace.
  const aboutOrder = collector.spans().filter((s) => s.attributes['ordersaga.order_id'] === order.orderId);
  expect(new Set(aboutOrder.map((s) => s.traceId))).toEqual(new Set([order.traceId]));

  expect(new Set(spans.map((s) => s.service))).toEqual(
    new Set(['ordersaga-order', 'ordersaga-stock', 'ordersaga-billing', 'ordersaga-notification']),
  );
  for (const span of spans) {
    expect(span.resource).toMatchObject({
      'deployment.environment.name': 'tracing-test',
      'service.instance.id': `${span.service.replace('ordersaga-', '')}-0`,
    });
  }

  // One root, the HTTP request; every other span's parent is in the trace.
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const roots = spans.filter((s) => !byId.has(s.parentSpanId));
  expect(roots.map((s) => [s.service, s.kind, s.name])).toEqual([['ordersaga-order', SpanKind.SERVER, 'POST /orders']]);
  expect(roots[0]!.attributes).toMatchObject({
    'http.request.method': 'POST',
    'http.route': '/orders',
    'http.response.status_code': 202,
    'ordersaga.correlation_id': order.correlationId,
  });

  // Across Kafka: each message is processed in a consumer span whose parent is the producer
  // span that sent it, in the service the topic list names as its producer, under the key it
  // names (the orderId; the SKU or customer for the internal topics of Stock and Billing).
  for (const consumer of spans.filter((s) => s.kind === SpanKind.CONSUMER)) {
    const producer = byId.get(consumer.parentSpanId)!;
    const topic = consumer.name.replace('process ', '');
    expect({ consumer: consumer.name, producer: producer.name, kind: producer.kind }).toEqual({
      consumer: consumer.name,
      producer: `send ${topic}`,
      kind: SpanKind.PRODUCER,
    });
    const spec: TopicSpec = SAGA_TOPICS[topic as SagaTopic];
    expect(producer.service).toBe(`ordersaga-${spec.producer}`);
    const key = spec.key === 'sku' ? 'PEN' : spec.key === 'customerId' ? order.customerId : order.orderId;
    expect(consumer.attributes).toMatchObject({
      'messaging.system': 'kafka',
      'messaging.operation.type': 'process',
      'messaging.destination.name': stack.topic(topic as any),
      'messaging.destination.partition.id': expect.stringMatching(/^\d+$/),
      'messaging.kafka.offset': expect.any(Number),
      'messaging.kafka.message.key': key,
      'ordersaga.order_id': order.orderId,
      'ordersaga.correlation_id': order.correlationId,
    });
  }
}

test('a confirmed order is one trace: Order API -> orchestrator -> Stock -> orchestrator -> Billing -> orchestrator -> Notification', async () => {
  const { order, spans } = await placeAndTrace(pen, CONFIRMED);
  expect(order.status).toBe('CONFIRMED');
  expect(renderTrace(spans)).toBe(CONFIRMED);
  expectOneLinkedTrace(order, spans);

  // The orchestrator's spans: the step it runs next, and what led there.
  const saga = (name: string) => spans.find((s) => s.name === `saga orderSaga: ${name}`)!;
  expect(saga('reserveStock').attributes).toMatchObject({
    'ordersaga.saga.name': 'orderSaga',
    'ordersaga.saga.step': 'reserveStock',
    'ordersaga.saga.phase': 'RESERVING',
    'ordersaga.order_id': order.orderId,
  });
  expect(saga('reserveStock').events).toEqual(['reserveStock requested']);
  expect(saga('chargePayment').events).toEqual(['stock reserved', 'chargePayment requested']);
  expect(saga('confirmed').attributes['ordersaga.saga.phase']).toBe('CONFIRMED');
  expect(saga('confirmed').events).toEqual(['payment approved', 'order confirmed']);
  expect(spans.filter((s) => s.error !== undefined)).toEqual([]);
});

test("the caller's traceparent is continued: the trace is the caller's, its span the request's parent", async () => {
  const traceId = '5c1e3a3b0e2a4f6b8d9c7e1f2a3b4c5d';
  const callerSpan = '7a9b1c3d5e7f9a1b';
  const { order, spans } = await placeAndTrace(pen, CONFIRMED, { traceparent: `00-${traceId}-${callerSpan}-01` });
  expect(order.traceId).toBe(traceId);
  expect(renderTrace(spans)).toBe(CONFIRMED);
  expect(spans.find((s) => s.name === 'POST /orders')!.parentSpanId).toBe(callerSpan);
  expectOneLinkedTrace(order, spans);
});

test('a declined payment: the compensation (stock.release) is in the same trace, failed spans marked', async () => {
  const declined = { customerId: 'bob', items: [{ sku: 'PEN', quantity: 1 }] };
  const reason = 'payment declined: insufficient credit: 200 requested, 100 available';
  const tree = `${RESERVE_AND_CHARGE}
                                          order: saga orderSaga: releaseStock [ERROR: ${reason}]
                                            order: send stock.release
${released(reason, 23)}`;
  const { order, spans } = await placeAndTrace(declined, tree);
  expect(order).toMatchObject({ status: 'FAILED', failureReason: reason });
  expect(renderTrace(spans)).toBe(tree);
  expectOneLinkedTrace(order, spans);
  expect(spans.find((s) => s.name === 'saga orderSaga: releaseStock')!.events).toEqual([
    `chargePayment failed: ${reason}`,
    'releaseStock requested',
  ]);
});

test('SIGTERM exports the spans still buffered', async () => {
  // A Notification that would hold its spans for ten minutes: only its shutdown sends them.
  await stack.stop('notification');
  await stack.start('notification', '1', { OTEL_BSP_SCHEDULE_DELAY: '600000' });
  const placed = await stack.placeOrder(pen);
  const order = await stack.finished(placed.body.orderId);
  const others = await spansOf(order.traceId, lines(CONFIRMED) - 1);
  await eventually('Notification to handle order.confirmed', async () => {
    const response = await fetch(`${stack.url('notification', '1')}/notifications/${order.orderId}`);
    return response.ok ? true : undefined;
  });
  expect(others.filter((s) => s.service === 'ordersaga-notification')).toEqual([]);

  expect(await stack.stop('notification', '1')).toBe(0);
  const spans = await spansOf(order.traceId, lines(CONFIRMED), 'the spans Notification held until SIGTERM');
  expect(renderTrace(spans)).toBe(CONFIRMED);
  await stack.start('notification');
});

test('a timeout continues the trace from the message the saga last handled', async () => {
  // Billing away and a short step timeout: the orchestrator's clock compensates the order.
  await stack.stop('billing');
  await stack.stop('order');
  await stack.start('order', '0', { SAGA_STEP_TIMEOUT_MS: '2000' });
  const reason = 'chargePayment timed out after 2000 ms waiting for payment.result';
  // Up to the payment request as always; then no reply, and the clock's compensation.
  const untilPaymentRequest = RESERVE_AND_CHARGE.split('\n').slice(0, 14).join('\n');
  const tree = `${untilPaymentRequest}
                        order: saga orderSaga: releaseStock [ERROR: ${reason}]
                          order: send payment.cancel
                          order: send stock.release
${released(reason, 14)}`;
  const { order, spans } = await placeAndTrace(pen, tree);
  expect(order).toMatchObject({ status: 'FAILED', failureReason: reason });
  expect(renderTrace(spans)).toBe(tree);
  expect(spans.find((s) => s.name === 'saga orderSaga: releaseStock')!.events).toEqual([
    reason,
    'cancelPayment sent',
    'releaseStock requested',
  ]);
});
