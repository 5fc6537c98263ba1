/** Exponential backoff with full jitter, capped: what every retry loop in the platform uses. */
export interface BackoffPolicy {
  readonly retries: number;
  readonly initialMs: number;
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { retries: 6, initialMs: 100, maxMs: 5_000 };

export function backoffDelay(attempt: number, policy: BackoffPolicy): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** attempt);
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** A failure that trying again cannot mend (an address refused, a redirect): thrown on at once. */
export class NotRetryable extends Error {
  override name = 'NotRetryable';
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `fn` until it succeeds, the policy is spent or it throws NotRetryable; `onRetry` sees
 * each failure. The last error is rethrown.
 */
export async function retry<T>(
  fn: (attempt: number) => Promise<T>,
  policy: BackoffPolicy,
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= policy.retries || error instanceof NotRetryable) throw error;
      const delay = backoffDelay(attempt, policy);
      onRetry?.(error, attempt + 1, delay);
      await sleep(delay);
    }
  }
}
