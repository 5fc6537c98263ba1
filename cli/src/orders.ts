/**
 * Orders as their saga state says (order.state, read whole): one, or all of them with filters.
 * A retired order (its row deleted after ORDER_RETENTION) is not listed.
 */
import type { SagaState } from '@ordersaga/contracts';
import { isRuntimeKey, type StoredRow } from '@ordersaga/runtime';
import type { KafkaSession } from './kafka-session.js';

export interface OrderFilter {
  readonly status?: string;
  readonly customer?: string;
}

export async function readOrders(session: KafkaSession): Promise<Map<string, SagaState>> {
  const orders = new Map<string, SagaState>();
  for (const { message } of await session.read('order.state')) {
    const key = message.key?.toString('utf8') ?? '';
    if (isRuntimeKey(key)) continue;
    if (message.value === null) orders.delete(key);
    else orders.set(key, (JSON.parse(message.value.toString('utf8')) as StoredRow<SagaState>).value);
  }
  return orders;
}

export async function listOrders(session: KafkaSession, filter: OrderFilter): Promise<SagaState[]> {
  const status = filter.status?.toUpperCase();
  return [...(await readOrders(session)).values()]
    .filter((o) => (!status || o.phase === status) && (!filter.customer || o.customerId === filter.customer))
    .sort((a, b) => a.placedAt.localeCompare(b.placedAt));
}
