// Gives the test run a Kafka broker: the one in KAFKA_BROKERS, or one started by the project's
// own script (and stopped by the global teardown).
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const script = join(dirname(fileURLToPath(import.meta.url)), '..', 'scripts', 'kafka.sh');

export default async function globalSetup() {
  if (process.env.KAFKA_BROKERS) return;
  process.env.KAFKA_PORT ??= '29092';
  const out = execFileSync('bash', [script, 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const line = out.split('\n').find((l) => l.startsWith('KAFKA_BROKERS='));
  if (!line) throw new Error(`scripts/kafka.sh start printed no KAFKA_BROKERS line:\n${out}`);
  process.env.KAFKA_BROKERS = line.slice('KAFKA_BROKERS='.length).trim();
  process.env.ORDERSAGA_TEST_OWNS_KAFKA = '1';
}
