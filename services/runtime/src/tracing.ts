/**
 * W3C trace context across Kafka: the consumer continues the producer's trace, and what it
 * sends carries the new span on. With no OpenTelemetry SDK registered the API is a no-op, so the
 * incoming `traceparent` is passed on unchanged and one order still keeps one trace id.
 */
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

/** The trace id of a traceparent header (`00-<trace id>-<span id>-<flags>`). */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  const parts = traceparent?.split('-');
  return parts && parts.length === 4 ? parts[1] : undefined;
}
