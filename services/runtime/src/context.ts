import { AsyncLocalStorage } from 'node:async_hooks';
import { pino, type Logger } from 'pino';

/** What identifies the work in progress: put in every log line written while it runs. */
export interface WorkContext {
  correlationId?: string;
  orderId?: string;
  messageId?: string;
  traceId?: string;
}

const storage = new AsyncLocalStorage<WorkContext>();

export function withContext<R>(context: WorkContext, fn: () => R): R {
  return storage.run({ ...storage.getStore(), ...context }, fn);
}

export function currentContext(): WorkContext {
  return storage.getStore() ?? {};
}

/** A JSON logger whose every line carries the correlationId (and order, trace) of the work at hand. */
export function createLogger(service: string): Logger {
  return pino({
    name: service,
    level: process.env.LOG_LEVEL ?? 'info',
    base: { service, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    mixin: () => ({ ...currentContext() }),
  });
}

export type { Logger };
