import type { Span } from '@opentelemetry/api';
import { Partitioners, type Kafka, type Message, type Producer } from 'kafkajs';
import type { Outgoing } from './envelope.js';
import type { TopicNamer } from './kafka.js';
import { messagesProduced } from './metrics.js';
import { outgoingRecord } from './outgoing.js';
import { endSpans } from './tracing.js';

interface Queued {
  readonly out: Outgoing;
  readonly message: Message;
  readonly span: Span;
  readonly done: { resolve: () => void; reject: (err: unknown) => void };
}

/**
 * Publishes messages that start sagas (from HTTP requests). While one send is in flight, the
 * next messages wait and then go together in one request: under load the broker round trip is
 * shared by many orders, and an idle publisher adds no delay.
 */
export class Publisher {
  private readonly producer: Producer;
  private queue: Queued[] = [];
  private sending = false;

  constructor(
    kafka: Kafka,
    private readonly namer: TopicNamer,
  ) {
    this.producer = kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      // A retried POST is deduplicated by its order id, so a plain producer with acks=all is enough
      // and fails fast (503) instead of retrying forever while Kafka is away.
      allowAutoTopicCreation: false,
    });
  }

  connect(): Promise<void> {
    return this.producer.connect();
  }

  /**
   * Resolves once the message is acknowledged by all in-sync replicas. It starts a saga, in the
   * trace of the active span (the HTTP request's); with no trace to continue, in a new one.
   */
  publish(out: Outgoing): Promise<void> {
    const { message, span } = outgoingRecord(out, this.namer.physical(out.topic), { startsTrace: true });
    return new Promise((resolve, reject) => {
      this.queue.push({
        out,
        message,
        span,
        done: { resolve, reject },
      });
      if (!this.sending) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.sending = true;
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      const byTopic = new Map<string, Message[]>();
      for (const { out, message } of batch) {
        const topic = this.namer.physical(out.topic);
        byTopic.set(topic, [...(byTopic.get(topic) ?? []), message]);
      }
      try {
        await this.producer.sendBatch({
          acks: -1,
          topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
        });
        for (const { out, done } of batch) {
          messagesProduced.inc({ topic: out.topic });
          done.resolve();
        }
        endSpans(batch.map((q) => q.span));
      } catch (err) {
        for (const { done } of batch) done.reject(err);
        endSpans(
          batch.map((q) => q.span),
          err,
        );
      }
    }
    this.sending = false;
  }

  async disconnect(): Promise<void> {
    await this.producer.disconnect();
  }
}
