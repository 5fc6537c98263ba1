/**
 * How a saga is declared (in the manner of Eventuate Tram): a list of steps, each a command with
 * the reply that ends it and the compensation that undoes it. The order saga (order-saga.ts) is
 * written in these terms; the orchestrator's engine (services/order/src/saga/engine.ts) runs it.
 *
 * A saga's phases follow from its steps: PENDING before the first, each step's own phase while
 * it runs, COMPENSATING while a compensation's reply is awaited, then CONFIRMED or FAILED. The
 * Order API's schema, the SagaOrder CRD's phase enum and the controller's mapping all read them
 * from `phasesOf`.
 */
import { MAX_ATTEMPT, type AnyEnvelope, type Payload, type SagaTopic } from '@ordersaga/runtime';
import { attemptOf, type SagaState } from './order-state.js';

/** A message the saga sends: its topic is its type. */
export type Command = { [T in SagaTopic]: { readonly type: T; readonly payload: Payload<T> } }[SagaTopic];

export function command<T extends SagaTopic>(type: T, payload: Payload<T>): Command {
  return { type, payload } as Command;
}

export type StepOutcome =
  | { readonly ok: true; readonly update: Partial<SagaState>; readonly event: string }
  /** `kind` is one of the step's `failureKinds`; `reason` says it for people. */
  | { readonly ok: false; readonly kind: string; readonly reason: string };

export interface Compensation {
  readonly name: string;
  readonly command: (saga: SagaState, reason: string) => Command;
  /** Wait for this reply before going on; without it the compensation is fire-and-forget. */
  readonly awaitReply?: SagaTopic;
}

export interface Step {
  readonly name: string;
  /** The saga's phase while this step runs: upper case, one word, its own. */
  readonly phase: string;
  readonly invoke: (saga: SagaState, deadline: number) => Command;
  readonly reply: SagaTopic;
  readonly onReply: (saga: SagaState, reply: AnyEnvelope) => StepOutcome;
  /** Every `kind` its failures can have: metric labels and condition reasons, known in advance. */
  readonly failureKinds: readonly string[];
  /** Those of its failure kinds a retry may mend: what can change meanwhile (stock back, a top-up). */
  readonly retryableKinds?: readonly string[];
  readonly compensation?: Compensation;
}

export interface SagaDefinition {
  /** Names the saga's spans. */
  readonly name: string;
  /**
   * Which definition of the saga this is: a saga records the version it started on and ends on
   * it, whatever version new sagas start on meanwhile.
   */
  readonly version: number;
  readonly steps: readonly Step[];
  readonly confirmed: (saga: SagaState) => Command;
  readonly failed: (saga: SagaState) => Command;
}

/** The phases every saga has, whatever its steps. */
export const PENDING = 'PENDING';
export const COMPENSATING = 'COMPENSATING';
export const CONFIRMED = 'CONFIRMED';
export const FAILED = 'FAILED';

/** The failure kind of a step that timed out. */
export const TIMEOUT_KIND = 'timeout';
/** The failure kind of a saga cancelled before it ended. */
export const CANCELLED_KIND = 'cancelled';

/**
 * The phases of a saga's versions, in the order a saga goes through them (the newest version's
 * order, then the phases of steps only older ones have). A phase is one step's, in every version.
 */
export function phasesOf(...versions: readonly SagaDefinition[]): readonly string[] {
  const stepOfPhase = new Map<string, string>();
  for (const saga of versions) {
    const phases = [PENDING, ...saga.steps.map((step) => step.phase), COMPENSATING, CONFIRMED, FAILED];
    const twice = phases.find((phase, i) => phases.indexOf(phase) !== i);
    if (twice) throw new Error(`saga ${saga.name} v${saga.version}: phase ${twice} is used twice`);
    for (const step of saga.steps) {
      const other = stepOfPhase.get(step.phase);
      if (other !== undefined && other !== step.name)
        throw new Error(`saga ${saga.name}: phase ${step.phase} is both ${other}'s and ${step.name}'s`);
      stepOfPhase.set(step.phase, step.name);
    }
  }
  const newestFirst = [...versions].sort((a, b) => b.version - a.version);
  const stepPhases = [...new Set(newestFirst.flatMap((saga) => saga.steps.map((step) => step.phase)))];
  return [PENDING, ...stepPhases, COMPENSATING, CONFIRMED, FAILED];
}

/** Every failure kind a saga's versions can end with: their steps' kinds, the timeout and the cancel. */
export function failureKindsOf(...versions: readonly SagaDefinition[]): readonly string[] {
  const kinds = versions.flatMap((saga) => saga.steps.flatMap((step) => step.failureKinds));
  return [...new Set([...kinds, TIMEOUT_KIND, CANCELLED_KIND])];
}

/** The version a saga started on: 1 for those that recorded none (started before versions were). */
export const sagaVersionOf = (saga: Pick<SagaState, 'sagaVersion'>): number => saga.sagaVersion ?? 1;

export const isTerminal = (phase: string) => phase === CONFIRMED || phase === FAILED;

/**
 * Why a saga cannot be run again, or undefined when it can: only a FAILED one, for a failure a
 * retry may mend (a step's retryable kinds, or a timeout; never a cancel), at most MAX_ATTEMPT times.
 */
export function retryRefusal(definition: SagaDefinition, saga: SagaState): string | undefined {
  const { orderId, phase, failure } = saga;
  if (phase !== FAILED) return `order ${orderId} is ${phase.toLowerCase()}: only a failed order can be retried`;
  const kind = failure?.kind ?? 'unknown';
  const retryable = kind === TIMEOUT_KIND || definition.steps.some((step) => step.retryableKinds?.includes(kind));
  if (!retryable)
    return `order ${orderId} failed for good (${kind}: ${failure?.reason ?? 'no reason'}): a retry cannot mend it`;
  if (attemptOf(saga) >= MAX_ATTEMPT) return `order ${orderId} has run ${MAX_ATTEMPT} times, the most a saga may`;
  return undefined;
}
