// What the whole test run needs, once: the Kubernetes test tools and the OpenTelemetry Collector
// (built from the Go module proxy into the cache on the first run, then found there), and a Kafka
// broker — the one in KAFKA_BROKERS, or one started by the project's own script (stopped by the
// global teardown).
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireProjectNode } from '../scripts/node-version.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export default async function globalSetup() {
  requireProjectNode('npm test');
  execFileSync(
    'bash',
    [join(root, 'k8s-tests', 'scripts', 'build-tools.sh'), 'kubernetes', 'etcd', 'helm', 'skaffold', 'otelcol'],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );

  if (process.env.KAFKA_BROKERS) return;
  process.env.KAFKA_PORT ??= '29092';
  const out = execFileSync('bash', [join(root, 'scripts', 'kafka.sh'), 'start'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = out.split('\n').find((l) => l.startsWith('KAFKA_BROKERS='));
  if (!line) throw new Error(`scripts/kafka.sh start printed no KAFKA_BROKERS line:\n${out}`);
  process.env.KAFKA_BROKERS = line.slice('KAFKA_BROKERS='.length).trim();
  process.env.ORDERSAGA_TEST_OWNS_KAFKA = '1';
}
