/**
 * Billing: a customer's credit is decided by its one owner, whatever the number of replicas.
 *
 * Two kinds of rows share `billing.state`, each on the partition of the messages that change it:
 *
 * - per customer (key `customer:<id>`, on the partition of the customerId): its credit — seeded,
 *   topped up, charged, held — beside a row per order it answered (`hold:<id>:<attemptKey>`) and
 *   per top-up. Only the replica that owns that partition decides on them (the `billing.credit.*` topics are keyed by customerId), so
 *   two orders can never both spend the last euro: available = credit + toppedUp - charged -
 *   held, never below zero.
 * - per order (key its `attemptKey`: the orderId, `<orderId>@2` for a retry; on the saga's
 *   partition): the payment, as the saga knows it. A `payment.request` goes to the customer's
 *   owner; its answer becomes the `payment.result`. Whether a customer is known (saga v2) needs
 *   no row: accounts are seeded, so any replica answers.
 *
 * A payment is authorized first (a hold on the customer's credit) and captured only by
 * `order.confirmed`. A `payment.cancel` voids the authorization, and one that is neither
 * captured nor voided within the hold time is voided by the clock (holdExpiry): a request no
 * saga follows up (a bug, a replay, a foreign writer) never takes money.
 */
import { attemptKey, attemptOf, expiryCause, ownerKeyOf } from '@ordersaga/contracts';
import {
  keyedBy,
  reply,
  type AnyEnvelope,
  type Decision,
  type Envelope,
  type HandlerContext,
  type HoldRules,
  type RowLifecycle,
  type StateView,
} from '@ordersaga/runtime';

/** Credit per customer, in cents. */
export type Accounts = Readonly<Record<string, number>>;

/** A customer's credit, kept by its owner: a row of constant size, whatever the history. */
export interface CustomerCredit {
  readonly kind: 'customer';
  readonly customerId: string;
  readonly credit: number;
  readonly toppedUp: number;
  readonly charged: number;
  /** Authorized for orders, until captured or voided. */
  readonly held: number;
  readonly at: string;
}

/**
 * What a customer's owner did for one order (key `hold:<customerId>:<attemptKey>`, on the
 * customer's partition): a request, a void or a capture sent again finds it and changes nothing.
 */
export interface CreditHold {
  readonly kind: 'hold';
  readonly status: 'held' | 'refused' | 'voided' | 'captured';
  readonly amount: number;
  readonly at: string;
}

/** A top-up applied (key `top-up:<customerId>:<topUpId>`): the same id adds nothing again. */
export interface TopUp {
  readonly kind: 'top-up';
  readonly amount: number;
  readonly at: string;
}

/**
 * authorizing: asked of the customer's owner; authorized: held, not taken; captured: taken
 * (final); declined: refused; voided: an authorization given back (cancelled by the saga, or
 * its hold expired); cancelled: the saga cancelled before the request arrived, so the request,
 * when it comes, is refused.
 */
export type PaymentStatus = 'authorizing' | 'authorized' | 'captured' | 'declined' | 'voided' | 'cancelled';

export interface Payment {
  readonly kind: 'order';
  readonly status: PaymentStatus;
  readonly customerId: string;
  readonly amount: number;
  readonly paymentId?: string;
  readonly reason?: string;
  readonly at: string;
  /** While authorized: when the hold expires (epoch ms) unless captured or voided first. */
  readonly heldUntil?: number;
}

export type BillingRow = CustomerCredit | CreditHold | TopUp | Payment;

export interface AccountView {
  readonly customerId: string;
  readonly credit: number;
  readonly toppedUp: number;
  /** Authorized and not yet captured. */
  readonly held: number;
  /** Captured. */
  readonly charged: number;
  readonly available: number;
}

export const customerKey = (customerId: string) => `customer:${customerId}`;
const holdKey = (customerId: string, attempt: string) => `hold:${customerId}:${attempt}`;

/** The id of the payment of one run of an order's saga (an `Id`: no '@'). */
const paymentIdOf = (run: { orderId: string; attempt?: number }) =>
  attemptOf(run) === 1 ? `pay-${run.orderId}` : `pay-${run.orderId}.${attemptOf(run)}`;
const topUpKey = (customerId: string, topUpId: string) => `top-up:${customerId}:${topUpId}`;

/** A row by key: the handler's view, or what is committed (for reads over HTTP). */
export type RowOf = (key: string) => BillingRow | undefined;

/** What the owner of a customer knows of its credit: its row, or its seed before the first change. */
export function creditOf(customerId: string, rowOf: RowOf, accounts: Accounts): CustomerCredit | undefined {
  const row = rowOf(customerKey(customerId));
  if (row?.kind === 'customer') return row;
  if (!Object.hasOwn(accounts, customerId)) return undefined;
  return {
    kind: 'customer',
    customerId,
    credit: accounts[customerId]!,
    toppedUp: 0,
    charged: 0,
    held: 0,
    at: '',
  };
}

export function accountOf(row: CustomerCredit): AccountView {
  const { customerId, credit, toppedUp, charged, held } = row;
  return { customerId, credit, toppedUp, held, charged, available: credit + toppedUp - charged - held };
}

/** Every seeded customer's account (a top-up adds credit, not customers). */
export function accounts(rowOf: RowOf, seeds: Accounts): AccountView[] {
  return Object.keys(seeds).map((id) => accountOf(creditOf(id, rowOf, seeds)!));
}

const isPayment = (row: BillingRow | undefined): row is Payment => row?.kind === 'order';

/**
 * How billing rows live and end: a payment being authorized or authorized, and a customer's hold
 * for an order, are in flight; once final (captured, voided, declined, refused) they and the
 * top-ups are retired after the retention; a customer's credit is kept for ever.
 */
export const billingLifecycle: RowLifecycle<BillingRow> = {
  inFlight: (row) =>
    (row.kind === 'order' && (row.status === 'authorizing' || row.status === 'authorized')) ||
    (row.kind === 'hold' && row.status === 'held'),
  endedAt: (row) => (row.kind === 'customer' || billingLifecycle.inFlight(row) ? undefined : Date.parse(row.at)),
};

/** How an authorization nobody settles is voided: what the runtime's holdExpiry needs to know. */
export function authorizationHold(holdMs: number): HoldRules<BillingRow> {
  return {
    name: 'payment-authorization',
    holdMs,
    heldUntil: (p) => (isPayment(p) && p.status === 'authorized' ? (p.heldUntil ?? 0) : undefined),
    expire: (p, reason, now) => settle(p as Payment, 'voided', now, reason),
    giveBack: (key, p, _reason, now) => [
      keyedBy(
        reply(expiryCause(key), 'billing.credit.void', { customerId: (p as Payment).customerId }, now),
        (p as Payment).customerId,
      ),
    ],
    settledBy: ['order.confirmed'],
  };
}

/** The payment once captured or voided: it holds nothing any more. */
function settle(payment: Payment, status: 'captured' | 'voided', now: Date, reason?: string): Payment {
  const { heldUntil: _settled, ...rest } = payment;
  return { ...rest, status, ...(reason ? { reason } : {}), at: now.toISOString() };
}

type Answer = Envelope<'billing.credit.authorized'>['payload'];

export function createBillingHandler(seeds: Accounts, holdMs: number) {
  /** The order side: the request to the customer's owner out, its answer to the saga. */
  const forOrder = (
    message: AnyEnvelope,
    run: string,
    existing: Payment | undefined,
    now: Date,
  ): Decision<BillingRow> => {
    const at = now.toISOString();
    const toCustomer = (type: 'billing.credit.void' | 'billing.credit.capture', customerId: string) =>
      keyedBy(reply(message, type, { customerId }, now), customerId);
    switch (message.type) {
      case 'customer.check.request': {
        // Accounts are seeded, never created by a message: any replica knows, and asking twice answers twice.
        const { customerId } = message.payload;
        const known = Object.hasOwn(seeds, customerId);
        return {
          send: [
            reply(
              message,
              'customer.checked',
              known ? { result: 'known' } : { result: 'unknown', reason: `unknown customer ${customerId}` },
              now,
            ),
          ],
        };
      }

      case 'payment.request': {
        // Seen before (duplicate), or cancelled before it arrived: never authorize twice or late.
        if (existing) return {};
        const { customerId, amount, expiresAt } = message.payload;
        if (now.getTime() > expiresAt) {
          const reason = 'payment request expired: the saga stopped waiting for it';
          return {
            put: [[run, { kind: 'order', status: 'declined', customerId, amount, reason, at }]],
            send: [reply(message, 'payment.result', { result: 'declined', reason }, now)],
          };
        }
        return {
          put: [[run, { kind: 'order', status: 'authorizing', customerId, amount, at }]],
          send: [keyedBy(reply(message, 'billing.credit.authorize', { customerId, amount }, now), customerId)],
        };
      }

      case 'billing.credit.authorized': {
        // Voided while it was authorizing: the void follows the request to the customer's owner.
        if (existing?.status !== 'authorizing') return {};
        const answer: Answer = message.payload;
        if (answer.result === 'declined') {
          return {
            put: [[run, { ...existing, status: 'declined', reason: answer.reason, at }]],
            send: [reply(message, 'payment.result', answer, now)],
          };
        }
        return {
          put: [
            [
              run,
              { ...existing, status: 'authorized', paymentId: answer.paymentId, at, heldUntil: now.getTime() + holdMs },
            ],
          ],
          send: [reply(message, 'payment.result', answer, now)],
        };
      }

      case 'payment.cancel': {
        const { reason } = message.payload;
        if (!existing) {
          // Cancelled before requested: the request, when it comes, finds this row and is refused.
          return {
            put: [[run, { kind: 'order', status: 'cancelled', customerId: '', amount: 0, reason, at }]],
          };
        }
        if (existing.status === 'captured') {
          throw new Error(`order ${message.orderId} is confirmed and its payment captured; it cannot be cancelled`);
        }
        if (existing.status !== 'authorized' && existing.status !== 'authorizing') return {};
        return {
          put: [[run, settle(existing, 'voided', now, reason)]],
          send: [toCustomer('billing.credit.void', existing.customerId)],
        };
      }

      case 'order.confirmed': {
        if (existing?.status === 'captured') return {};
        if (existing?.status !== 'authorized') {
          throw new Error(
            `order ${message.orderId} confirmed but its payment is ${existing?.status ?? 'not authorized'}`,
          );
        }
        return {
          put: [[run, settle(existing, 'captured', now)]],
          send: [toCustomer('billing.credit.capture', existing.customerId)],
        };
      }

      default:
        throw new Error(`billing does not handle ${message.type} for an order`);
    }
  };

  /** The customer side: the one owner of the customer's partition decides on its credit. */
  const forCustomer = (message: AnyEnvelope, state: StateView<BillingRow>, now: Date): Decision<BillingRow> => {
    const at = now.toISOString();
    const { customerId } = message.payload as { customerId: string };
    const credit = creditOf(customerId, (key) => state.get(key), seeds);
    const holdOfRun = holdKey(customerId, attemptKey(message));
    const hold = state.get(holdOfRun) as CreditHold | undefined;
    const creditRow = (next: CustomerCredit): [string, BillingRow] => [customerKey(customerId), { ...next, at }];
    const holdRow = (status: CreditHold['status'], amount: number): [string, BillingRow] => [
      holdOfRun,
      { kind: 'hold', status, amount, at },
    ];
    switch (message.type) {
      case 'billing.credit.authorize': {
        // Answered once already (a duplicate request): its answer went out with its row.
        if (hold) return {};
        const { amount } = message.payload;
        const answer = (payload: Answer) =>
          keyedBy(reply(message, 'billing.credit.authorized', payload, now), message.orderId);
        const refuse = (reason: string): Decision<BillingRow> => ({
          put: [holdRow('refused', amount)],
          send: [answer({ result: 'declined', reason })],
        });
        if (!credit) return refuse(`unknown customer ${customerId}`);
        const { available } = accountOf(credit);
        if (available < amount) return refuse(`insufficient credit: ${amount} requested, ${available} available`);
        return {
          put: [creditRow({ ...credit, held: credit.held + amount }), holdRow('held', amount)],
          send: [answer({ result: 'approved', paymentId: paymentIdOf(message), amount })],
        };
      }

      case 'billing.credit.void': {
        // Never asked: a tombstone, so that a request sent after all holds nothing.
        if (!hold) return { put: [holdRow('voided', 0)] };
        if (hold.status !== 'held' || !credit) return {};
        return { put: [creditRow({ ...credit, held: credit.held - hold.amount }), holdRow('voided', hold.amount)] };
      }

      case 'billing.credit.capture': {
        if (hold?.status !== 'held' || !credit) return {};
        const captured = { ...credit, held: credit.held - hold.amount, charged: credit.charged + hold.amount };
        return { put: [creditRow(captured), holdRow('captured', hold.amount)] };
      }

      case 'billing.credit.top-up': {
        if (!credit) throw new Error(`top-up of ${customerId}, who has no account`);
        const { amount, topUpId } = message.payload;
        if (state.get(topUpKey(customerId, topUpId))) return {};
        return {
          put: [
            creditRow({ ...credit, toppedUp: credit.toppedUp + amount }),
            [topUpKey(customerId, topUpId), { kind: 'top-up', amount, at }],
          ],
        };
      }

      default:
        throw new Error(`billing does not handle ${message.type} for a customer`);
    }
  };

  return (message: AnyEnvelope, state: StateView<BillingRow>, { now }: HandlerContext): Decision<BillingRow> => {
    if (ownerKeyOf(message.type) === 'customerId') {
      return forCustomer(message, state, now);
    }
    const run = attemptKey(message);
    const existing = state.get(run);
    if (existing !== undefined && !isPayment(existing)) {
      throw new Error(`${run} names a customer's row, not an order's`);
    }
    return forOrder(message, run, existing, now);
  };
}
