import { envDuration } from '@ordersaga/runtime';

/**
 * How long every service keeps an order's rows once its saga has ended (a finished saga, a sold
 * reservation, a captured payment, a notification sent): seven days, unless `ORDER_RETENTION`
 * says otherwise. The state topics keep the tombstones as long, so a retired order is still
 * known as retired that long after (its GET says when), also on a replica that rebuilds its store.
 */
export const DEFAULT_ORDER_RETENTION_MS = 7 * 86_400_000;

export function orderRetentionMs(): number {
  return envDuration('ORDER_RETENTION', DEFAULT_ORDER_RETENTION_MS);
}
