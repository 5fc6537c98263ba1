/**
 * W3C trace context across Kafka: the consumer continues the producer's trace, and what it
 * sends carries the new span on. With no OpenTelemetry SDK registered the API is a no-op, so the
 * incoming `traceparent` is passed on unchanged and one order still keeps one trace id.
 */
import { randomBytes } from 'node:crypto';
import { context, propagation, ROOT_CONTEXT, SpanKind, trace, type Span } from '@opentelemetry/api';

const tracer = trace.getTracer('ordersaga');

export const TRACEPARENT = 'traceparent';

/** Runs `fn` in a consumer span that continues the trace found in `headers`. */
export function inConsumerSpan<R>(name: string, headers: Record<string, string>, fn: (span: Span) => R): R {
  const parent = propagation.extract(ROOT_CONTEXT, headers);
  return tracer.startActiveSpan(name, { kind: SpanKind.CONSUMER }, parent, (span) => {
    try {
      return fn(span);
    } finally {
      span.end();
    }
  });
}

/** Headers for a message produced in the current context; falls back to the incoming traceparent. */
export function traceHeaders(incomingTraceparent?: string): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  if (!carrier[TRACEPARENT] && incomingTraceparent) carrier[TRACEPARENT] = incomingTraceparent;
  return carrier;
}

const TRACEPARENT_FORMAT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * Headers for the first message of a saga: the caller's trace (its W3C `traceparent`) or the
 * active span's, else a new trace, so every order has a trace id even with no SDK configured.
 */
export function sagaTraceHeaders(callerTraceparent?: string): Record<string, string> {
  const incoming = callerTraceparent && TRACEPARENT_FORMAT.test(callerTraceparent) ? callerTraceparent : undefined;
  const headers = traceHeaders(incoming);
  if (!headers[TRACEPARENT])
    headers[TRACEPARENT] = `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
  return headers;
}

/** The trace id of a traceparent header (`00-<trace id>-<span id>-<flags>`). */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  const parts = traceparent?.split('-');
  return parts && parts.length === 4 ? parts[1] : undefined;
}
