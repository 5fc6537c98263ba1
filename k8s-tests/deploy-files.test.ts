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

test('everything runs on the Node.js LTS of .node-version (or newer)', () => {
  const nodeVersion = readFileSync(join(ROOT, '.node-version'), 'utf8').trim();
  const major = Number(nodeVersion.split('.')[0]);
  console.log(`node ${process.version} (project: ${nodeVersion})`);
  expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(major);
  const { engines } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  expect(engines.node).toMatch(new RegExp(`^>=${major}\\.`));
});

test('the Dockerfile: multi-stage, pinned base, production dependencies only, non-root', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const stages = [...dockerfile.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)].map((m) => m[2]);
  expect(stages).toEqual(expect.arrayContaining(['build', 'prune', 'runtime']));
  expect(stages.at(-1)).toBe('runtime');
  // The Node.js of the images is the one the project runs on and CI installs: .node-version.
  const nodeVersion = readFileSync(join(ROOT, '.node-version'), 'utf8').trim();
  expect(dockerfile).toMatch(
    new RegExp(`^ARG NODE_IMAGE=node:${nodeVersion.replaceAll('.', '\\.')}-bookworm-slim$`, 'm'),
  );
  expect(dockerfile).not.toMatch(/:latest\b/);
  expect(dockerfile).toMatch(/npm ci --omit=dev/);
  const runtime = dockerfile.slice(dockerfile.search(/^FROM \S+ AS runtime/m));
  expect(runtime).toMatch(/^USER 65532:65532$/m);
  expect(runtime).toMatch(/^COPY --from=prune /m);
  expect(runtime).not.toMatch(/^COPY --from=(build|deps) /m);
});
