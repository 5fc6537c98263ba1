/**
 * Billing: one payment row per order (`billing.state`, keyed by orderId); what a customer has
 * spent is derived from the rows, so credit stays exact after any replay.
 */
import {
  reply,
  type AnyEnvelope,
  type Decision,
  type HandlerContext,
  type StateTable,
  type StateView,
} from '@ordersaga/runtime';

/** Credit per customer, in cents. */
export type Accounts = Readonly<Record<string, number>>;

export type PaymentStatus = 'charged' | 'declined' | 'refunded' | 'cancelled';

export interface Payment {
  readonly status: PaymentStatus;
  readonly customerId: string;
  readonly amount: number;
  readonly paymentId?: string;
  readonly reason?: string;
  readonly at: string;
}

export interface AccountView {
  readonly customerId: string;
  readonly credit: number;
  readonly charged: number;
  readonly available: number;
}

/** Amount charged per customer, following every row change. */
export class Ledger {
  private readonly charged = new Map<string, number>();

  constructor(
    private readonly accounts: Accounts,
    table: StateTable<Payment>,
  ) {
    table.onChange((_orderId, previous, next) => {
      if (previous?.status === 'charged') this.add(previous.customerId, -previous.amount);
      if (next?.status === 'charged') this.add(next.customerId, next.amount);
    });
  }

  private add(customerId: string, amount: number): void {
    this.charged.set(customerId, (this.charged.get(customerId) ?? 0) + amount);
  }

  account(customerId: string): AccountView | undefined {
    const credit = this.accounts[customerId];
    if (credit === undefined) return undefined;
    const charged = this.charged.get(customerId) ?? 0;
    return { customerId, credit, charged, available: credit - charged };
  }

  all(): AccountView[] {
    return Object.keys(this.accounts).map((id) => this.account(id)!);
  }
}

export function createBillingHandler(ledger: Ledger) {
  return (message: AnyEnvelope, state: StateView<Payment>, { now }: HandlerContext): Decision<Payment> => {
    const existing = state.get(message.orderId);
    const at = now.toISOString();

    switch (message.type) {
      case 'payment.request': {
        // Seen before (duplicate), or cancelled before it arrived: never charge twice or late.
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
        return {
          put: [[message.orderId, { status: 'charged', customerId, amount, paymentId, at }]],
          send: [reply(message, 'payment.result', { result: 'approved', paymentId, amount }, now)],
        };
      }

      case 'payment.cancel': {
        const { reason } = message.payload;
        if (!existing) {
          // Cancelled before requested: the request, when it comes, finds this row and is refused.
          return { put: [[message.orderId, { status: 'cancelled', customerId: '', amount: 0, reason, at }]] };
        }
        if (existing.status !== 'charged') return {};
        return { put: [[message.orderId, { ...existing, status: 'refunded', reason, at }]] };
      }

      default:
        throw new Error(`billing does not handle ${message.type}`);
    }
  };
}
