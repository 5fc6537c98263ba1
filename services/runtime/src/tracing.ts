/**
 * One order, one trace: spans through the OpenTelemetry API, and the W3C trace context carried
 * in the `traceparent` header of every Kafka message.
 *
 *   POST /orders (server) -> send order.placed (producer) -> process order.placed (consumer)
 *     -> saga orderSaga: reserveStock -> send stock.check.request -> process stock.check.request
 *        (Stock) -> send stock.checked -> process stock.checked (Order) -> saga ... -> ...
 *
 * A produced message carries its producer span; a consumed message is processed in a consumer
 * span whose parent is that producer span, in whichever service it was sent from. Span names
 * and attributes follow the OpenTelemetry messaging and HTTP conventions, plus `ordersaga.*`.
 *
 * When telemetry.ts starts no SDK (no exporter configured), it still registers W3C propagation:
 * the spans are then no-ops that hand the incoming context on unchanged, so the trace id still
 * goes from message to message.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Span,
} from '@opentelemetry/api';
import type { Envelope } from './envelope.js';

/**
 * Taken at each use, not once: the SDK registers through its own (CommonJS) copy of the API, and
 * a tracer taken from this (ESM) copy before the SDK started would stay a no-op.
 */
const tracer = () => trace.getTracer('ordersaga');

export const TRACEPARENT = 'traceparent';

/** A Kafka record, as the messaging conventions describe it. */
export interface KafkaRecord {
  /** The topic's name in the platform (the span's name says it). */
  readonly topic: string;
  /** The topic's name in Kafka (with the namespace prefix). */
  readonly destination: string;
  readonly key?: string | null;
  readonly partition?: number;
  readonly offset?: string;
  readonly consumerGroup?: string;
}

function kafkaAttributes(operation: 'send' | 'process', record: KafkaRecord): Attributes {
  return {
    'messaging.system': 'kafka',
    'messaging.operation.type': operation,
    'messaging.operation.name': operation,
    'messaging.destination.name': record.destination,
    ...(record.key ? { 'messaging.kafka.message.key': record.key } : {}),
    ...(record.partition !== undefined ? { 'messaging.destination.partition.id': String(record.partition) } : {}),
    ...(record.offset !== undefined ? { 'messaging.kafka.offset': Number(record.offset) } : {}),
    ...(record.consumerGroup ? { 'messaging.consumer.group.name': record.consumerGroup } : {}),
  };
}

/** What a span says about the saga message it sends or processes. */
export function envelopeAttributes(envelope: Pick<Envelope, 'id' | 'orderId' | 'correlationId'>): Attributes {
  return {
    'messaging.message.id': envelope.id,
    'ordersaga.order_id': envelope.orderId,
    'ordersaga.correlation_id': envelope.correlationId,
  };
}

/** Marks a span as failed, with the reason. */
export function markFailed(span: Span, error: unknown, attributes: Attributes = {}): void {
  const message = error instanceof Error ? error.message : String(error);
  span.setAttributes({ 'error.type': error instanceof Error ? error.name : 'Error', ...attributes });
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}

/** Processes a consumed record in a consumer span whose parent is the span in its headers. */
export function inConsumerSpan<R>(
  record: KafkaRecord,
  headers: Record<string, string>,
  fn: (span: Span) => Promise<R>,
): Promise<R> {
  const options = { kind: SpanKind.CONSUMER, attributes: kafkaAttributes('process', record) };
  const parent = propagation.extract(ROOT_CONTEXT, headers);
  return tracer().startActiveSpan(`process ${record.topic}`, options, parent, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      markFailed(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * A span of its own for one piece of work inside the processing of a message (a saga step):
 * child of the active span, parent of what is sent while it runs.
 */
export interface WorkSpan {
  readonly name: string;
  readonly attributes?: Attributes;
  /** What happened, in order: the span's events. */
  readonly events?: readonly string[];
  /** Why the work failed, when it did: the span's status is then ERROR. */
  readonly error?: string;
}

/** Runs `fn` in the span `work` describes, started at `startTime`. */
export function inWorkSpan<R>(work: WorkSpan, startTime: Date, fn: () => R): R {
  return tracer().startActiveSpan(work.name, { attributes: work.attributes, startTime }, (span) => {
    for (const event of work.events ?? []) span.addEvent(event, startTime);
    if (work.error) span.setStatus({ code: SpanStatusCode.ERROR, message: work.error });
    try {
      return fn();
    } catch (err) {
      markFailed(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/** Runs `fn` in the trace of `traceparent` (work that continues a trace later, from a timer). */
export function inTraceOf<R>(traceparent: string | undefined, fn: () => R): R {
  return context.with(propagation.extract(ROOT_CONTEXT, traceparent ? { [TRACEPARENT]: traceparent } : {}), fn);
}

/**
 * A producer span for a message about to be sent, child of the active span, and the headers
 * that carry it to the consumer. The caller ends it once the message is in Kafka.
 */
export function startProducerSpan(
  record: KafkaRecord,
  attributes: Attributes,
): { readonly span: Span; readonly headers: Record<string, string> } {
  const span = tracer().startSpan(`send ${record.topic}`, {
    kind: SpanKind.PRODUCER,
    attributes: { ...kafkaAttributes('send', record), ...attributes },
  });
  const headers: Record<string, string> = {};
  propagation.inject(trace.setSpan(context.active(), span), headers);
  return { span, headers };
}

/** Ends spans of messages sent (or not: `error`). */
export function endSpans(spans: Iterable<Span>, error?: unknown): void {
  for (const span of spans) {
    if (error !== undefined) markFailed(span, error);
    span.end();
  }
}

/** An HTTP request, as a server span describes it. */
export interface HttpRequest {
  readonly method: string;
  /** The route's pattern (`/orders/:id`), when a route matched. */
  readonly route: string | undefined;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly correlationId: string;
}

/** A server span for an HTTP request, continuing the caller's trace when it sends one. */
export function startServerSpan(request: HttpRequest): Span {
  const { method, route } = request;
  return tracer().startSpan(
    route ? `${method} ${route}` : method,
    {
      kind: SpanKind.SERVER,
      attributes: {
        'http.request.method': method,
        'url.path': request.path,
        ...(route ? { 'http.route': route } : {}),
        'ordersaga.correlation_id': request.correlationId,
      },
    },
    propagation.extract(ROOT_CONTEXT, request.headers),
  );
}

/** Runs `fn` with `span` active. */
export function withSpan<R>(span: Span, fn: () => R): R {
  return context.with(trace.setSpan(context.active(), span), fn);
}

/** The W3C traceparent of the active span, if there is one. */
export function activeTraceparent(): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier[TRACEPARENT];
}

/** A traceparent that starts a trace: for a saga started with no trace to continue and no SDK. */
export function newTraceparent(): string {
  return `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
}

/** The trace id of a traceparent header (`00-<trace id>-<span id>-<flags>`). */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  const parts = traceparent?.split('-');
  return parts && parts.length === 4 ? parts[1] : undefined;
}

/** The trace id of a span, when it has one (a no-op span with no trace to continue has not). */
export function spanTraceId(span: Span): string | undefined {
  const spanContext = span.spanContext();
  return trace.isSpanContextValid(spanContext) ? spanContext.traceId : undefined;
}
