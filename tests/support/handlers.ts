/**
 * For unit tests of the services' pure handlers: messages as they arrive, and a runner that
 * applies each decision's state writes the way the runtime does once a transaction commits.
 */
import type { AnyEnvelope, Decision, Handler, Outgoing, Payload, SagaTopic, StateTable } from '@ordersaga/runtime';

export const NOW = new Date('2026-01-01T00:00:00Z');

export function message<T extends SagaTopic>(type: T, orderId: string, payload: Payload<T>, now = NOW): AnyEnvelope {
  return {
    id: `${type}-${orderId}`,
    type,
    version: 1,
    orderId,
    correlationId: 'c',
    causationId: null,
    timestamp: now.toISOString(),
    payload,
  } as AnyEnvelope;
}

export function runner<V>(handle: Handler<V>, table: StateTable<V>, now = NOW): (message: AnyEnvelope) => Decision<V> {
  return (incoming) => {
    const decision = handle(incoming, table, { now });
    for (const [key, value] of decision.put ?? []) table.write(key, value, 0);
    return decision;
  };
}

/**
 * A handler with the service's internal topics looped back, as Kafka would deliver them (one
 * partition here): what it sends itself is handled at once; what it sends others is returned.
 */
export function loopback<V>(
  run: (message: AnyEnvelope) => Decision<V>,
  internal: (topic: SagaTopic) => boolean,
): (message: AnyEnvelope) => Outgoing[] {
  const deliver = (outgoing: readonly Outgoing[]): Outgoing[] =>
    outgoing.flatMap((out) => (internal(out.topic) ? deliver(run(out.envelope as AnyEnvelope).send ?? []) : [out]));
  return (message) => deliver(run(message).send ?? []);
}
