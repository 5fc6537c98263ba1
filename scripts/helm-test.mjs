#!/usr/bin/env node
/**
 * What `helm test` runs (the chart's test Pod, which mounts this file from a ConfigMap the cdk8s
 * model makes of it): every component ready, then one order placed through the Order API and
 * followed until its saga ends (confirmed or failed: either way it went through every service it
 * needed). Node.js and its fetch only: it runs in the order service's image.
 *
 *   ORDERSAGA_READYZ     the components' readiness URLs, space-separated
 *   ORDERSAGA_ORDER_URL  the Order API's base URL
 *   ORDERSAGA_ORDER      the order to place (JSON)
 *   ORDERSAGA_TOKEN      a bearer token for its customer ("": none, as with auth off)
 *   ORDERSAGA_NO_ORDER   a reason not to place one (readiness only)
 *   ORDERSAGA_TIMEOUT_MS how long the saga may take (default 60000)
 */
const env = process.env;
const timeoutMs = Number(env.ORDERSAGA_TIMEOUT_MS ?? 60_000);

function fail(message) {
  console.error(`helm test failed: ${message}`);
  process.exit(1);
}

/** A request that answers, or says in time why not. */
async function call(url, init = {}) {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    fail(`${init.method ?? 'GET'} ${url}: ${err.cause?.message ?? err.message}`);
  }
}

for (const url of (env.ORDERSAGA_READYZ ?? '').split(/\s+/).filter(Boolean)) {
  const res = await call(url);
  if (res.status !== 200) fail(`${url} answered ${res.status}: ${await res.text()}`);
  console.log(`ready: ${url}`);
}

if (env.ORDERSAGA_NO_ORDER) {
  console.log(`no order placed: ${env.ORDERSAGA_NO_ORDER}`);
  process.exit(0);
}
const api = env.ORDERSAGA_ORDER_URL;
const headers = {
  'content-type': 'application/json',
  'idempotency-key': `helm-test-${Date.now()}`,
  ...(env.ORDERSAGA_TOKEN ? { authorization: `Bearer ${env.ORDERSAGA_TOKEN}` } : {}),
};
const placed = await call(`${api}/orders`, { method: 'POST', headers, body: env.ORDERSAGA_ORDER });
if (placed.status !== 202) fail(`POST ${api}/orders answered ${placed.status}: ${await placed.text()}`);
const { orderId } = await placed.json();
console.log(`placed: order ${orderId}`);

for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
  const res = await call(`${api}/orders/${orderId}`, { headers });
  const order = res.status === 200 ? await res.json() : undefined;
  if (order && ['CONFIRMED', 'FAILED'].includes(order.status)) {
    const why = order.failureReason ? ` (${order.failureReason})` : '';
    console.log(`ended: order ${orderId} ${order.status}${why}`);
    process.exit(0);
  }
  await new Promise((r) => setTimeout(r, 500));
}
fail(`order ${orderId} has not ended after ${timeoutMs} ms`);
