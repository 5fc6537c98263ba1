/**
 * Stock: a SKU's units are decided by its one owner, whatever the number of replicas.
 *
 * Two kinds of rows share `stock.state`, each on the partition of the messages that change it:
 *
 * - per SKU (key `sku:<SKU>`, on the partition of the SKU): its units — seeded, restocked, sold,
 *   held — beside a row per order it answered (`hold:<SKU>:<attemptKey>`) and per restock. Only the
 *   replica that owns that partition decides on them (the `stock.sku.*` topics are keyed by
 *   SKU), so two orders can never both take the last unit: available = initial + restocked -
 *   sold - held, never below zero.
 * - per order (key its `attemptKey`: the orderId, `<orderId>@2` for a retry; on the saga's partition): what the order asked for and where its
 *   reservation stands. A `stock.check.request` is split into one request per SKU, sent to each
 *   SKU's owner; when every answer is in, the order is reserved all or nothing (the SKUs that
 *   held for it are released if one could not) and the saga gets one `stock.checked`.
 *
 * A reservation is a hold: only `order.confirmed` sells it, a `stock.release` gives it back,
 * and one that neither happens to within the hold time is released by the clock (holdExpiry),
 * so a request no saga follows up (a bug, a replay, a foreign writer) never keeps stock.
 */
import { attemptKey, expiryCause, ownerKeyOf, type OrderItem, type PricedLine } from '@ordersaga/contracts';
import {
  keyedBy,
  reply,
  type AnyEnvelope,
  type Cause,
  type Decision,
  type Envelope,
  type HandlerContext,
  type HoldRules,
  type Outgoing,
  type RowLifecycle,
  type StateView,
} from '@ordersaga/runtime';

export interface CatalogEntry {
  /** Units in stock when the platform was seeded. */
  readonly quantity: number;
  /** Unit price in cents. */
  readonly price: number;
}
export type Catalog = Readonly<Record<string, CatalogEntry>>;

/** A SKU's units, kept by its owner: a row of constant size, whatever the history. */
export interface SkuUnits {
  readonly kind: 'sku';
  readonly sku: string;
  readonly price: number;
  readonly initial: number;
  readonly restocked: number;
  readonly sold: number;
  /** Units held for orders, until sold or released. */
  readonly held: number;
  readonly at: string;
}

/**
 * What a SKU's owner did for one order (key `hold:<SKU>:<attemptKey>`, on the SKU's partition):
 * a request, a release or a sale sent again finds it and changes nothing.
 */
export interface SkuHold {
  readonly kind: 'hold';
  readonly status: 'held' | 'refused' | 'released' | 'sold';
  readonly quantity: number;
  readonly at: string;
}

/** A restock applied (key `restock:<SKU>:<restockId>`): the same restock id adds nothing again. */
export interface Restock {
  readonly kind: 'restock';
  readonly quantity: number;
  readonly at: string;
}

export type ReservationStatus = 'reserving' | 'reserved' | 'rejected' | 'released' | 'sold';

/** The SKU owner's answer for one SKU of an order. */
export type SkuAnswer = Envelope<'stock.sku.reserved'>['payload'];

/** An order's reservation, kept on the saga's partition. */
export interface Reservation {
  readonly kind: 'order';
  readonly status: ReservationStatus;
  readonly items: readonly OrderItem[];
  /** While reserving: the SKUs whose owner has not answered yet, and the answers so far. */
  readonly awaiting?: readonly string[];
  readonly answers?: Readonly<Record<string, SkuAnswer>>;
  readonly lines?: readonly PricedLine[];
  readonly reason?: string;
  readonly at: string;
  /** While reserved: when the hold expires (epoch ms) unless the order is confirmed or released. */
  readonly heldUntil?: number;
}

export type StockRow = SkuUnits | SkuHold | Restock | Reservation;

export interface StockLevel {
  readonly sku: string;
  readonly price: number;
  readonly initial: number;
  readonly restocked: number;
  readonly available: number;
  readonly reserved: number;
  readonly sold: number;
}

export const skuKey = (sku: string) => `sku:${sku}`;
const holdKey = (sku: string, attempt: string) => `hold:${sku}:${attempt}`;
const restockKey = (sku: string, restockId: string) => `restock:${sku}:${restockId}`;

const isReservation = (row: StockRow | undefined): row is Reservation => row?.kind === 'order';

/** A row by key: the handler's view, or what is committed (for reads over HTTP). */
export type RowOf = (key: string) => StockRow | undefined;

/** What the owner of a SKU knows of it: its row, or its seed before the first change. */
export function unitsOf(sku: string, rowOf: RowOf, catalog: Catalog): SkuUnits | undefined {
  const row = rowOf(skuKey(sku));
  if (row?.kind === 'sku') return row;
  if (!Object.hasOwn(catalog, sku)) return undefined;
  const seed = catalog[sku]!;
  return {
    kind: 'sku',
    sku,
    price: seed.price,
    initial: seed.quantity,
    restocked: 0,
    sold: 0,
    held: 0,
    at: '',
  };
}

export function levelOf(units: SkuUnits): StockLevel {
  const { sku, price, initial, restocked, sold, held } = units;
  return { sku, price, initial, restocked, available: initial + restocked - sold - held, reserved: held, sold };
}

/** Every SKU's level (the catalogue's SKUs: a restock adds units, not SKUs). */
export function levels(rowOf: RowOf, catalog: Catalog): StockLevel[] {
  return Object.keys(catalog).map((sku) => levelOf(unitsOf(sku, rowOf, catalog)!));
}

/** Quantities per SKU of an order (an order may list a SKU twice). */
function demand(items: readonly OrderItem[]): Map<string, number> {
  const totals = new Map<string, number>();
  for (const { sku, quantity } of items) totals.set(sku, (totals.get(sku) ?? 0) + quantity);
  return totals;
}

/** The messages that give an order's units back to each of its SKUs' owners. */
function releaseAll(cause: Cause, skus: Iterable<string>, now: Date): Outgoing[] {
  return [...skus].map((sku) => keyedBy(reply(cause, 'stock.sku.release', { sku }, now), sku));
}

/**
 * How stock rows live and end: a reservation in the making or held, and a SKU's hold for an
 * order, are in flight; once final (sold, released, refused) they and the restocks are retired
 * after the retention; a SKU's units are kept for ever.
 */
export const stockLifecycle: RowLifecycle<StockRow> = {
  inFlight: (row) =>
    (row.kind === 'order' && (row.status === 'reserving' || row.status === 'reserved')) ||
    (row.kind === 'hold' && row.status === 'held'),
  endedAt: (row) => (row.kind === 'sku' || stockLifecycle.inFlight(row) ? undefined : Date.parse(row.at)),
};

/** How a reservation nobody settles is released: what the runtime's holdExpiry needs to know. */
export function reservationHold(holdMs: number): HoldRules<StockRow> {
  return {
    name: 'stock-reservation',
    holdMs,
    heldUntil: (r) => (isReservation(r) && r.status === 'reserved' ? (r.heldUntil ?? 0) : undefined),
    expire: (r, reason, now) => {
      const { heldUntil: _expired, ...rest } = r as Reservation;
      return { ...rest, status: 'released', reason, at: now.toISOString() };
    },
    giveBack: (key, r, _reason, now) => releaseAll(expiryCause(key), demand((r as Reservation).items).keys(), now),
    settledBy: ['order.confirmed'],
  };
}

export function createStockHandler(catalog: Catalog, holdMs: number) {
  /** The order side: one request per SKU out, all answers in, one reply to the saga. */
  const forOrder = (
    message: AnyEnvelope,
    run: string,
    existing: Reservation | undefined,
    now: Date,
  ): Decision<StockRow> => {
    const at = now.toISOString();
    switch (message.type) {
      case 'stock.check.request': {
        // Seen before (duplicate), or released before it arrived (the saga timed out): nothing to do.
        if (existing) return {};
        const wanted = demand(message.payload.items);
        return {
          put: [
            [
              run,
              {
                kind: 'order',
                status: 'reserving',
                items: message.payload.items,
                awaiting: [...wanted.keys()],
                answers: {},
                at,
              },
            ],
          ],
          send: [...wanted].map(([sku, quantity]) =>
            keyedBy(reply(message, 'stock.sku.reserve', { sku, quantity }, now), sku),
          ),
        };
      }

      case 'stock.sku.reserved': {
        const { sku } = message.payload;
        // Released while it was reserving: the release follows the request to each SKU's owner.
        if (existing?.status !== 'reserving' || !existing.awaiting?.includes(sku)) return {};
        const answers = { ...existing.answers, [sku]: message.payload };
        const awaiting = existing.awaiting.filter((s) => s !== sku);
        if (awaiting.length > 0) return { put: [[run, { ...existing, awaiting, answers, at }]] };
        return decide(message, run, existing, answers, now);
      }

      case 'stock.release': {
        const { reason } = message.payload;
        // Released already (a duplicate, or its hold expired), or never reserved: nothing to give back.
        if (existing?.status === 'released' || existing?.status === 'rejected') return {};
        if (existing?.status === 'sold')
          throw new Error(`order ${message.orderId} is sold; its stock cannot be released`);
        // With no reservation yet, a tombstone makes sure a late request reserves nothing.
        const items = existing?.items ?? [];
        const { heldUntil: _released, awaiting: _a, ...rest } = existing ?? { kind: 'order' as const, items };
        return {
          put: [[run, { ...rest, kind: 'order', items, status: 'released', reason, at }]],
          send: [
            ...releaseAll(message, demand(items).keys(), now),
            reply(
              message,
              'stock.released',
              { released: existing?.status === 'reserved' ? [...items] : [], reason },
              now,
            ),
          ],
        };
      }

      case 'order.confirmed': {
        if (existing?.status === 'sold') return {};
        if (existing?.status !== 'reserved') {
          throw new Error(`order ${message.orderId} confirmed but its stock is ${existing?.status ?? 'not reserved'}`);
        }
        const { heldUntil: _settled, ...sold } = existing;
        return {
          put: [[run, { ...sold, status: 'sold', at }]],
          send: [...demand(existing.items).keys()].map((sku) =>
            keyedBy(reply(message, 'stock.sku.sell', { sku }, now), sku),
          ),
        };
      }

      default:
        throw new Error(`stock does not handle ${message.type} for an order`);
    }
  };

  /** Every SKU answered: reserved all or nothing, and the saga told. */
  const decide = (
    message: AnyEnvelope,
    run: string,
    existing: Reservation,
    answers: Readonly<Record<string, SkuAnswer>>,
    now: Date,
  ): Decision<StockRow> => {
    const at = now.toISOString();
    const all = Object.values(answers);
    const unknown = all.filter((a) => a.result === 'unknown-sku').map((a) => a.sku);
    const missing = all.flatMap((a) =>
      a.result === 'insufficient' ? [{ sku: a.sku, requested: a.requested, available: a.available }] : [],
    );
    if (unknown.length === 0 && missing.length === 0) {
      const price = (sku: string) => (answers[sku] as Extract<SkuAnswer, { result: 'reserved' }>).unitPrice;
      const lines = existing.items.map(({ sku, quantity }) => ({ sku, quantity, unitPrice: price(sku) }));
      const total = lines.reduce((sum, l) => sum + l.quantity * l.unitPrice, 0);
      const { awaiting: _done, ...rest } = existing;
      return {
        put: [[run, { ...rest, answers, status: 'reserved', lines, at, heldUntil: now.getTime() + holdMs }]],
        send: [reply(message, 'stock.checked', { result: 'reserved', lines, total }, now)],
      };
    }
    const reason =
      unknown.length > 0
        ? `unknown SKU ${unknown.join(', ')}`
        : missing.map((m) => `${m.sku}: ${m.requested} requested, ${m.available} available`).join('; ');
    const held = all.filter((a) => a.result === 'reserved').map((a) => a.sku);
    const { awaiting: _done, ...rest } = existing;
    return {
      put: [[run, { ...rest, answers, status: 'rejected', reason, at }]],
      send: [
        ...releaseAll(message, held, now),
        reply(
          message,
          'stock.checked',
          unknown.length > 0
            ? { result: 'unknown-sku', reason, skus: unknown }
            : { result: 'insufficient', reason, missing },
          now,
        ),
      ],
    };
  };

  /** The SKU side: the one owner of the SKU's partition decides on its units. */
  const forSku = (message: AnyEnvelope, state: StateView<StockRow>, now: Date): Decision<StockRow> => {
    const at = now.toISOString();
    const { sku } = message.payload as { sku: string };
    const units = unitsOf(sku, (key) => state.get(key), catalog);
    const holdOfRun = holdKey(sku, attemptKey(message));
    const hold = state.get(holdOfRun) as SkuHold | undefined;
    const unitsRow = (next: SkuUnits): [string, StockRow] => [skuKey(sku), { ...next, at }];
    const holdRow = (status: SkuHold['status'], quantity: number): [string, StockRow] => [
      holdOfRun,
      { kind: 'hold', status, quantity, at },
    ];
    switch (message.type) {
      case 'stock.sku.reserve': {
        // Answered once already (a duplicate request): its answer went out with its row.
        if (hold) return {};
        const { quantity } = message.payload;
        const answer = (payload: SkuAnswer) =>
          keyedBy(reply(message, 'stock.sku.reserved', payload, now), message.orderId);
        if (!units) return { put: [holdRow('refused', quantity)], send: [answer({ sku, result: 'unknown-sku' })] };
        const { available } = levelOf(units);
        if (available < quantity) {
          return {
            put: [holdRow('refused', quantity)],
            send: [answer({ sku, result: 'insufficient', requested: quantity, available })],
          };
        }
        return {
          put: [unitsRow({ ...units, held: units.held + quantity }), holdRow('held', quantity)],
          send: [answer({ sku, result: 'reserved', unitPrice: units.price })],
        };
      }

      case 'stock.sku.release': {
        // Never asked: a tombstone, so that a request sent after all holds nothing.
        if (!hold) return { put: [holdRow('released', 0)] };
        if (hold.status !== 'held' || !units) return {};
        return { put: [unitsRow({ ...units, held: units.held - hold.quantity }), holdRow('released', hold.quantity)] };
      }

      case 'stock.sku.sell': {
        if (hold?.status !== 'held' || !units) return {};
        const sold = { ...units, held: units.held - hold.quantity, sold: units.sold + hold.quantity };
        return { put: [unitsRow(sold), holdRow('sold', hold.quantity)] };
      }

      case 'stock.sku.restock': {
        if (!units) throw new Error(`restock of ${sku}, which is not in the catalogue`);
        const { quantity, restockId } = message.payload;
        if (state.get(restockKey(sku, restockId))) return {};
        return {
          put: [
            unitsRow({ ...units, restocked: units.restocked + quantity }),
            [restockKey(sku, restockId), { kind: 'restock', quantity, at }],
          ],
        };
      }

      default:
        throw new Error(`stock does not handle ${message.type} for a SKU`);
    }
  };

  return (message: AnyEnvelope, state: StateView<StockRow>, { now }: HandlerContext): Decision<StockRow> => {
    if (ownerKeyOf(message.type) === 'sku') {
      return forSku(message, state, now);
    }
    const run = attemptKey(message);
    const existing = state.get(run);
    if (existing !== undefined && !isReservation(existing)) {
      throw new Error(`${run} names a SKU's row, not an order's`);
    }
    return forOrder(message, run, existing, now);
  };
}
