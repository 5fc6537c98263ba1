import { randomUUID } from 'node:crypto';
import type { Span } from '@opentelemetry/api';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { withContext, type Logger } from './context.js';
import { httpRequestDuration, registry } from './metrics.js';
import { markFailed, spanTraceId, startServerSpan, withSpan } from './tracing.js';

/** Probes and scrapes: every few seconds, worth neither an access-log line nor a trace. */
const ROUTINE = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * The HTTP server every service has: liveness (/healthz), readiness (/readyz: state loaded and
 * consuming) and Prometheus metrics (/metrics). Services add their routes as fastify plugins.
 * Each other request is traced in a server span that continues the caller's `traceparent`, and
 * its handler's log lines carry the trace id.
 */
export function createHttpServer(
  log: Logger,
  isReady: () => boolean,
  /** What the service is doing while not ready (restoring its state: how far), for /readyz. */
  progress?: () => unknown,
): FastifyInstance {
  const app = Fastify({
    loggerInstance: log as unknown as FastifyBaseLogger,
    bodyLimit: 256 * 1024,
    // A request's id is its correlation id (taken from X-Correlation-Id when the caller has one),
    // so every log line of the request carries it, as every line of a saga message does.
    requestIdHeader: 'x-correlation-id',
    logController: new LogController({ requestIdLogLabel: 'correlationId' }),
    genReqId: () => randomUUID(),
    // An unknown field is refused with a reason rather than silently dropped, and a value of the
    // wrong type ("3" for 3) is refused rather than coerced: what is stored is what was sent.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  });
  // By route (the pattern, not the path: /orders/:id is one series), with its count as _count.
  app.addHook('onResponse', async (request, reply) => {
    httpRequestDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
  const spans = new WeakMap<FastifyRequest, Span>();
  app.addHook('onRequest', async (request) => {
    const route = request.routeOptions.url;
    if (route && ROUTINE.has(route)) return;
    const { method, headers, id: correlationId } = request;
    spans.set(request, startServerSpan({ method, route, path: request.url.split('?')[0]!, headers, correlationId }));
  });
  // After the body is parsed (which runs outside the request's async context), so that the
  // handler and all it awaits run with the span active, and log with its trace id (the
  // correlation id is the request logger's already).
  app.addHook('preHandler', (request, _reply, done) => {
    const span = spans.get(request);
    if (!span) return done();
    withSpan(span, () => withContext({ traceId: spanTraceId(span) }, done));
  });
  app.addHook('onResponse', async (request, reply) => {
    const span = spans.get(request);
    if (!span) return;
    span.setAttribute('http.response.status_code', reply.statusCode);
    if (reply.statusCode >= 500) {
      markFailed(span, new Error(`HTTP ${reply.statusCode}`), { 'error.type': String(reply.statusCode) });
    }
    span.end();
  });
  app.addHook('onRequestAbort', async (request) => {
    const span = spans.get(request);
    if (!span) return;
    markFailed(span, new Error('request aborted by the client'));
    span.end();
  });
  const quiet = { logLevel: 'warn' as const };
  app.get('/healthz', quiet, async () => ({ status: 'ok' }));
  app.get('/readyz', quiet, async (_req, reply) => {
    if (isReady()) return { status: 'ready' };
    return reply.code(503).send({ status: 'starting', ...(progress ? { progress: progress() } : {}) });
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

/** The platform's 409: the request is sound, but what it asks for cannot be done to the thing as it is. */
export function conflict(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(409).send({ statusCode: 409, error: 'Conflict', message });
}

/** The platform's 503: not now, with the reason, and when to ask again. */
export function unavailable(reply: FastifyReply, message: string, retryAfterSeconds: number): FastifyReply {
  return reply
    .code(503)
    .header('retry-after', String(retryAfterSeconds))
    .send({ statusCode: 503, error: 'Service Unavailable', message: `${message}; retry in ${retryAfterSeconds} s` });
}
