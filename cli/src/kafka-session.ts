/**
 * The CLI's way to Kafka: the brokers and the namespace as the services take them (KAFKA_BROKERS,
 * ORDERSAGA_NAMESPACE, the KAFKA_TLS and SASL settings), or from --brokers and --namespace. The
 * client's own log goes to stderr, and only with LOG_LEVEL set: stdout holds just what was asked
 * for, and a failure is said once, at the end.
 */
import { randomUUID } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';
import { pino } from 'pino';
import { connectAdmin, createKafka, readWholeTopic, TopicNamer, type ReadRecord } from '@ordersaga/runtime';

export interface KafkaOptions {
  readonly brokers?: string;
  readonly namespace?: string;
}

export class KafkaSession {
  readonly namer: TopicNamer;
  readonly kafka: Kafka;
  private readonly brokers: string[];
  private admin: Admin | undefined;

  constructor(options: KafkaOptions) {
    this.brokers = (options.brokers ?? process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((b) => b.trim());
    this.namer = new TopicNamer(options.namespace ?? process.env.ORDERSAGA_NAMESPACE ?? '');
    const log = pino(
      { level: process.env.LOG_LEVEL ?? 'silent', base: { service: 'ordersaga-cli' } },
      pino.destination(2),
    );
    this.kafka = createKafka(`ordersaga-cli-${randomUUID().slice(0, 8)}`, this.brokers, log, { retries: 4 });
  }

  async connect(): Promise<Admin> {
    if (!this.admin) {
      const admin = this.kafka.admin();
      await connectAdmin(admin).catch((err: Error) => {
        throw new Error(`cannot reach Kafka at ${this.brokers.join(',')} (KAFKA_BROKERS, --brokers): ${err.message}`);
      });
      this.admin = admin;
    }
    return this.admin;
  }

  /** Every committed record of a topic (its name as the services know it), or none if it does not exist. */
  async read(logical: string): Promise<ReadRecord[]> {
    const admin = await this.connect();
    const topic = this.namer.physical(logical as never);
    if (!(await admin.listTopics()).includes(topic)) return [];
    return readWholeTopic(this.kafka, admin, topic, this.namer.id(`cli.reader.${randomUUID()}`));
  }

  async close(): Promise<void> {
    await this.admin?.disconnect();
  }
}
