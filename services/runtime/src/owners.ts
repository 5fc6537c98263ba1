/**
 * Which replica serves a key: the key's partition (kafkajs's default partitioner, the one every
 * producer of the platform uses), and the member of the consumer group that was assigned it.
 * Only that replica keeps the partition's rows, so a read of its key is answered there, as Kafka
 * Streams' interactive queries are: the others forward the request (http-routing.ts).
 *
 * A partition is served here once it is assigned AND its state is restored; the URLs of the
 * others come from the group's description (each member advertises its URL in its metadata,
 * co-partitioned-assigner.ts), read again after every rebalance and whenever an owner is missing.
 */
import { Partitioners, type Consumer, type PartitionMetadata } from 'kafkajs';
import type { Logger } from './context.js';
import { ownersFromGroup } from './co-partitioned-assigner.js';

/** The fewest milliseconds between two descriptions of the group asked for by a missing owner. */
const REFRESH_AT_MOST_EVERY_MS = 500;

export class Owners {
  private readonly partitioner = Partitioners.DefaultPartitioner();
  private partitions: PartitionMetadata[] = [];
  private served: ReadonlySet<number> = new Set();
  private byPartition = new Map<number, string>();
  private refreshing: Promise<void> | undefined;
  private lastRefresh = 0;

  constructor(
    /** The URL this replica's HTTP API answers at, as the others reach it. */
    readonly selfUrl: string,
    private readonly consumer: Consumer,
    private readonly log: Logger,
  ) {}

  /** The partition count of the topics the group consumes (co-partitioned: the same for all). */
  setPartitionCount(count: number): void {
    this.partitions = Array.from({ length: count }, (_, partitionId) => ({
      partitionId,
      leader: 0,
      replicas: [],
      isr: [],
      partitionErrorCode: 0,
    }));
  }

  /** The partitions whose state is restored here, and whose input this replica processes. */
  serve(partitions: ReadonlySet<number>): void {
    this.served = new Set(partitions);
    this.refresh().catch(() => undefined);
  }

  get servedPartitions(): ReadonlySet<number> {
    return this.served;
  }

  /** The partition of a key: where its messages, and the rows they own, are. */
  partitionOf(key: string): number {
    if (this.partitions.length === 0) throw new Error('the partition count is not known yet');
    return this.partitioner({ topic: '', partitionMetadata: this.partitions, message: { key, value: null } });
  }

  servesKey(key: string): boolean {
    return this.served.has(this.partitionOf(key));
  }

  /** The URL of the replica that serves the partition (this one's included); undefined while unknown. */
  async ownerOf(partition: number): Promise<string | undefined> {
    const known = this.ownerKnown(partition);
    if (known !== undefined || Date.now() - this.lastRefresh < REFRESH_AT_MOST_EVERY_MS) return known;
    await this.refresh();
    return this.ownerKnown(partition);
  }

  /**
   * The replicas to ask so that every partition is answered for: this one first when it serves
   * any, and the partitions no replica known here serves (a rebalance under way).
   */
  async coverage(): Promise<{ urls: string[]; missing: number[] }> {
    const missing = () => this.partitions.map((p) => p.partitionId).filter((p) => this.ownerKnown(p) === undefined);
    if (missing().length > 0 && Date.now() - this.lastRefresh >= REFRESH_AT_MOST_EVERY_MS) await this.refresh();
    const urls = new Set<string>(this.served.size > 0 ? [this.selfUrl] : []);
    for (const p of this.partitions) {
      const url = this.ownerKnown(p.partitionId);
      if (url !== undefined) urls.add(url);
    }
    return { urls: [...urls], missing: missing() };
  }

  private ownerKnown(partition: number): string | undefined {
    if (this.served.has(partition)) return this.selfUrl;
    const url = this.byPartition.get(partition);
    return url === this.selfUrl ? undefined : url;
  }

  /** A request was answered "not served here" by `url`: what is known of it is stale. */
  stale(url: string): void {
    for (const [partition, owner] of this.byPartition) if (owner === url) this.byPartition.delete(partition);
  }

  /** Reads the group's description again (one read at a time). */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        this.lastRefresh = Date.now();
        this.byPartition = ownersFromGroup(await this.consumer.describeGroup());
      } catch (err) {
        this.log.debug({ err }, 'could not describe the consumer group');
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }
}
