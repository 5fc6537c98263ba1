/**
 * Billing: one payment row per order (`billing.state`, keyed by orderId); what a customer has
 * spent and has on hold is derived from the rows, so credit stays exact after any replay.
 *
 * A payment is authorized first (a hold on the customer's credit) and captured only by
 * `order.confirmed`. A `payment.cancel` voids the authorization, and one that is neither
 * captured nor voided within the hold time is voided by the clock (holdExpiry): a request no
 * saga follows up (a bug, a replay, a foreign writer) never takes money.
 */
import {
  reply,
  type AnyEnvelope,
  type Decision,
  type HandlerContext,
  type HoldRules,
  type StateTable,
  type StateView,
} from '@ordersaga/runtime';

/** Credit per customer, in cents. */
export type Accounts = Readonly<Record<string, number>>;

/**
 * authorized: held, not taken; captured: taken (final); declined: refused; voided: an
 * authorization given back (cancelled by the saga, or its hold expired); cancelled: the saga
 * cancelled before the request arrived, so the request, when it comes, is refused.
 */
export type PaymentStatus = 'authorized' | 'captured' | 'declined' | 'voided' | 'cancelled';

export interface Payment {
  readonly status: PaymentStatus;
  readonly customerId: string;
  readonly amount: number;
  readonly paymentId?: string;
  readonly reason?: string;
  readonly at: string;
  /** While authorized: when the hold expires (epoch ms) unless captured or voided first. */
  readonly heldUntil?: number;
}

export interface AccountView {
  readonly customerId: string;
  readonly credit: number;
  /** Authorized and not yet captured. */
  readonly held: number;
  /** Captured. */
  readonly charged: number;
  readonly available: number;
}

/** Amounts held and charged per customer, following every row change. */
export class Ledger {
  private readonly held = new Map<string, number>();
  private readonly charged = new Map<string, number>();

  constructor(
    private readonly accounts: Accounts,
    table: StateTable<Payment>,
  ) {
    table.onChange((_orderId, previous, next) => {
      if (previous) this.count(previous, -1);
      if (next) this.count(next, +1);
    });
  }

  private count(payment: Payment, sign: 1 | -1): void {
    const bucket =
      payment.status === 'authorized' ? this.held : payment.status === 'captured' ? this.charged : undefined;
    bucket?.set(payment.customerId, (bucket.get(payment.customerId) ?? 0) + sign * payment.amount);
  }

  account(customerId: string): AccountView | undefined {
    const credit = this.accounts[customerId];
    if (credit === undefined) return undefined;
    const held = this.held.get(customerId) ?? 0;
    const charged = this.charged.get(customerId) ?? 0;
    return { customerId, credit, held, charged, available: credit - held - charged };
  }

  all(): AccountView[] {
    return Object.keys(this.accounts).map((id) => this.account(id)!);
  }
}

/** How an authorization nobody settles is voided: what the runtime's holdExpiry needs to know. */
export function authorizationHold(holdMs: number): HoldRules<Payment> {
  return {
    name: 'payment-authorization',
    holdMs,
    heldUntil: (p) => (p.status === 'authorized' ? (p.heldUntil ?? 0) : undefined),
    expire: (p, reason, now) => settle(p, 'voided', now, reason),
    settledBy: ['order.confirmed'],
  };
}

/** The payment once captured or voided: it holds nothing any more. */
function settle(payment: Payment, status: 'captured' | 'voided', now: Date, reason?: string): Payment {
  const { heldUntil: _settled, ...rest } = payment;
  return { ...rest, status, ...(reason ? { reason } : {}), at: now.toISOString() };
}

export function createBillingHandler(ledger: Ledger, holdMs: number) {
  return (message: AnyEnvelope, state: StateView<Payment>, { now }: HandlerContext): Decision<Payment> => {
    const existing = state.get(message.orderId);
    const at = now.toISOString();

    switch (message.type) {
      case 'payment.request': {
        // Seen before (duplicate), or cancelled before it arrived: never authorize twice or late.
        if (existing) return {};
        const { customerId, amount, expiresAt } = message.payload;
        const decline = (reason: string): Decision<Payment> => ({
          put: [[message.orderId, { status: 'declined', customerId, amount, reason, at }]],
          send: [reply(message, 'payment.result', { result: 'declined', reason }, now)],
        });
        if (now.getTime() > expiresAt) return decline('payment request expired: the saga stopped waiting for it');
        const account = ledger.account(customerId);
        if (!account) return decline(`unknown customer ${customerId}`);
        if (account.available < amount) {
          return decline(`insufficient credit: ${amount} requested, ${account.available} available`);
        }
        const paymentId = `pay-${message.orderId}`;
        const heldUntil = now.getTime() + holdMs;
        return {
          put: [[message.orderId, { status: 'authorized', customerId, amount, paymentId, at, heldUntil }]],
          send: [reply(message, 'payment.result', { result: 'approved', paymentId, amount }, now)],
        };
      }

      case 'payment.cancel': {
        const { reason } = message.payload;
        if (!existing) {
          // Cancelled before requested: the request, when it comes, finds this row and is refused.
          return { put: [[message.orderId, { status: 'cancelled', customerId: '', amount: 0, reason, at }]] };
        }
        if (existing.status === 'captured') {
          throw new Error(`order ${message.orderId} is confirmed and its payment captured; it cannot be cancelled`);
        }
        if (existing.status !== 'authorized') return {};
        return { put: [[message.orderId, settle(existing, 'voided', now, reason)]] };
      }

      case 'order.confirmed': {
        if (existing?.status === 'captured') return {};
        if (existing?.status !== 'authorized') {
          throw new Error(
            `order ${message.orderId} confirmed but its payment is ${existing?.status ?? 'not authorized'}`,
          );
        }
        return { put: [[message.orderId, settle(existing, 'captured', now)]] };
      }

      default:
        throw new Error(`billing does not handle ${message.type}`);
    }
  };
}
