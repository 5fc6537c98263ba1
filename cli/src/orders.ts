/**
 * Orders as their saga state says (order.state, read whole): one, or all of them with filters.
 * A retired order (its row deleted after ORDER_RETENTION) is not listed.
 */
import type { SagaState } from '@ordersaga/contracts';
import { isRuntimeKey, rowOf } from '@ordersaga/runtime';
import type { KafkaSession } from './kafka-session.js';

export interface OrderFilter {
  readonly status?: string;
  readonly customer?: string;
}

export async function readOrders(session: KafkaSession): Promise<Map<string, SagaState>> {
  const orders = new Map<string, SagaState>();
  for (const { message, partition } of await session.read('order.state')) {
    if (isRuntimeKey(message.key?.toString('utf8') ?? '')) continue;
    const [key, row] = rowOf<SagaState>(message, partition);
    if (row) orders.set(key, row.value);
    else orders.delete(key);
  }
  return orders;
}

export async function listOrders(session: KafkaSession, filter: OrderFilter): Promise<SagaState[]> {
  const status = filter.status?.toUpperCase();
  return [...(await readOrders(session)).values()]
    .filter((o) => (!status || o.phase === status) && (!filter.customer || o.customerId === filter.customer))
    .sort((a, b) => a.placedAt.localeCompare(b.placedAt));
}
