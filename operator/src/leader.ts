/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does: the
 * holder renews it; another replica takes it only once it has not been renewed for its whole
 * duration. Updates carry the resourceVersion read, so two replicas can never both win.
 */
import { Gauge } from 'prom-client';
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
  readonly durationSeconds: number;
  readonly renewEveryMs: number;
}

/**
 * A Lease's times are MicroTime (six fraction digits); client-node would send a Date with three,
 * which the API server refuses. The string goes through its serializer unchanged.
 */
const microTime = (date: Date) => date.toISOString().replace(/Z$/, '000Z') as unknown as Date;

export class LeaderElector {
  private leading = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly kube: Kube,
    private readonly options: LeaseOptions,
    private readonly log: Logger,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    const loop = async () => {
      await this.tryAcquireOrRenew();
      this.timer = setTimeout(loop, this.options.renewEveryMs);
    };
    void loop();
  }

  /** Stops renewing and, if leading, gives the lease up so another replica takes over at once. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    if (!this.leading) return;
    this.setLeading(false);
    try {
      const lease = await this.kube.readLease(this.options.name);
      if (lease.spec?.holderIdentity === this.options.identity) {
        const spec = { ...lease.spec, holderIdentity: undefined };
        // Times read back are Dates again: keep them in the format the server accepts.
        if (spec.renewTime) spec.renewTime = microTime(new Date(spec.renewTime));
        if (spec.acquireTime) spec.acquireTime = microTime(new Date(spec.acquireTime));
        await this.kube.replaceLease(this.options.name, { ...lease, spec });
      }
    } catch (err) {
      this.log.warn({ err: String(err) }, 'could not release the lease');
    }
  }

  private setLeading(leading: boolean): void {
    if (leading !== this.leading)
      this.log.info({ lease: this.options.name }, leading ? 'became leader' : 'lost leadership');
    this.leading = leading;
    isLeader.set(leading ? 1 : 0);
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const { name, identity, durationSeconds } = this.options;
    const now = microTime(new Date());
    try {
      let lease;
      try {
        lease = await this.kube.readLease(name);
      } catch (err) {
        if (statusCodeOf(err) !== 404) throw err;
        await this.kube.createLease({
          metadata: { name },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: now,
            renewTime: now,
            leaseTransitions: 0,
          },
        });
        this.setLeading(true);
        return;
      }
      const spec = lease.spec ?? {};
      const held = spec.holderIdentity && spec.holderIdentity !== identity;
      const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
      const lapsed = renewed + (spec.leaseDurationSeconds ?? durationSeconds) * 1000 < Date.now();
      if (held && !lapsed) {
        this.setLeading(false);
        return;
      }
      const takingOver = spec.holderIdentity !== identity;
      await this.kube.replaceLease(name, {
        ...lease,
        spec: {
          ...spec,
          ...(spec.acquireTime ? { acquireTime: microTime(new Date(spec.acquireTime)) } : {}),
          holderIdentity: identity,
          leaseDurationSeconds: durationSeconds,
          renewTime: now,
          ...(takingOver ? { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
        },
      });
      this.setLeading(true);
    } catch (err) {
      // A conflict means another replica wrote first; any other error, that we cannot prove we
      // still hold it. Either way: stop writing until a renewal succeeds.
      this.setLeading(false);
      if (statusCodeOf(err) !== 409) this.log.warn({ err: String(err) }, 'lease renewal failed');
    }
  }
}
