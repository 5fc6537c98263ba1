import { TopicFollower, type TopicNamer } from '@ordersaga/runtime';
import { Partitioners, type Admin, type Kafka, type Producer } from 'kafkajs';

/**
 * What became of each order's SagaOrder: it has had one (`mirrored`), or a user deleted it
 * (`deleted`). The controller creates a SagaOrder for an order only when neither is so, so a
 * SagaOrder deleted while the controller was away is not created again either (it had one, and
 * it is gone). A compacted topic keyed by orderId, read from its start; an order's entry goes
 * (a tombstone) when its saga is retired.
 */
export interface MirrorEntry {
  readonly mirror: 'mirrored' | 'deleted';
  /** The SagaOrder's name. */
  readonly name: string;
  readonly at: string;
}

export class MirrorLedger {
  private readonly entries = new Map<string, MirrorEntry>();
  private readonly follower: TopicFollower;
  private readonly producer: Producer;
  private readonly topic: string;

  constructor(kafka: Kafka, admin: Admin, namer: TopicNamer) {
    this.topic = namer.physical('sagaorder.mirrors');
    this.follower = new TopicFollower(kafka, admin, this.topic, namer.id('operator.mirrors-reader'), (message) => {
      if (!message.key) return;
      const orderId = message.key.toString('utf8');
      if (message.value === null) this.entries.delete(orderId);
      else this.entries.set(orderId, JSON.parse(message.value.toString('utf8')) as MirrorEntry);
    });
    this.producer = kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
    });
  }

  async start(): Promise<void> {
    await this.producer.connect();
    await this.follower.start();
  }

  /** Resolves once every entry written before this call is known. */
  caughtUp(): Promise<void> {
    return this.follower.caughtUp();
  }

  get(orderId: string): MirrorEntry | undefined {
    return this.entries.get(orderId);
  }

  orderIds(): string[] {
    return [...this.entries.keys()];
  }

  /** Records what became of an order's SagaOrder; resolves once Kafka has it. */
  async record(orderId: string, mirror: MirrorEntry['mirror'], name: string): Promise<void> {
    const entry: MirrorEntry = { mirror, name, at: new Date().toISOString() };
    await this.producer.send({ topic: this.topic, messages: [{ key: orderId, value: JSON.stringify(entry) }] });
    this.entries.set(orderId, entry);
  }

  /** Forgets an order whose saga is retired: nothing is mirrored of it any more. */
  async forget(orderId: string): Promise<void> {
    if (!this.entries.has(orderId)) return;
    await this.producer.send({ topic: this.topic, messages: [{ key: orderId, value: null }] });
    this.entries.delete(orderId);
  }

  async stop(): Promise<void> {
    await Promise.all([this.follower.stop(), this.producer.disconnect()]);
  }
}
