/**
 * kafkajs 2.2.4 asks a broker where a coordinator is (FindCoordinator) before every request it
 * sends to one, and keeps no answer: a transaction asks twice (to add its partitions, to end it),
 * which is two of its five round trips to the broker, and four of nine when it commits consumed
 * offsets to a group as well (sendOffsets). The Java client keeps the coordinator until a request to it
 * fails. So does this: an answer is kept for up to COORDINATOR_TTL_MS per client, coordinator
 * type and key (a transactional id, a group), and every answer is dropped as soon as a request
 * to a coordinator fails for a reason that says it is not (or no longer, or not yet) the
 * coordinator, or cannot be reached: kafkajs' own retry then asks again and finds the new one.
 *
 * Installed once, on kafkajs' Cluster and Broker (every client's connections to the brokers),
 * when this module is loaded: createKafka imports it.
 */
import { createRequire } from 'node:module';

/** How long a coordinator's address is kept at most. */
export const COORDINATOR_TTL_MS = 5_000;

/** The answers of a coordinator that is not one (any more, or yet). */
const NOT_THE_COORDINATOR = new Set([
  'NOT_COORDINATOR_FOR_GROUP',
  'GROUP_COORDINATOR_NOT_AVAILABLE',
  'GROUP_LOAD_IN_PROGRESS',
]);

/** The broker requests that go to a coordinator (of a transactional id, of a group). */
const COORDINATOR_REQUESTS = [
  'initProducerId',
  'addPartitionsToTxn',
  'addOffsetsToTxn',
  'endTxn',
  'txnOffsetCommit',
  'joinGroup',
  'syncGroup',
  'heartbeat',
  'leaveGroup',
  'offsetCommit',
  'offsetFetch',
  'describeGroups',
];

interface CoordinatorLookup {
  readonly groupId: string;
  readonly coordinatorType?: number;
}
type Method = (this: object, ...args: unknown[]) => Promise<unknown>;
type Prototype = Record<string, Method>;

/** Bumped whenever a coordinator turns out wrong or unreachable: every answer kept before is dropped. */
let generation = 0;
const kept = new WeakMap<object, Map<string, { at: number; generation: number; answer: Promise<unknown> }>>();

function install(): void {
  // kafkajs has no exports map: its internal Cluster and Broker are reachable by path.
  const load = createRequire(import.meta.url);
  const cluster = (load('kafkajs/src/cluster/index.js') as { prototype: Prototype }).prototype;
  const broker = (load('kafkajs/src/broker/index.js') as { prototype: Prototype }).prototype;

  const ask = cluster.findGroupCoordinatorMetadata;
  // Another kafkajs, other internals: left as it is (tests/coordinator-cache.test.ts says so).
  if (typeof ask !== 'function' || COORDINATOR_REQUESTS.some((name) => typeof broker[name] !== 'function')) return;
  cluster.findGroupCoordinatorMetadata = function (...args) {
    const lookup = args[0] as CoordinatorLookup;
    let answers = kept.get(this);
    if (!answers) kept.set(this, (answers = new Map()));
    const key = `${lookup.coordinatorType ?? 0}|${lookup.groupId}`;
    const known = answers.get(key);
    if (known && known.generation === generation && Date.now() - known.at < COORDINATOR_TTL_MS) return known.answer;
    const answer = ask.apply(this, args);
    answers.set(key, { at: Date.now(), generation, answer });
    answer.catch(() => generation++);
    return answer;
  };

  for (const name of COORDINATOR_REQUESTS) {
    const send = broker[name]!;
    broker[name] = async function (...args) {
      try {
        return await send.apply(this, args);
      } catch (err) {
        const { type, name: errorName } = err as { type?: string; name?: string };
        if ((type && NOT_THE_COORDINATOR.has(type)) || errorName?.startsWith('KafkaJSConnection')) generation++;
        throw err;
      }
    };
  }
}

install();
