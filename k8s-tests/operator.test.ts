/**
 * The SagaOrder controller against a real kube-apiserver (+ etcd) and a real Kafka broker,
 * driven with the real kubectl.
 */
import { join } from 'node:path';
import { expectInvariants, type World } from '../tests/support/invariants.js';
import { eventually, sleep, Stack } from '../tests/support/stack.js';
import { ROOT, TestCluster } from './support/cluster.js';

const NAMESPACE = 'shop';
const world: World = {
  catalog: { KB: { quantity: 1_000, price: 4_990 }, LAMP: { quantity: 1, price: 4_000 } },
  accounts: { alice: 10_000_000, bob: 2_000 },
};

let cluster: TestCluster;
let stack: Stack;
/** A kubeconfig with the controller's ServiceAccount token: it runs with its RBAC, not as admin. */
let operatorKubeconfig: string;
/** Orders of the first test, that the retry test takes up. */
const ended: { confirmed?: string; declined?: string } = {};

const operatorEnv = (extra: Record<string, string> = {}) => ({
  KUBECONFIG: operatorKubeconfig,
  WATCH_NAMESPACE: NAMESPACE,
  LEASE_DURATION_SECONDS: '4',
  LEASE_RENEW_MS: '1000',
  ...extra,
});

beforeAll(async () => {
  cluster = await TestCluster.start();
  await cluster.kubectl(['apply', '-f', join(ROOT, 'charts', 'ordersaga', 'crds', 'sagaorders.ordersaga.dev.yaml')]);
  await cluster.kubectl(['wait', '--for=condition=Established', 'crd/sagaorders.ordersaga.dev', '--timeout=60s']);
  await cluster.kubectl(['create', 'namespace', NAMESPACE]);
  await cluster.kubectl(['apply', '-n', NAMESPACE, '-f', join(ROOT, 'operator', 'rbac.yaml')]);
  operatorKubeconfig = await cluster.serviceAccountKubeconfig('ordersaga-operator', NAMESPACE);

  stack = new Stack({
    env: {
      order: { SAGA_STEP_TIMEOUT_MS: '60000' },
      stock: { STOCK_CATALOG: JSON.stringify(world.catalog) },
      billing: { BILLING_ACCOUNTS: JSON.stringify(world.accounts) },
    },
  });
  await stack.startAll();
  await stack.start('operator', '0', operatorEnv());
});

afterAll(async () => {
  await stack?.stopAll();
  await cluster?.stop();
});

/** `kubectl get sagaorders` as rows of its printed columns. */
async function table(): Promise<Array<Record<string, string>>> {
  const out = await cluster.kubectl(['get', 'sagaorders', '-n', NAMESPACE]);
  const [header, ...lines] = out.trimEnd().split('\n');
  const starts = [...header!.matchAll(/\S+/g)].map((m) => m.index!);
  const names = [...header!.matchAll(/\S+/g)].map((m) => m[0]);
  return lines.map((line) =>
    Object.fromEntries(names.map((name, i) => [name, line.slice(starts[i], starts[i + 1]).trim()])),
  );
}

async function row(orderId: string, phase: string) {
  let last: unknown;
  try {
    return await eventually(`SagaOrder ${orderId} to be ${phase}`, async () => {
      const found = (await table()).find((r) => r.ORDER === orderId);
      last = found;
      return found?.PHASE === phase ? found : undefined;
    });
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen: ${JSON.stringify(last)}`);
  }
}

async function placeAndFinish(customerId: string, sku: string, quantity: number) {
  const { body } = await stack.placeOrder({ customerId, items: [{ sku, quantity }] });
  return stack.finished(body.orderId);
}

test('kubectl get sagaorders: a confirmed, an out-of-stock and a declined order', async () => {
  const confirmed = await placeAndFinish('alice', 'KB', 2);
  const outOfStock = await placeAndFinish('alice', 'LAMP', 5);
  const declined = await placeAndFinish('bob', 'LAMP', 1);
  Object.assign(ended, { confirmed: confirmed.orderId, declined: declined.orderId });

  expect(await row(confirmed.orderId, 'Confirmed')).toMatchObject({
    CUSTOMER: 'alice',
    TOTAL: '99.80',
    VERSION: '1',
    STEP: '',
    REASON: '',
  });
  expect(await row(outOfStock.orderId, 'Failed')).toMatchObject({
    CUSTOMER: 'alice',
    TOTAL: '',
    REASON: 'out of stock: LAMP: 5 requested, 1 available',
  });
  expect(await row(declined.orderId, 'Failed')).toMatchObject({
    CUSTOMER: 'bob',
    TOTAL: '40.00',
    REASON: 'payment declined: insufficient credit: 4000 requested, 2000 available',
  });
  expect(Object.keys((await table())[0]!)).toEqual([
    'NAME',
    'ORDER',
    'CUSTOMER',
    'TOTAL',
    'PHASE',
    'STEP',
    'REASON',
    'VERSION',
    'AGE',
  ]);

  // describe: the step history and the terminal event.
  const described = await eventually('the OrderFailed event', async () => {
    const out = await cluster.kubectl(['describe', 'sagaorder', declined.orderId, '-n', NAMESPACE]);
    return out.includes('OrderFailed') ? out : undefined;
  });
  for (const event of ['order placed', 'stock reserved', 'chargePayment failed', 'releaseStock done', 'order failed']) {
    expect(described).toMatch(new RegExp(`Event:\\s+${event}`));
  }
  expect(described).toMatch(/Warning\s+OrderFailed\s+.*ordersaga-operator\s+order \S+ failed: payment declined/);

  const object = await cluster.json(['get', 'sagaorder', confirmed.orderId, '-n', NAMESPACE]);
  expect(object.status).toMatchObject({
    orderId: confirmed.orderId,
    source: 'http',
    correlationId: confirmed.correlationId,
    traceId: expect.stringMatching(/^[0-9a-f]{32}$/),
  });
  expect(object.status.traceId).toBe(confirmed.traceId);
  expect(object.status.conditions).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ type: 'Ready', status: 'True', reason: 'SagaEnded' }),
      expect.objectContaining({ type: 'Succeeded', status: 'True', reason: 'Confirmed' }),
    ]),
  );
});

test('kubectl annotate ordersaga.dev/retry: a timed-out order, once Billing is back, runs again and is confirmed', async () => {
  // Billing down and a short step timeout: the order times out at Charging (the README's walk-through).
  await stack.stop('order');
  await stack.start('order', '0', { SAGA_STEP_TIMEOUT_MS: '2000' });
  await stack.stop('billing');
  const timedOut = await placeAndFinish('alice', 'KB', 1);
  expect(timedOut.failureReason).toBe('chargePayment timed out after 2000 ms waiting for payment.result');
  const orderId = timedOut.orderId as string;
  expect(await row(orderId, 'Failed')).toMatchObject({ REASON: timedOut.failureReason });
  await stack.start('billing');
  await stack.stop('order');
  await stack.start('order', '0');

  await cluster.kubectl(['annotate', 'sagaorder', orderId, '-n', NAMESPACE, 'ordersaga.dev/retry=after-billing-fix']);
  const object = await eventually('the retried order to be confirmed', async () => {
    const o = await cluster.json(['get', 'sagaorder', orderId, '-n', NAMESPACE]);
    return o.status?.phase === 'Confirmed' ? o : undefined;
  });
  expect(object.status).toMatchObject({ attempt: 2, retryTokens: ['after-billing-fix'], total: '49.90' });
  expect(object.status.reason).toBeUndefined();
  const wide = await cluster.kubectl(['get', 'sagaorder', orderId, '-n', NAMESPACE, '-o', 'wide']);
  expect(wide.split('\n')[0]).toMatch(/\bATTEMPT\b/);
  expect(wide.split('\n')[1]).toMatch(/Confirmed\s.*\s2\s/);
  const described = await eventually('the retry events', async () => {
    const out = await cluster.kubectl(['describe', 'sagaorder', orderId, '-n', NAMESPACE]);
    return /OrderConfirmed/.test(out) ? out : undefined;
  });
  expect(described).toMatch(/Warning\s+OrderFailed\s+.*chargePayment timed out/);
  expect(described).toMatch(/Normal\s+RetryRequested\s+.*retry after-billing-fix: attempt 2 of order/);
  expect(described).toMatch(/Normal\s+AttemptStarted\s+.*attempt 2 of order \S+ started \(retry after-billing-fix\)/);
  expect(described).toMatch(/Event:\s+retry after-billing-fix requested by SagaOrder \S+: attempt 2/);
  console.log(
    `kubectl get sagaorder -o wide, after the retry:\n${wide}\nkubectl describe, its events:\n${described.slice(described.lastIndexOf('Events:'))}`,
  );
  // The annotation stays: the token is taken once, whatever the controller sees again.
  await stack.stop('operator', '0');
  await stack.start('operator', '0', operatorEnv());
  await sleep(2_000);
  expect((await stack.readTopic('order.retry')).filter((r) => r.key === orderId)).toHaveLength(1);

  // A confirmed order cannot be retried: a Warning says why, and nothing is sent.
  await cluster.kubectl(['annotate', 'sagaorder', ended.confirmed!, '-n', NAMESPACE, 'ordersaga.dev/retry=again']);
  const refused = await eventually('the RetryRefused event', async () => {
    const out = await cluster.kubectl(['describe', 'sagaorder', ended.confirmed!, '-n', NAMESPACE]);
    return /RetryRefused/.test(out) ? out : undefined;
  });
  expect(refused).toMatch(
    /Warning\s+RetryRefused\s+.*retry again refused: order \S+ is confirmed: only a failed order can be retried/,
  );
  expect((await stack.readTopic('order.retry')).filter((r) => r.key === ended.confirmed)).toHaveLength(0);
});

/** The SagaOrders that stand for an order, under any name. */
async function sagaOrdersOf(orderId: string): Promise<string[]> {
  const list = await cluster.json(['get', 'sagaorders', '-n', NAMESPACE]);
  return list.items
    .filter((o: any) => o.metadata.name === orderId || o.status?.orderId === orderId)
    .map((o: any) => o.metadata.name);
}

/** Its saga ended: the finalizer comes off (right after the status that says so). */
async function finalizerOff(orderId: string) {
  await eventually(`the finalizer of ${orderId} to come off`, async () => {
    const o = await cluster.json(['get', 'sagaorder', orderId, '-n', NAMESPACE]);
    return (o.metadata.finalizers ?? []).length === 0 ? true : undefined;
  });
}

/** No SagaOrder comes back for the order: over a few of the controller's rounds (1 s each), and after a restart. */
async function expectGoneForGood(orderId: string) {
  for (let i = 0; i < 5; i++) {
    expect(await sagaOrdersOf(orderId)).toEqual([]);
    await sleep(1_000);
  }
  await stack.stop('operator', '0');
  await stack.start('operator', '0', operatorEnv());
  await sleep(3_000);
  expect(await sagaOrdersOf(orderId)).toEqual([]);
}

test('kubectl delete of a running SagaOrder cancels its saga: Cancelling until the saga ends, then gone for good', async () => {
  // Stock and Billing down: the saga waits at Reserving, and its compensation waits for Stock too.
  const down = new Set(['stock', 'billing'] as const);
  for (const service of down) await stack.stop(service);
  try {
    const { body } = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'KB', quantity: 1 }] });
    const orderId = body.orderId as string;
    await row(orderId, 'Reserving');
    const held = await cluster.json(['get', 'sagaorder', orderId, '-n', NAMESPACE]);
    expect(held.metadata.finalizers).toEqual(['ordersaga.dev/cancel-on-delete']);

    await cluster.kubectl(['delete', 'sagaorder', orderId, '-n', NAMESPACE, '--wait=false']);
    // Cancelling at once, at the step the saga is at: reserveStock, then releaseStock once the saga took the cancel.
    const cancelling = await eventually('the SagaOrder to show Cancelling at releaseStock', async () => {
      const o = await cluster.json(['get', 'sagaorder', orderId, '-n', NAMESPACE]);
      return o.status?.phase === 'Cancelling' && o.status.currentStep === 'releaseStock' ? o : undefined;
    });
    expect(cancelling.metadata.deletionTimestamp).toBeDefined();
    expect(cancelling.status.reason).toBe('cancelled');
    const printed = await cluster.kubectl(['get', 'sagaorder', orderId, '-n', NAMESPACE]);
    expect(printed).toMatch(/Cancelling\s+releaseStock\s+cancelled\s+1\s/);
    console.log(`kubectl get sagaorder, deleted mid-saga:\n${printed}`);

    await stack.start('stock');
    down.delete('stock');
    await eventually('the SagaOrder to go', async () =>
      (await sagaOrdersOf(orderId)).length === 0 ? true : undefined,
    );
    const order = await stack.finished(orderId);
    expect(order).toMatchObject({ status: 'FAILED', failureReason: 'cancelled' });
    expect(order.history.map((h: { event: string }) => h.event)).toContain(
      `cancel requested by SagaOrder ${orderId} deleted`,
    );
    await stack.start('billing');
    down.delete('billing');
    await expectGoneForGood(orderId);
  } finally {
    for (const service of down) await stack.start(service);
  }
});

test('kubectl delete of a Confirmed SagaOrder removes the mirror only, for good, also when the controller was away', async () => {
  const confirmed = await placeAndFinish('alice', 'KB', 1);
  await row(confirmed.orderId, 'Confirmed');
  await finalizerOff(confirmed.orderId);
  await cluster.kubectl(['delete', 'sagaorder', confirmed.orderId, '-n', NAMESPACE]);
  await expectGoneForGood(confirmed.orderId);
  expect((await stack.http('order', `/orders/${confirmed.orderId}`)).body.status).toBe('CONFIRMED');
  expect((await stack.readTopic('order.cancel')).filter((r) => r.key === confirmed.orderId)).toHaveLength(0);

  // Deleted while the controller is stopped: it had a SagaOrder, and it is gone, so it stays gone.
  const another = await placeAndFinish('alice', 'KB', 1);
  await row(another.orderId, 'Confirmed');
  await finalizerOff(another.orderId);
  await stack.stop('operator', '0');
  await cluster.kubectl(['delete', 'sagaorder', another.orderId, '-n', NAMESPACE]);
  await stack.start('operator', '0', operatorEnv());
  await expectGoneForGood(another.orderId);
});

const manifest = (name: string, quantity: number) => `
apiVersion: ordersaga.dev/v1alpha1
kind: SagaOrder
metadata:
  name: ${name}
  namespace: ${NAMESPACE}
spec:
  customerId: alice
  items:
    - sku: KB
      quantity: ${quantity}
`;

async function placedFor(orderId: string) {
  return (await stack.readTopic('order.placed')).filter((r) => r.key === orderId);
}

test('kubectl apply of a SagaOrder places the order once and it is confirmed', async () => {
  await cluster.kubectl(['apply', '-f', '-'], { input: manifest('three-keyboards', 3) });
  const object = await eventually('the order to be confirmed', async () => {
    const o = await cluster.json(['get', 'sagaorder', 'three-keyboards', '-n', NAMESPACE]);
    return o.status?.phase === 'Confirmed' ? o : undefined;
  });
  expect(object.status).toMatchObject({ source: 'kubernetes', total: '149.70' });
  const placed = await placedFor(object.status.orderId);
  expect(placed).toHaveLength(1);
  expect(placed[0]!.json.payload).toMatchObject({ customerId: 'alice', idempotencyKey: object.metadata.uid });
  // Invalid specs are refused by the API server itself.
  await expect(cluster.kubectl(['apply', '-f', '-'], { input: manifest('zero', 0) })).rejects.toThrow(/quantity/);
});

test('a controller killed between the create and the placement places it once after restart', async () => {
  await stack.stop('operator', '0', 'SIGKILL');
  await cluster.kubectl(['apply', '-f', '-'], { input: manifest('while-down', 1) });
  await stack.start('operator', '0', operatorEnv());
  // Kill it again right away: it may be mid-way through placing; the next one must not place twice.
  await sleep(300);
  await stack.stop('operator', '0', 'SIGKILL');
  await stack.start('operator', '0', operatorEnv());
  const object = await eventually('while-down to be confirmed', async () => {
    const o = await cluster.json(['get', 'sagaorder', 'while-down', '-n', NAMESPACE]);
    return o.status?.phase === 'Confirmed' ? o : undefined;
  });
  await sleep(1_000);
  expect(await placedFor(object.status.orderId)).toHaveLength(1);
});

test('the controller runs with its own RBAC, which cannot read Secrets', async () => {
  const canI = (verb: string, resource: string) =>
    cluster
      .kubectl(['auth', 'can-i', verb, ...resource.split(' '), '-n', NAMESPACE], { kubeconfig: operatorKubeconfig })
      .then(
        (out) => out.trim(),
        () => 'no',
      );
  expect(await canI('get', 'secrets')).toBe('no');
  expect(await canI('list', 'secrets')).toBe('no');
  expect(await canI('patch', 'sagaorders.ordersaga.dev --subresource=status')).toBe('yes');
  expect(await canI('create', 'pods')).toBe('no');
  // Its Lease, and no other: it cannot take over another controller's leader election.
  expect(await canI('update', 'leases.coordination.k8s.io/ordersaga-operator')).toBe('yes');
  expect(await canI('update', 'leases.coordination.k8s.io/kube-scheduler')).toBe('no');
  expect(await canI('get', 'leases.coordination.k8s.io/kube-scheduler')).toBe('no');
  await expect(
    cluster.kubectl(['get', 'secrets', '-n', NAMESPACE], { kubeconfig: operatorKubeconfig }),
  ).rejects.toThrow(/forbidden/);
});

test('two replicas: only the Lease holder writes; killing it hands over', async () => {
  await stack.start('operator', '1', operatorEnv());
  const lease = await cluster.json(['get', 'lease', 'ordersaga-operator', '-n', NAMESPACE]);
  expect(lease.spec.holderIdentity).toBe('operator-0');

  const before = await writesOf('1');
  const first = await placeAndFinish('alice', 'KB', 1);
  await row(first.orderId, 'Confirmed');
  expect(await writesOf('1')).toBe(before);

  await stack.stop('operator', '0', 'SIGKILL');
  await eventually('operator-1 to take the lease', async () => {
    const l = await cluster.json(['get', 'lease', 'ordersaga-operator', '-n', NAMESPACE]);
    return l.spec.holderIdentity === 'operator-1' ? true : undefined;
  });
  const second = await placeAndFinish('alice', 'KB', 1);
  await row(second.orderId, 'Confirmed');
  expect(await writesOf('1')).toBeGreaterThan(before);

  await stack.stop('operator', '1');
  await stack.start('operator', '0', operatorEnv());
});

/** Status writes a controller replica has made (its own metric). */
async function writesOf(instance: string): Promise<number> {
  const text = await (await fetch(`${stack.url('operator', instance)}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith('ordersaga_operator_api_requests_total{verb="patch-status",outcome="ok"}'));
  return Number(line?.split(' ')[1] ?? 0);
}

test('the API server down during a run: sagas complete, and the objects catch up after', async () => {
  await cluster.controlPlane('stop-apiserver');
  const orders = [];
  for (let i = 0; i < 10; i++) orders.push(await placeAndFinish('alice', 'KB', 1));
  expect(orders.every((o) => o.status === 'CONFIRMED')).toBe(true);
  await cluster.controlPlane('start-apiserver');
  for (const order of orders) await row(order.orderId, 'Confirmed');
  await expectInvariants(stack, world);
});

test('100 orders: every one mirrored, writes coalesced (mirror lag printed)', async () => {
  const before = await operatorMetrics();
  const placed = await Promise.all(
    Array.from({ length: 100 }, () => stack.placeOrder({ customerId: 'alice', items: [{ sku: 'KB', quantity: 1 }] })),
  );
  const ids = placed.map((p) => p.body.orderId as string);
  const started = Date.now();
  await eventually(
    '100 SagaOrders to be Confirmed',
    async () => {
      const confirmed = new Set((await table()).filter((r) => r.PHASE === 'Confirmed').map((r) => r.ORDER));
      return ids.every((id) => confirmed.has(id)) ? true : undefined;
    },
    60_000,
  );
  const after = await operatorMetrics();
  const writes = after.statusWrites - before.statusWrites;
  const lagCount = after.lagCount - before.lagCount;
  const meanLagMs = ((after.lagSum - before.lagSum) / lagCount) * 1000;
  // Each saga changes state 5 times; coalescing writes fewer statuses than that.
  expect(writes).toBeLessThan(5 * 100);
  // A saga change that lands while its order's write is in flight marks it again: written next.
  await eventually('no SagaOrder behind its saga', async () =>
    (await operatorMetrics()).pending === 0 ? true : undefined,
  );
  console.log(
    `mirror of 100 orders: all Confirmed in kubectl ${Date.now() - started} ms after the last POST; ` +
      `${writes} status writes (${(writes / 100).toFixed(1)} per order); mean mirror lag ${meanLagMs.toFixed(0)} ms`,
  );
});

async function operatorMetrics() {
  const text = await (await fetch(`${stack.url('operator', '0')}/metrics`)).text();
  const value = (prefix: string) =>
    Number(
      text
        .split('\n')
        .find((l) => l.startsWith(prefix))
        ?.split(' ')
        .pop() ?? 0,
    );
  return {
    statusWrites: value('ordersaga_operator_api_requests_total{verb="patch-status",outcome="ok"}'),
    lagSum: value('ordersaga_operator_mirror_lag_seconds_sum'),
    lagCount: value('ordersaga_operator_mirror_lag_seconds_count'),
    pending: value('ordersaga_operator_pending_writes'),
  };
}

test('finished SagaOrders disappear after their TTL; in-flight ones stay', async () => {
  // One order in flight (Billing is down) and one finished, both mirrored.
  await stack.stop('billing');
  const { body } = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'KB', quantity: 1 }] });
  await row(body.orderId, 'Charging');
  const finished = await placeAndFinish('alice', 'LAMP', 9);
  await row(finished.orderId, 'Failed');

  // A TTL of 3 s: every finished SagaOrder (of this and the earlier tests) goes.
  await stack.stop('operator', '0');
  await stack.start('operator', '0', operatorEnv({ SAGAORDER_TTL_SECONDS: '3' }));
  const rows = await eventually(
    'finished SagaOrders to expire',
    async () => {
      const all = await table();
      return all.every((r) => r.PHASE !== 'Confirmed' && r.PHASE !== 'Failed') ? all : undefined;
    },
    60_000,
  );
  expect(rows.map((r) => r.ORDER)).not.toContain(finished.orderId);
  // The in-flight one is still there, past the TTL.
  expect(rows.find((r) => r.ORDER === body.orderId)?.PHASE).toBe('Charging');
  await stack.start('billing');
});

test('a controller SIGTERM is quiet: the Lease released once, the watch stopped, no WARN or ERROR', async () => {
  await eventually('operator-0 to lead', async () => {
    const lease = await cluster.json(['get', 'lease', 'ordersaga-operator', '-n', NAMESPACE]);
    return lease.spec.holderIdentity === 'operator-0' ? true : undefined;
  });
  const before = stack.logLines('operator', '0').length;
  expect(await stack.stop('operator', '0', 'SIGTERM')).toBe(0);
  const stopping = stack.logLines('operator', '0').slice(before);
  expect(stopping.filter((l) => Number(l.level) >= 40)).toEqual([]);
  expect(stopping.filter((l) => l.msg === 'leadership released')).toHaveLength(1);
  expect(stopping.filter((l) => l.msg === 'became leader')).toEqual([]);
  const lease = await cluster.json(['get', 'lease', 'ordersaga-operator', '-n', NAMESPACE]);
  expect(lease.spec.holderIdentity).toBeUndefined();
  await stack.start('operator', '0', operatorEnv());
});
