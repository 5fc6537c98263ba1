/**
 * The README's main job, `npm start` (scripts/run-local.js), on a fresh machine's terms: with no
 * KAFKA_BROKERS it starts a broker of its own on an empty data dir, then the four services; an
 * order goes through; Ctrl-C stops it all. Start-up is normal work: waiting for a broker's
 * coordinators is not an error, and nothing in the logs may say ERROR (or warn of Node.js).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMPONENTS } from '@ordersaga/contracts';
import { eventually } from './support/stack.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

test('npm start on a fresh broker: every service ready, an order confirmed, no ERROR, a clean stop', async () => {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ORDERSAGA_CACHE: process.env.ORDERSAGA_CACHE,
    // Below the ephemeral range (32768 and up), as are the controller's port (+1) next to it: no
    // client's port is in the way, as a free port's neighbour might be.
    KAFKA_PORT: '29400',
    KAFKA_DATA_DIR: mkdtempSync(join(tmpdir(), 'ordersaga-fresh-kafka-')),
  };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  const child = spawn(process.execPath, [join(ROOT, 'scripts', 'run-local.js'), '--json'], { env });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  // What npm start printed last: a failure says where start-up stood.
  const tail = () => output.split('\n').slice(-40).join('\n');
  try {
    const running = eventually(
      'ordersaga to be running',
      async () => (output.includes('ordersaga is running') ? true : undefined),
      120_000,
    );
    const exitedEarly = exited.then((code) => {
      throw new Error(`npm start exited (${code}) before it was running`);
    });
    await Promise.race([running, exitedEarly]).catch((err: Error) => {
      throw new Error(`${err.message}\n--- npm start's last lines:\n${tail()}`);
    });
    const order = `http://127.0.0.1:${COMPONENTS.order.port}`;
    const placed = await fetch(`${order}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customerId: 'alice', items: [{ sku: 'KB-001', quantity: 1 }] }),
    }).then((r) => r.json() as Promise<any>);
    const confirmed = await eventually('the order to be confirmed', async () => {
      const body = (await fetch(`${order}/orders/${placed.orderId}`).then((r) => r.json())) as any;
      return body.status === 'CONFIRMED' ? body : undefined;
    });
    expect(confirmed.total).toBe(4_990);
  } finally {
    child.kill('SIGINT');
  }
  expect(await exited).toBe(0);

  const lines = output.split('\n').filter(Boolean);
  // --json: each service line is "<service> | {json}"; run-local's own lines are plain text.
  const logged = lines.flatMap((line) => {
    const json = line.slice(line.indexOf('|') + 1).trim();
    try {
      return [JSON.parse(json) as { level: number; msg: string }];
    } catch {
      return [];
    }
  });
  expect(logged.length).toBeGreaterThan(20);
  expect(logged.filter((l) => l.level >= 50).map((l) => l.msg)).toEqual([]);
  expect(lines.filter((l) => /Warning|ERROR/.test(l))).toEqual([]);
}, 180_000);
