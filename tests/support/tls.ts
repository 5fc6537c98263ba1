/** Certificates from the project's throwaway CA (scripts/tls.sh), for TLS servers in tests. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TLS_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'tls.sh');

export interface TestCertificate {
  readonly caFile: string;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export function testCertificate(name: string, sans: readonly string[]): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'ordersaga-tls-'));
  execFileSync('bash', [TLS_SCRIPT, dir, name, ...sans]);
  return {
    caFile: join(dir, 'ca.crt'),
    cert: readFileSync(join(dir, `${name}.crt`)),
    key: readFileSync(join(dir, `${name}.key`)),
  };
}
