import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const script = join(dirname(fileURLToPath(import.meta.url)), '..', 'scripts', 'kafka.sh');

export default async function globalTeardown() {
  if (process.env.ORDERSAGA_TEST_OWNS_KAFKA !== '1') return;
  execFileSync('bash', [script, 'stop'], { stdio: 'inherit' });
}
