// The Node.js the project runs on (.node-version): a clear message instead of an obscure crash
// later when this one is older. Used by the local runner and the test run.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export function requireProjectNode(what) {
  const wanted = readFileSync(join(ROOT, '.node-version'), 'utf8').trim();
  const major = Number(wanted.split('.')[0]);
  if (Number(process.versions.node.split('.')[0]) >= major) return;
  console.error(
    `${what} needs Node.js ${major} (.node-version: ${wanted}); this is ${process.version}.\n` +
      `Put one first on PATH (fetched from the npm registry into ~/.cache/ordersaga if need be):\n` +
      `  export PATH="$(bash scripts/node.sh):$PATH"`,
  );
  process.exit(1);
}
