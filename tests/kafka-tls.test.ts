/**
 * Kafka over TLS with SCRAM-SHA-512, as a Strimzi TLS listener with KafkaUsers of type
 * scram-sha-512 is: a broker of its own (scripts/kafka.sh with KAFKA_TLS=1, a user per service),
 * the services given only its TLS address, the CA and their credentials. A saga completes; a
 * service with the wrong password does not start, and says why.
 */
import { SERVICE_NAMES } from '@ordersaga/contracts';
import { ownBroker } from './support/own-broker.js';
import { Stack } from './support/stack.js';

const password = (service: string) => `${service}-secret`;
const kafkaSh = ownBroker('tls', 29300, {
  KAFKA_TLS: '1',
  KAFKA_SCRAM_USERS: SERVICE_NAMES.map((s) => `${s}:${password(s)}`).join(','),
});

let stack: Stack;

beforeAll(async () => {
  const started = Object.fromEntries(
    kafkaSh('start')
      .trim()
      .split('\n')
      .map((line) => line.split('=') as [string, string]),
  );
  const security = (service: string) => ({
    KAFKA_TLS: 'true',
    KAFKA_TLS_CA_FILE: started.KAFKA_TLS_CA_FILE!,
    KAFKA_SASL_USERNAME: service,
    KAFKA_SASL_PASSWORD: password(service),
  });
  stack = new Stack({
    // The tests' own client reads the topics through the plaintext listener; the services know only the TLS one.
    brokers: started.KAFKA_BROKERS!,
    serviceBrokers: started.KAFKA_TLS_BROKERS!,
    env: {
      order: security('order'),
      stock: { ...security('stock'), STOCK_CATALOG: JSON.stringify({ SOCK: { quantity: 10, price: 500 } }) },
      billing: { ...security('billing'), BILLING_ACCOUNTS: JSON.stringify({ alice: 10_000 }) },
      notification: security('notification'),
    },
  });
  await stack.startAll();
});

afterAll(async () => {
  await stack?.stopAll();
  kafkaSh('stop');
});

test('a saga completes with every service on the TLS listener, each as its own SCRAM user', async () => {
  const { status, body } = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'SOCK', quantity: 2 }] });
  expect(status).toBe(202);
  const order = await stack.finished(body.orderId);
  expect(order.status).toBe('CONFIRMED');
  const confirmed = await stack.readTopicUntil('order.confirmed', 'its order.confirmed', (all) => all.length > 0);
  expect(confirmed.map((r) => r.key)).toEqual([body.orderId]);
});

test('a service with the wrong password is refused, and says so', async () => {
  const started = stack.start('stock', 'wrong-password', { KAFKA_SASL_PASSWORD: 'not-the-password' });
  // The log line is JSON: its quotes are escaped.
  await expect(started).rejects.toThrow(
    /Kafka refused the credentials of user \\"stock\\" \(KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD\): SASL SCRAM SHA512 authentication failed/,
  );
});
