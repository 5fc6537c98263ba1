/**
 * A broker of a test's own (scripts/kafka.sh), in a data dir of its own, on a fixed port below
 * the ephemeral range (32768 and up), so that no client's port is in the way and a restart gets
 * the same port. `kafkaSh(command, env)` runs kafka.sh with that dir and port; its stdout back.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const KAFKA_SH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'kafka.sh');

export function ownBroker(name: string, port: number, env: Record<string, string> = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), `ordersaga-${name}-kafka-`));
  return (command: 'start' | 'stop', more: Record<string, string> = {}): string =>
    execFileSync('bash', [KAFKA_SH, command], {
      encoding: 'utf8',
      env: { ...process.env, KAFKA_DATA_DIR: dataDir, KAFKA_PORT: String(port), ...env, ...more },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
}
