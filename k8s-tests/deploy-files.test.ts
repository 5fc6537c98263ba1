/**
 * What can be checked of the images and skaffold without a container runtime: skaffold.yaml by
 * the real skaffold (parse, validate, render through the chart), and the Dockerfile's rules.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './support/cluster.js';

test('skaffold.yaml: the real skaffold parses, validates and renders it, per profile', async () => {
  const { stdout } = await promisify(execFile)('bash', [join(ROOT, 'k8s-tests', 'scripts', 'check-skaffold.sh')], {
    maxBuffer: 16 * 1024 * 1024,
  });
  expect(stdout).toMatch(/^\d+ passed, 0 failed$/m);
  expect(stdout).not.toMatch(/^not ok/m);
}, 300_000);

test('the Dockerfile: multi-stage, pinned base, production dependencies only, non-root', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const stages = [...dockerfile.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)].map((m) => m[2]);
  expect(stages).toEqual(expect.arrayContaining(['build', 'prune', 'runtime']));
  expect(stages.at(-1)).toBe('runtime');
  expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:\d+\.\d+\.\d+-bookworm-slim$/m);
  expect(dockerfile).not.toMatch(/:latest\b/);
  expect(dockerfile).toMatch(/npm ci --omit=dev/);
  const runtime = dockerfile.slice(dockerfile.search(/^FROM \S+ AS runtime/m));
  expect(runtime).toMatch(/^USER 65532:65532$/m);
  expect(runtime).toMatch(/^COPY --from=prune /m);
  expect(runtime).not.toMatch(/^COPY --from=(build|deps) /m);
});
