/**
 * Stock: reservations per order, and the levels they imply.
 *
 * The state is one row per order (`stock.state`, keyed by orderId); levels are derived from
 * the seeded catalogue minus what the rows hold, so they are exact after any replay:
 *   initial = available + reserved + sold
 *
 * A reservation is a hold: only `order.confirmed` sells it, a `stock.release` gives it back,
 * and one that neither happens to within the hold time is released by the clock (holdExpiry),
 * so a request no saga follows up (a bug, a replay, a foreign writer) never keeps stock.
 */
import type { OrderItem, PricedLine } from '@ordersaga/contracts';
import {
  reply,
  type AnyEnvelope,
  type Decision,
  type HandlerContext,
  type HoldRules,
  type StateTable,
  type StateView,
} from '@ordersaga/runtime';

export interface CatalogEntry {
  /** Units in stock when the platform was seeded. */
  readonly quantity: number;
  /** Unit price in cents. */
  readonly price: number;
}
export type Catalog = Readonly<Record<string, CatalogEntry>>;

export type ReservationStatus = 'reserved' | 'rejected' | 'released' | 'sold';

export interface Reservation {
  readonly status: ReservationStatus;
  readonly items: readonly OrderItem[];
  readonly lines?: readonly PricedLine[];
  readonly reason?: string;
  readonly at: string;
  /** While reserved: when the hold expires (epoch ms) unless the order is confirmed or released. */
  readonly heldUntil?: number;
}

export interface StockLevel {
  readonly sku: string;
  readonly price: number;
  readonly initial: number;
  readonly available: number;
  readonly reserved: number;
  readonly sold: number;
}

/** Units held and sold per SKU, kept exact by following every row change. */
export class Levels {
  private readonly reserved = new Map<string, number>();
  private readonly sold = new Map<string, number>();

  constructor(
    private readonly catalog: Catalog,
    table: StateTable<Reservation>,
  ) {
    table.onChange((_orderId, previous, next) => {
      if (previous) this.count(previous, -1);
      if (next) this.count(next, +1);
    });
  }

  private count(reservation: Reservation, sign: 1 | -1): void {
    const bucket = reservation.status === 'reserved' ? this.reserved : reservation.status === 'sold' ? this.sold : null;
    if (!bucket) return;
    for (const { sku, quantity } of reservation.items) bucket.set(sku, (bucket.get(sku) ?? 0) + sign * quantity);
  }

  known(sku: string): boolean {
    return Object.hasOwn(this.catalog, sku);
  }

  level(sku: string): StockLevel | undefined {
    const entry = this.catalog[sku];
    if (!entry) return undefined;
    const reserved = this.reserved.get(sku) ?? 0;
    const sold = this.sold.get(sku) ?? 0;
    return {
      sku,
      price: entry.price,
      initial: entry.quantity,
      available: entry.quantity - reserved - sold,
      reserved,
      sold,
    };
  }

  all(): StockLevel[] {
    return Object.keys(this.catalog).map((sku) => this.level(sku)!);
  }
}

/** Quantities per SKU of an order (an order may list a SKU twice). */
function demand(items: readonly OrderItem[]): Map<string, number> {
  const totals = new Map<string, number>();
  for (const { sku, quantity } of items) totals.set(sku, (totals.get(sku) ?? 0) + quantity);
  return totals;
}

/** How a reservation nobody settles is released: what the runtime's holdExpiry needs to know. */
export function reservationHold(holdMs: number): HoldRules<Reservation> {
  return {
    name: 'stock-reservation',
    holdMs,
    heldUntil: (r) => (r.status === 'reserved' ? (r.heldUntil ?? 0) : undefined),
    expire: (r, reason, now) => ({ ...r, status: 'released', reason, at: now.toISOString() }),
    settledBy: ['order.confirmed'],
  };
}

export function createStockHandler(levels: Levels, holdMs: number) {
  return (message: AnyEnvelope, state: StateView<Reservation>, { now }: HandlerContext): Decision<Reservation> => {
    const existing = state.get(message.orderId);
    const at = now.toISOString();

    switch (message.type) {
      case 'stock.check.request': {
        // Seen before (duplicate), or released before it arrived (the saga timed out): nothing to do.
        if (existing) return {};
        const unknown = [...demand(message.payload.items).keys()].filter((sku) => !levels.known(sku));
        if (unknown.length > 0) {
          const reason = `unknown SKU ${unknown.join(', ')}`;
          return {
            put: [[message.orderId, { status: 'rejected', items: message.payload.items, reason, at }]],
            send: [reply(message, 'stock.checked', { result: 'unknown-sku', reason, skus: unknown }, now)],
          };
        }
        const missing = [...demand(message.payload.items)].flatMap(([sku, requested]) => {
          const available = levels.level(sku)!.available;
          return available >= requested ? [] : [{ sku, requested, available }];
        });
        if (missing.length > 0) {
          const reason = missing.map((m) => `${m.sku}: ${m.requested} requested, ${m.available} available`).join('; ');
          return {
            put: [[message.orderId, { status: 'rejected', items: message.payload.items, reason, at }]],
            send: [reply(message, 'stock.checked', { result: 'insufficient', reason, missing }, now)],
          };
        }
        const lines = message.payload.items.map(({ sku, quantity }) => ({
          sku,
          quantity,
          unitPrice: levels.level(sku)!.price,
        }));
        const total = lines.reduce((sum, l) => sum + l.quantity * l.unitPrice, 0);
        const heldUntil = now.getTime() + holdMs;
        return {
          put: [[message.orderId, { status: 'reserved', items: message.payload.items, lines, at, heldUntil }]],
          send: [reply(message, 'stock.checked', { result: 'reserved', lines, total }, now)],
        };
      }

      case 'stock.release': {
        const { reason } = message.payload;
        // Released already (a duplicate, or its hold expired), or never reserved: nothing to give back.
        if (existing?.status === 'released' || existing?.status === 'rejected') return {};
        if (existing?.status === 'sold')
          throw new Error(`order ${message.orderId} is sold; its stock cannot be released`);
        // With no reservation yet, a tombstone makes sure a late request reserves nothing.
        const released = existing?.items ?? [];
        return {
          put: [[message.orderId, { status: 'released', items: released, reason, at }]],
          send: [reply(message, 'stock.released', { released: [...released], reason }, now)],
        };
      }

      case 'order.confirmed': {
        if (existing?.status === 'sold') return {};
        if (existing?.status !== 'reserved') {
          throw new Error(`order ${message.orderId} confirmed but its stock is ${existing?.status ?? 'not reserved'}`);
        }
        const { heldUntil: _settled, ...sold } = existing;
        return { put: [[message.orderId, { ...sold, status: 'sold', at }]] };
      }

      default:
        throw new Error(`stock does not handle ${message.type}`);
    }
  };
}
