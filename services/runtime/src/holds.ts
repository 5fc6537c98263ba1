/**
 * Holds: state rows that keep something aside (units of stock, an amount of credit) until the
 * work that asked for them makes them final or gives them back. A hold that nobody settles
 * within its hold time is released by the replica that owns its partition, once, and counted:
 * whatever asked for it (a bug, a replay, a foreign writer) can never keep it for ever.
 *
 * Expiry must never undo a settlement already on its way: the tick acts on a partition only once
 * every message committed to the `settledBy` topics of that partition has been processed (the
 * processor checks it against the topics' ends), so a confirmation that arrives late, after the
 * replica was down for longer than the hold time, still finds its hold.
 */
import { ConfigError, envInt } from './config.js';
import type { Logger } from './context.js';
import { holdsExpired } from './metrics.js';
import type { Decision, RowChange, Tick } from './decision.js';
import type { Outgoing } from './envelope.js';
import type { StateTable } from './state-table.js';
import type { SagaTopic } from './contract.js';

/**
 * How long a hold may stay unsettled by default: far longer than any saga takes (two steps and
 * a compensation at their default 15 s timeouts), short enough that nothing is held for long.
 */
export const DEFAULT_HOLD_TIME_MS = 10 * 60_000;

/** The hold time of this process: `HOLD_TIME_MS`, at least 1 ms. */
export function holdTimeMs(): number {
  const holdMs = envInt('HOLD_TIME_MS', DEFAULT_HOLD_TIME_MS);
  if (holdMs < 1) throw new ConfigError('environment variable HOLD_TIME_MS must be at least 1');
  return holdMs;
}

export interface HoldRules<V> {
  /** Names the hold in metrics and logs, e.g. `stock-reservation`. */
  readonly name: string;
  /** How long a hold may stay unsettled, from when it was taken. */
  readonly holdMs: number;
  /** Until when (epoch ms) the row holds something; undefined when it holds nothing. */
  readonly heldUntil: (value: V) => number | undefined;
  /** The row once its hold has expired (released, voided), with the reason given. */
  readonly expire: (value: V, reason: string, now: Date) => V;
  /**
   * What to send when it expires: to give the hold back where it is kept, when that is not the
   * row itself (the owner of a SKU's stock, of a customer's credit).
   */
  readonly giveBack?: (key: string, value: V, reason: string, now: Date) => readonly Outgoing[];
  /** Topics whose messages settle a hold: expiry waits until they are processed. */
  readonly settledBy: readonly SagaTopic[];
}

export interface HoldExpiry<V> {
  readonly tick: Tick<V>;
  /** Counts and logs the expiries a committed transaction made (wire it to `onCommitted`). */
  readonly observe: (changes: ReadonlyArray<RowChange<V>>) => void;
}

export function holdExpiry<V>(table: StateTable<V>, rules: HoldRules<V>, log: Logger): HoldExpiry<V> {
  // Rows that hold something, with the end of their hold: what the clock has to watch.
  const held = new Map<string, number>();
  table.onChange((key, _previous, next) => {
    const until = next === undefined ? undefined : rules.heldUntil(next);
    if (until === undefined) held.delete(key);
    else held.set(key, until);
  });
  // Keys whose expiry was staged: counted when (and if) the transaction commits.
  const expiring = new Set<string>();
  const reason = `${rules.name} hold expired after ${rules.holdMs} ms: nothing made it final or released it`;
  holdsExpired.inc({ hold: rules.name }, 0);

  const tick: Tick<V> = {
    everyMs: Math.min(5_000, Math.max(100, Math.floor(rules.holdMs / 10))),
    caughtUpOn: rules.settledBy,
    run: (state, partitions, now) => {
      const decisions: Decision<V>[] = [];
      for (const [key, until] of held) {
        if (until > now.getTime()) continue;
        const row = table.row(key);
        const value = state.get(key);
        if (!row || value === undefined || !partitions.has(row.partition)) continue;
        expiring.add(key);
        const giveBack = rules.giveBack?.(key, value, reason, now) ?? [];
        decisions.push({
          put: [[key, rules.expire(value, reason, now)]],
          ...(giveBack.length ? { send: giveBack } : {}),
        });
      }
      return decisions;
    },
  };

  const observe = (changes: ReadonlyArray<RowChange<V>>) => {
    for (const { key, after } of changes) {
      if (!expiring.delete(key) || (after !== undefined && rules.heldUntil(after) !== undefined)) continue;
      holdsExpired.inc({ hold: rules.name });
      log.warn({ orderId: key, hold: rules.name, holdMs: rules.holdMs }, `${reason}: released for ${key}`);
    }
  };
  return { tick, observe };
}
