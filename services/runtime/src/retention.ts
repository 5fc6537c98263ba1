/**
 * Retention: a row whose story has ended (its `RowLifecycle.endedAt`) is retired `retentionMs`
 * after that: deleted, as a tombstone on the state topic, so neither the local store nor the
 * compacted topic grows with history. The store remembers when each key was retired (from the
 * tombstone, which the topic keeps as long) for as long again, so a read can say "retired"
 * rather than "never heard of", and then forgets that too.
 *
 * A message older than the retention is not acted on: the rows it would act on may be retired,
 * and a late duplicate must not be taken for new work. The processor dead-letters it (kind
 * `expired`, see processor.ts).
 */
import type { Logger } from './context.js';
import type { RowChange, Tick, TickDecision } from './decision.js';
import { rowsRetired } from './metrics.js';
import type { StateTable } from './state-table.js';

/** How many rows of one partition a tick retires at most: a backlog is worked off in steps. */
const RETIRED_PER_TICK = 500;

export interface Retention<V> {
  readonly tick: Tick<V>;
  /** Counts the retirements a committed transaction made (wire it to `onCommitted`). */
  readonly observe: (changes: ReadonlyArray<RowChange<V>>) => void;
}

export function retention<V>(table: StateTable<V>, retentionMs: number, topic: string, log: Logger): Retention<V> {
  rowsRetired.inc({ topic }, 0);
  const tick: Tick<V> = {
    everyMs: Math.min(60_000, Math.max(100, Math.floor(retentionMs / 20))),
    run: (_state, partitions, now) => {
      const decisions: TickDecision<V>[] = [];
      const horizon = now.getTime() - retentionMs;
      for (const partition of partitions) {
        table.forgetRetired(partition, horizon);
        const keys = table.endedBefore(partition, horizon, RETIRED_PER_TICK);
        if (keys.length > 0) decisions.push({ delete: keys });
      }
      return decisions;
    },
  };
  const observe = (changes: ReadonlyArray<RowChange<V>>) => {
    const retired = changes.filter((c) => c.after === undefined && c.before !== undefined).length;
    if (retired === 0) return;
    rowsRetired.inc({ topic }, retired);
    log.debug({ topic, retired }, `retired ${retired} rows of ${topic}`);
  };
  return { tick, observe };
}
