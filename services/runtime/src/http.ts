import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from './context.js';
import { httpRequestDuration, registry } from './metrics.js';

/**
 * The HTTP server every service has: liveness (/healthz), readiness (/readyz: state loaded and
 * consuming) and Prometheus metrics (/metrics). Services add their routes as fastify plugins.
 */
export function createHttpServer(log: Logger, isReady: () => boolean): FastifyInstance {
  const app = Fastify({
    loggerInstance: log as unknown as FastifyBaseLogger,
    bodyLimit: 256 * 1024,
    // A request's id is its correlation id (taken from X-Correlation-Id when the caller has one),
    // so every log line of the request carries it, as every line of a saga message does.
    requestIdHeader: 'x-correlation-id',
    requestIdLogLabel: 'correlationId',
    genReqId: () => randomUUID(),
    // An unknown field is refused with a reason rather than silently dropped.
    ajv: { customOptions: { removeAdditional: false } },
  });
  // By route (the pattern, not the path: /orders/:id is one series), with its count as _count.
  app.addHook('onResponse', async (request, reply) => {
    httpRequestDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
  // Probes and scrapes come every few seconds: not worth an access-log line each.
  const quiet = { logLevel: 'warn' as const };
  app.get('/healthz', quiet, async () => ({ status: 'ok' }));
  app.get('/readyz', quiet, async (_req, reply) => {
    if (isReady()) return { status: 'ready' };
    return reply.code(503).send({ status: 'starting' });
  });
  app.get('/metrics', quiet, async (_req, reply) => {
    reply.type(registry.contentType);
    return registry.metrics();
  });
  return app;
}

/** The platform's 404: the same error shape as fastify's own 400s, with the reason. */
export function notFound(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(404).send({ statusCode: 404, error: 'Not Found', message });
}
