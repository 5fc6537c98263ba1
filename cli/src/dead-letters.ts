/**
 * Dead letters, as an operator acts on them: every dead-letter topic read whole, each dead letter
 * with its reason, kind, order and age, and whether it was redriven (the marker a redrive leaves
 * beside it); a redrive puts the original record back where it was read from, once.
 */
import { randomUUID } from 'node:crypto';
import { SAGA_TOPICS } from '@ordersaga/contracts';
import { deadLetterId, deadLetterTopicOf, headersToStrings, reasonsOf, redriveRecords } from '@ordersaga/runtime';
import type { KafkaSession } from './kafka-session.js';

export interface DeadLetterEntry {
  /** `<dead-letter topic>/<partition>/<offset>`: what `dlt show` and `dlt redrive` take. */
  readonly id: string;
  /** The topic it was read from, and will be redriven to. */
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly kind: string;
  /** Why it was dead-lettered, the last time. */
  readonly reason: string;
  /** Why it was dead-lettered before it was redriven, oldest first. */
  readonly earlierReasons: string[];
  /** Its key: the orderId (or the SKU, the customer, for an owner's topic). */
  readonly key: string | null;
  readonly at: string;
  readonly ageSeconds: number;
  readonly redrivenAt?: string;
  readonly headers: Record<string, string>;
  readonly value: string | null;
}

export interface DeadLetterFilter {
  /** A saga topic (or its dead-letter topic). */
  readonly topic?: string;
  /** A text its reasons contain. */
  readonly reason?: string;
  readonly kind?: string;
}

/** The saga topics a filter names: one, or all of them. */
function topicsOf(filter: DeadLetterFilter): string[] {
  const all = Object.keys(SAGA_TOPICS);
  if (!filter.topic) return all;
  const topic = filter.topic.replace(/\.dlt$/, '');
  if (!all.includes(topic)) throw new UsageError(`no topic ${filter.topic}: one of ${all.join(', ')}`);
  return [topic];
}

/** A mistake in what was asked: exit code 2, with what would be right. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Every dead letter the filter selects, oldest first per topic, with its redrive if it had one. */
export async function listDeadLetters(
  session: KafkaSession,
  filter: DeadLetterFilter,
  now: Date,
): Promise<DeadLetterEntry[]> {
  const entries: DeadLetterEntry[] = [];
  for (const topic of topicsOf(filter)) {
    const dlt = deadLetterTopicOf(topic as never);
    const records = (await session.read(dlt)).map((r) => ({ ...r, headers: headersToStrings(r.message.headers) }));
    const redriven = new Map<string, string>();
    for (const { headers } of records)
      if (headers['dlt-redrive-of']) redriven.set(headers['dlt-redrive-of'], headers['dlt-redriven-at'] ?? '');
    for (const { partition, message, headers } of records) {
      if (headers['dlt-redrive-of'] || !headers['dlt-topic']) continue;
      const at = headers['dlt-at'] ?? new Date(Number(message.timestamp)).toISOString();
      const [earlier, last] = [reasonsOf(headers).slice(0, -1), headers['dlt-reason'] ?? ''];
      const entry: DeadLetterEntry = {
        id: deadLetterId({ topic: dlt, partition, offset: message.offset }),
        topic,
        partition,
        offset: message.offset,
        kind: headers['dlt-kind'] ?? '',
        reason: last,
        earlierReasons: earlier,
        key: message.key?.toString('utf8') ?? null,
        at,
        ageSeconds: Math.max(0, Math.round((now.getTime() - Date.parse(at)) / 1000)),
        ...(redriven.has(`${partition}/${message.offset}`)
          ? { redrivenAt: redriven.get(`${partition}/${message.offset}`)! }
          : {}),
        headers,
        value: message.value?.toString('utf8') ?? null,
      };
      if (filter.kind && entry.kind !== filter.kind) continue;
      if (filter.reason && ![...earlier, last].some((r) => r.includes(filter.reason!))) continue;
      entries.push(entry);
    }
  }
  return entries;
}

/** Dead letters by their ids, each dead-letter topic read once. */
export async function findDeadLetters(
  session: KafkaSession,
  ids: readonly string[],
  now: Date,
): Promise<DeadLetterEntry[]> {
  const topics = ids.map((id) => {
    const match = /^(.+\.dlt)\/(\d+)\/(\d+)$/.exec(id);
    if (!match)
      throw new UsageError(`${id} is no dead letter's id: <topic>.dlt/<partition>/<offset>, as dlt list shows`);
    return match[1]!;
  });
  const byTopic = new Map<string, DeadLetterEntry[]>();
  for (const topic of new Set(topics)) byTopic.set(topic, await listDeadLetters(session, { topic }, now));
  return ids.map((id, i) => {
    const found = byTopic.get(topics[i]!)!.find((e) => e.id === id);
    if (!found) throw new Error(`no dead letter ${id}`);
    return found;
  });
}

export interface RedriveOutcome {
  readonly redriven: DeadLetterEntry[];
  /** Those not redriven, and why. */
  readonly refused: Array<{ entry: DeadLetterEntry; why: string }>;
}

/**
 * Puts each dead letter back on its topic, in transactions of up to `batch` redrives, each
 * redrive with its marker: a dead letter already redriven is refused, saying when.
 */
export async function redrive(
  session: KafkaSession,
  entries: DeadLetterEntry[],
  now: Date,
  progress: (done: number, total: number) => void,
  batch = 100,
): Promise<RedriveOutcome> {
  const refused = entries
    .filter((e) => e.redrivenAt)
    .map((entry) => ({ entry, why: `already redriven at ${entry.redrivenAt}` }));
  const todo = entries.filter((e) => !e.redrivenAt);
  if (todo.length === 0) return { redriven: [], refused };
  const producer = session.kafka.producer({
    transactionalId: session.namer.id(`cli.redrive.${randomUUID()}`),
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  const redriven: DeadLetterEntry[] = [];
  try {
    for (let start = 0; start < todo.length; start += batch) {
      const chunk = todo.slice(start, start + batch);
      const transaction = await producer.transaction();
      try {
        for (const entry of chunk) {
          const dlt = deadLetterTopicOf(entry.topic as never);
          const { back, marker } = redriveRecords(
            {
              topic: dlt,
              partition: entry.partition,
              offset: entry.offset,
              key: entry.key === null ? null : Buffer.from(entry.key),
              value: entry.value === null ? null : Buffer.from(entry.value),
              headers: entry.headers,
            },
            (logical) => session.namer.physical(logical as never),
            now,
          );
          await transaction.send({ topic: back.topic, messages: [{ ...back.message, partition: back.partition }] });
          await transaction.send({
            topic: session.namer.physical(dlt as never),
            messages: [{ ...marker.message, partition: marker.partition }],
          });
        }
        await transaction.commit();
      } catch (err) {
        await transaction.abort().catch(() => undefined);
        throw err;
      }
      redriven.push(...chunk);
      progress(redriven.length, todo.length);
    }
  } finally {
    await producer.disconnect();
  }
  return { redriven, refused };
}
