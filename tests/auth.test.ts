/**
 * Authentication on every service's API (the services given a JWKS): a bearer JWT binds the
 * caller to the customer it may order and read for; the operator scope lists everyone's data; a
 * refused request is answered with the reason and publishes nothing; a client over its rate
 * limit is told to wait, and others are not.
 */
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { eventually, Stack } from './support/stack.js';

let stack: Stack;
let trusted: CryptoKey;
let untrusted: CryptoKey;

const token = (claims: { sub: string; scope?: string; aud?: string; expiresIn?: string | number }, key = trusted) =>
  new SignJWT({ ...(claims.scope ? { scope: claims.scope } : {}) })
    .setProtectedHeader({ alg: 'ES256', kid: 'test' })
    .setSubject(claims.sub)
    .setAudience(claims.aud ?? 'ordersaga')
    .setIssuer('https://issuer.test')
    .setIssuedAt()
    .setExpirationTime(claims.expiresIn ?? '5m')
    .sign(key);

const bearer = async (claims: Parameters<typeof token>[0], key?: CryptoKey) => ({
  authorization: `Bearer ${await token(claims, key)}`,
});
const operator = () => bearer({ sub: 'ops', scope: 'profile ordersaga:operator' });
const order = (customerId: string) => ({ customerId, items: [{ sku: 'SOCK', quantity: 1 }] });

beforeAll(async () => {
  const signing = await generateKeyPair('ES256');
  trusted = signing.privateKey;
  ({ privateKey: untrusted } = await generateKeyPair('ES256'));
  const other = await generateKeyPair('ES256'); // the set has two keys: the token's kid picks its own
  const jwk = async (key: CryptoKey, kid: string) => ({ ...(await exportJWK(key)), kid, alg: 'ES256', use: 'sig' });
  const keys = JSON.stringify({ keys: [await jwk(signing.publicKey, 'test'), await jwk(other.publicKey, 'other')] });
  const auth = { AUTH_JWKS: keys, AUTH_ISSUER: 'https://issuer.test' };
  stack = new Stack({
    env: {
      order: auth,
      stock: { ...auth, STOCK_CATALOG: JSON.stringify({ SOCK: { quantity: 100, price: 500 } }) },
      billing: { ...auth, BILLING_ACCOUNTS: JSON.stringify({ alice: 10_000, bob: 10_000, erin: 10_000 }) },
      notification: auth,
    },
  });
  await stack.startAll();
});

afterAll(() => stack.stopAll());

test('no token, a malformed header, an expired, foreign-signed or wrong-audience token: 401 with the reason', async () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{}, /a bearer token is required/],
    [{ authorization: 'Basic ZXJpbjp4' }, /is not "Bearer <token>"/],
    [await bearer({ sub: 'erin', expiresIn: Math.floor(Date.now() / 1000) - 60 }), /the token has expired/],
    [await bearer({ sub: 'erin' }, untrusted), /not signed by a trusted key/],
    [await bearer({ sub: 'erin', aud: 'another-app' }), /"aud" claim is not accepted/],
  ];
  for (const [headers, reason] of cases) {
    const { status, body, headers: answer } = await stack.placeOrder(order('erin'), headers);
    expect({ status, message: body.message }).toEqual({ status: 401, message: expect.stringMatching(reason) });
    expect(answer.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
  }
  // Every service's API, not only the order's; probes and metrics stay open.
  for (const [service, path] of [
    ['stock', '/stock'],
    ['billing', '/accounts/erin'],
    ['notification', '/notifications'],
  ] as const) {
    expect((await stack.http(service, path)).status).toBe(401);
    expect((await stack.http(service, '/readyz')).status).toBe(200);
    expect((await stack.http(service, '/metrics')).status).toBe(200);
  }
  expect((await stack.http('order', '/openapi.json')).status).toBe(200);
});

test("a token orders and reads only for its own customer: another's is 403, and nothing is published", async () => {
  const alice = await bearer({ sub: 'alice' });
  const refused = await stack.placeOrder(order('erin'), { ...alice, 'idempotency-key': 'not-alices' });
  expect(refused.status).toBe(403);
  expect(refused.body.message).toBe('this token orders for alice, not for erin');

  const placed = await stack.placeOrder(order('alice'), alice);
  expect(placed.status).toBe(202);
  const { orderId } = placed.body;
  const finished = await eventually('the order to finish', async () => {
    const { body } = await stack.http('order', `/orders/${orderId}`, { headers: alice });
    return body.status === 'CONFIRMED' ? body : undefined;
  });
  expect(finished.customerId).toBe('alice');

  const bob = await bearer({ sub: 'bob' });
  const other = await stack.http('order', `/orders/${orderId}`, { headers: bob });
  expect(other.status).toBe(403);
  expect(other.body.message).toBe(`order ${orderId} is not bob's`);
  expect((await stack.http('billing', `/payments/${orderId}`, { headers: bob })).status).toBe(403);
  expect((await stack.http('billing', `/payments/${orderId}`, { headers: alice })).status).toBe(200);
  expect((await stack.http('billing', '/accounts/alice', { headers: bob })).status).toBe(403);
  expect((await stack.http('billing', '/accounts/alice', { headers: alice })).body.customerId).toBe('alice');
  const note = await eventually('the notification', async () => {
    const n = await stack.http('notification', `/notifications/${orderId}`, { headers: alice });
    return n.status === 200 ? n : undefined;
  });
  expect(note.body.customerId).toBe('alice');
  expect((await stack.http('notification', `/notifications/${orderId}`, { headers: bob })).status).toBe(403);
  expect((await stack.http('stock', '/stock/SOCK', { headers: bob })).status).toBe(200);

  // Neither the 401s above nor the 403 put anything on the topic that starts sagas.
  const placedFor = (await stack.readTopic('order.placed')).map((r) => r.json?.payload?.customerId);
  expect(placedFor).toEqual(['alice']);
});

test('the listings are for the operator scope: a customer gets 403, or its own notifications', async () => {
  const alice = await bearer({ sub: 'alice' });
  const accounts = await stack.http('billing', '/accounts', { headers: alice });
  expect(accounts.status).toBe(403);
  expect(accounts.body.message).toBe("every customer's account is for the operator scope only");
  expect((await stack.http('notification', '/notifications', { headers: alice })).status).toBe(403);
  expect((await stack.http('notification', '/notifications?customerId=bob', { headers: alice })).status).toBe(403);
  const own = await stack.http('notification', '/notifications?customerId=alice', { headers: alice });
  expect(own.status).toBe(200);
  expect(own.body.every((n: any) => n.customerId === 'alice')).toBe(true);

  const ops = await operator();
  const all = await stack.http('billing', '/accounts', { headers: ops });
  expect(all.status).toBe(200);
  expect(all.body.map((a: any) => a.customerId).sort()).toEqual(['alice', 'bob', 'erin']);
  expect((await stack.http('notification', '/notifications', { headers: ops })).status).toBe(200);
});

test('a client over its rate limit is answered 429 with when to retry; another client is not', async () => {
  await stack.start('stock', 'limited', { RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW_MS: '60000' });
  const get = async (headers: Record<string, string>) => stack.http('stock', '/stock', { headers }, 'limited');
  const alice = await bearer({ sub: 'alice' });
  const statuses = [];
  for (let i = 0; i < 7; i++) statuses.push((await get(alice)).status);
  expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
  const limited = await get(alice);
  expect(limited.body.message).toMatch(/^more than 5 requests in 60000 ms from this client; retry in /);
  expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  // Counted by who calls, not where from: bob, on the same address, has his own five.
  expect((await get(await bearer({ sub: 'bob' }))).status).toBe(200);
});
