/**
 * Leader election on a coordination.k8s.io/v1 Lease, by client-go's leaderelection rules:
 *
 * - A candidate never compares the holder's renewTime with its own clock (clocks differ): it
 *   notes when it saw the Lease change (its resourceVersion), on its own monotonic clock, and
 *   takes the Lease only once it has seen no change for the Lease's whole duration.
 * - The leader acts only while its last successful renewal began less than `renewDeadlineMs`
 *   ago (less than the duration): an API server that hangs, or answers errors, stops it before
 *   a candidate may take over, even if its request never returns.
 * - Every write carries the resourceVersion read, so two replicas never both win one turn.
 */
import { Gauge } from 'prom-client';
import type { V1Lease } from '@kubernetes/client-node';
import { metrics as runtimeMetrics, type Logger } from '@ordersaga/runtime';
import { statusCodeOf, type Kube } from './kube.js';

const isLeader = new Gauge({
  name: 'ordersaga_operator_leader',
  help: '1 while this replica holds the lease',
  registers: [runtimeMetrics.registry],
});

export interface LeaseOptions {
  readonly name: string;
  readonly identity: string;
  /** How long a Lease seen unchanged is still its holder's (client-go's LeaseDuration). */
  readonly durationSeconds: number;
  /** How long the leader goes on without a successful renewal (RenewDeadline): less than the duration. */
  readonly renewDeadlineMs: number;
  /** How often it tries to acquire or renew (RetryPeriod): less than the renew deadline. */
  readonly renewEveryMs: number;
  /** The clock the Lease's times are written with (a test skews it); waits use a monotonic clock. */
  readonly wallClock?: () => Date;
}

/**
 * A Lease's times are MicroTime (six fraction digits); client-node would send a Date with three,
 * which the API server refuses. The string goes through its serializer unchanged.
 */
export const microTime = (date: Date) => date.toISOString().replace(/Z$/, '000Z') as unknown as Date;

/** Milliseconds on a clock that only goes forward, whatever the wall clock does. */
const monotonic = () => performance.now();

/** Waits for the promise, or `ms`, whichever comes first. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

export class LeaderElector {
  private leading = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  /** Fires when the renew deadline passes without a renewal. */
  private deadline: NodeJS.Timeout | undefined;
  /** When the last successful acquisition or renewal was sent (monotonic ms). */
  private renewedAt = -Infinity;
  /** The Lease as last seen (its resourceVersion) and when it was first seen so (monotonic ms). */
  private observed: { version: string | undefined; at: number } | undefined;
  /** +1 per attempt: an attempt that comes back after a later one began changes nothing. */
  private attempts = 0;
  private current: Promise<void> = Promise.resolve();

  constructor(
    private readonly kube: Kube,
    private readonly options: LeaseOptions,
    private readonly log: Logger,
  ) {
    const { durationSeconds, renewDeadlineMs, renewEveryMs } = options;
    if (!(renewEveryMs < renewDeadlineMs && renewDeadlineMs < durationSeconds * 1000))
      throw new Error(
        `lease timing: the retry period (${renewEveryMs} ms) must be shorter than the renew deadline ` +
          `(${renewDeadlineMs} ms), and that shorter than the lease duration (${durationSeconds} s)`,
      );
  }

  /** Whether this replica may act as the leader now. */
  get isLeader(): boolean {
    return this.leading && monotonic() - this.renewedAt < this.options.renewDeadlineMs;
  }

  start(): void {
    const loop = async () => {
      // A hung request is left behind once the renew deadline passes; the next attempt begins.
      this.current = this.tryAcquireOrRenew();
      await within(this.current, this.options.renewDeadlineMs);
      if (!this.stopped) this.timer = setTimeout(loop, this.options.renewEveryMs);
    };
    void loop();
  }

  /** Stops renewing and, if leading, gives the lease up so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.deadline);
    await within(this.current, this.options.renewDeadlineMs);
    const wasLeading = this.isLeader;
    this.leading = false;
    isLeader.set(0);
    if (!wasLeading) return;
    try {
      const lease = await this.kube.readLease(this.options.name);
      if (lease.spec?.holderIdentity === this.options.identity) {
        const spec = { ...this.timesKept(lease), holderIdentity: undefined };
        await this.kube.replaceLease(this.options.name, { ...lease, spec });
      }
      this.log.info({ lease: this.options.name }, 'leadership released');
    } catch (err) {
      this.log.warn({ err: String(err) }, 'could not release the lease');
    }
  }

  private setLeading(leading: boolean, why?: string): void {
    if (leading !== this.leading)
      this.log.info({ lease: this.options.name, why }, leading ? 'became leader' : 'lost leadership');
    this.leading = leading;
    isLeader.set(leading ? 1 : 0);
  }

  /** The Lease's spec with the times it was read with, in the format the server accepts. */
  private timesKept(lease: V1Lease): NonNullable<V1Lease['spec']> {
    const spec = { ...lease.spec };
    if (spec.renewTime) spec.renewTime = microTime(new Date(spec.renewTime));
    if (spec.acquireTime) spec.acquireTime = microTime(new Date(spec.acquireTime));
    return spec;
  }

  private renewed(sentAt: number, lease: V1Lease): void {
    if (this.stopped) return;
    this.renewedAt = sentAt;
    this.observed = { version: lease.metadata?.resourceVersion, at: monotonic() };
    this.setLeading(true);
    clearTimeout(this.deadline);
    this.deadline = setTimeout(() => {
      if (this.leading && !this.isLeader) this.setLeading(false, 'no renewal within the renew deadline');
    }, this.options.renewDeadlineMs);
    this.deadline.unref();
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const attempt = ++this.attempts;
    const latest = () => attempt === this.attempts && !this.stopped;
    const { name, identity, durationSeconds } = this.options;
    const sentAt = monotonic();
    const now = microTime(this.options.wallClock?.() ?? new Date());
    try {
      let lease: V1Lease;
      try {
        lease = await this.kube.readLease(name);
      } catch (err) {
        if (statusCodeOf(err) !== 404) throw err;
        const created = await this.kube.createLease({
          metadata: { name },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: now,
            renewTime: now,
            leaseTransitions: 0,
          },
        });
        if (latest()) this.renewed(sentAt, created);
        return;
      }
      if (!latest()) return;
      const version = lease.metadata?.resourceVersion;
      if (!this.observed || this.observed.version !== version) this.observed = { version, at: monotonic() };
      const seen = this.observed;
      const spec = lease.spec ?? {};
      const holder = spec.holderIdentity;
      const heldFor = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
      if (holder && holder !== identity && monotonic() < seen.at + heldFor) {
        this.setLeading(false, `held by ${holder}`);
        return;
      }
      const takingOver = holder !== identity;
      const written = await this.kube.replaceLease(name, {
        ...lease,
        spec: {
          ...this.timesKept(lease),
          holderIdentity: identity,
          leaseDurationSeconds: durationSeconds,
          renewTime: now,
          ...(takingOver ? { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
        },
      });
      if (latest()) this.renewed(sentAt, written);
    } catch (err) {
      if (!latest()) return;
      // Another replica wrote first: it leads. Any other failure: retried until the renew
      // deadline, past which isLeader is false anyway.
      if (statusCodeOf(err) === 409) this.setLeading(false, 'another replica wrote the lease first');
      else this.log.warn({ err: String(err) }, 'lease renewal failed');
    }
  }
}
