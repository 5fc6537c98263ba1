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

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `fn` until it succeeds or the policy is spent; `onRetry` sees each failure.
 * The last error is rethrown.
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
      if (attempt >= policy.retries) throw error;
      const delay = backoffDelay(attempt, policy);
      onRetry?.(error, attempt + 1, delay);
      await sleep(delay);
    }
  }
}
