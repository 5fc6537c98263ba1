/**
 * The SagaOrder controller's leader election (operator/src/leader.ts) against a real
 * kube-apiserver, by client-go's rules: a candidate whose clock is off takes a Lease neither
 * sooner nor later than the Lease's duration, timed on its own clock; a leader whose API server
 * hangs stops acting within its renew deadline, before a candidate may take over; never two
 * leaders at once.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '@ordersaga/runtime';
import { Kube, RateLimiter } from '../operator/src/kube.js';
import { LeaderElector, microTime, type LeaseOptions } from '../operator/src/leader.js';
import { eventually, sleep } from '../tests/support/stack.js';
import { TestCluster } from './support/cluster.js';

const NAMESPACE = 'election';
const TIMING = { durationSeconds: 3, renewDeadlineMs: 2_000, renewEveryMs: 500 } as const;
const HOUR = 3_600_000;

let cluster: TestCluster;
let kube: Kube;
const started: LeaderElector[] = [];

beforeAll(async () => {
  cluster = await TestCluster.start();
  await cluster.kubectl(['create', 'namespace', NAMESPACE]);
  const config = new KubeConfig();
  config.loadFromFile(cluster.kubeconfig);
  kube = new Kube(config, NAMESPACE, new RateLimiter(100, 100));
});

afterEach(async () => {
  await cluster.controlPlane('thaw-apiserver');
  await Promise.all(started.splice(0).map((e) => e.stop()));
});

afterAll(() => cluster?.stop());

function elector(identity: string, lease: string, options: Partial<LeaseOptions> = {}): LeaderElector {
  const e = new LeaderElector(kube, { name: lease, identity, ...TIMING, ...options }, createLogger(identity));
  e.start();
  started.push(e);
  return e;
}

/** Who leads, every 50 ms for `ms`: one set of identities per sample. */
async function leadersOver(electors: Record<string, LeaderElector>, ms: number): Promise<string[][]> {
  const samples: string[][] = [];
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50))
    samples.push(Object.entries(electors).flatMap(([name, e]) => (e.isLeader ? [name] : [])));
  return samples;
}

/** A Lease whose holder died just now: written once, never renewed. */
async function leaseOfTheDead(name: string): Promise<number> {
  const now = microTime(new Date());
  await kube.createLease({
    metadata: { name },
    spec: { holderIdentity: 'gone', leaseDurationSeconds: TIMING.durationSeconds, renewTime: now, acquireTime: now },
  });
  return Date.now();
}

test('a candidate whose clock is an hour ahead takes no Lease its holder renews', async () => {
  const holder = elector('holder', 'renewed');
  await eventually('holder to lead', async () => (holder.isLeader ? true : undefined));
  const ahead = elector('ahead', 'renewed', { wallClock: () => new Date(Date.now() + HOUR) });
  const samples = await leadersOver({ holder, ahead }, 3 * TIMING.durationSeconds * 1000);
  expect(samples.filter((s) => s.join() !== 'holder')).toEqual([]);
});

test("a dead holder's Lease is taken once its duration has passed, by the candidates' own clocks, whichever way they are off", async () => {
  for (const [name, skewMs] of [
    ['ahead', HOUR],
    ['behind', -HOUR],
  ] as const) {
    const lease = `dead-${name}`;
    const written = await leaseOfTheDead(lease);
    const candidate = elector(name, lease, { wallClock: () => new Date(Date.now() + skewMs) });
    await eventually(`${name} to lead`, async () => (candidate.isLeader ? true : undefined), 10_000);
    const after = Date.now() - written;
    // Not before the Lease's duration (what comparing the holder's renewTime with a clock an hour
    // ahead would do at once), nor long after it (an hour, for a clock behind).
    expect(after).toBeGreaterThanOrEqual(TIMING.durationSeconds * 1000);
    expect(after).toBeLessThan(TIMING.durationSeconds * 1000 + 3 * TIMING.renewEveryMs + 1_000);
    const { spec } = await kube.readLease(lease);
    expect(spec?.holderIdentity).toBe(name);
    expect(spec?.leaseTransitions).toBe(1);
  }
});

test('a leader whose API server hangs stops acting within its renew deadline; never two leaders, one again after', async () => {
  const leader = elector('leader', 'hung');
  await eventually('leader to lead', async () => (leader.isLeader ? true : undefined));
  const candidate = elector('candidate', 'hung');
  await sleep(TIMING.renewEveryMs * 2);

  await cluster.controlPlane('freeze-apiserver');
  const frozen = Date.now();
  const whileHung = await leadersOver({ leader, candidate }, TIMING.durationSeconds * 1000 + 1_000);
  const leadFor = whileHung.findIndex((s) => s.length === 0) * 50;
  // The last renewal began at most a retry period before the freeze.
  expect(leadFor).toBeLessThanOrEqual(TIMING.renewDeadlineMs + TIMING.renewEveryMs);
  expect(leadFor).toBeLessThan(TIMING.durationSeconds * 1000);
  expect(whileHung.slice(Math.ceil(leadFor / 50)).filter((s) => s.length > 0)).toEqual([]);
  expect(whileHung.some((s) => s.includes('candidate'))).toBe(false);
  expect(Date.now() - frozen).toBeGreaterThan(TIMING.durationSeconds * 1000);

  await cluster.controlPlane('thaw-apiserver');
  await eventually('one of them to lead again', async () => (leader.isLeader || candidate.isLeader ? true : undefined));
  const after = await leadersOver({ leader, candidate }, TIMING.durationSeconds * 1000);
  expect(after.filter((s) => s.length !== 1)).toEqual([]);
});
