/**
 * The OpenTelemetry SDK of a process, configured by the standard OTEL_* variables only:
 * OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), OTEL_EXPORTER_OTLP_PROTOCOL,
 * OTEL_TRACES_EXPORTER, OTEL_TRACES_SAMPLER(_ARG), OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
 * OTEL_BSP_*, OTEL_PROPAGATORS, OTEL_SDK_DISABLED, OTEL_LOG_LEVEL.
 *
 * It exports traces only: metrics are Prometheus' (/metrics) and logs are JSON lines on stdout.
 * It starts only when an exporter is configured (and OTEL_SDK_DISABLED is not true): with none,
 * the SDK would send OTLP to localhost:4318 and log a connection error per batch. Then no span
 * is recorded, but the W3C trace context still goes from the request to every message of its
 * saga, so each order keeps one trace id in the logs and its state.
 */
import { context, diag, DiagLogLevel, propagation, type DiagLogFunction } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { Logger } from './context.js';

export interface Telemetry {
  /** Exports the spans still buffered, then stops. */
  shutdown(): Promise<void>;
}

const EXPORTER_VARIABLES = [
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  'OTEL_TRACES_EXPORTER',
];

function exportConfigured(env: NodeJS.ProcessEnv): boolean {
  return (
    env.OTEL_SDK_DISABLED?.trim().toLowerCase() !== 'true' &&
    env.OTEL_TRACES_EXPORTER?.trim() !== 'none' &&
    EXPORTER_VARIABLES.some((name) => env[name]?.trim())
  );
}

/**
 * Starts the SDK for `component` (service.name `ordersaga-<component>` unless OTEL_SERVICE_NAME
 * or OTEL_RESOURCE_ATTRIBUTES says otherwise). Call it first: spans started before are no-ops.
 */
export async function startTelemetry(component: string, instanceId: string, log: Logger): Promise<Telemetry> {
  if (!exportConfigured(process.env)) {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    return { shutdown: async () => undefined };
  }
  // Loaded only to export: it adds half a second and some 25 MB to a service's start.
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const { defaultResource, resourceFromAttributes } = await import('@opentelemetry/resources');
  // The SDK's "service" detector gives service.instance.id a random UUID, merged over the
  // resource below; OTEL_RESOURCE_ATTRIBUTES is merged over both, so the replica's id goes there,
  // unless it names one already.
  const attributes = process.env.OTEL_RESOURCE_ATTRIBUTES ?? '';
  if (!/(^|,)\s*service\.instance\.id=/.test(attributes)) {
    process.env.OTEL_RESOURCE_ATTRIBUTES = [`service.instance.id=${instanceId}`, attributes].filter(Boolean).join(',');
  }
  const sdk = new NodeSDK({
    // What is detected, OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are merged over this.
    resource: defaultResource().merge(resourceFromAttributes({ 'service.name': `ordersaga-${component}` })),
    metricReaders: [],
    logRecordProcessors: [],
  });
  // The SDK reports failed exports through its diagnostic logger, silent unless OTEL_LOG_LEVEL
  // asks for its console one: into the service's log instead.
  if (!process.env.OTEL_LOG_LEVEL) {
    const otelLog = log.child({ component: 'opentelemetry' });
    const line =
      (level: 'error' | 'warn' | 'info' | 'debug' | 'trace'): DiagLogFunction =>
      (message, ...args) =>
        otelLog[level]({ details: args.map(String) }, message);
    diag.setLogger(
      { error: line('error'), warn: line('warn'), info: line('info'), debug: line('debug'), verbose: line('trace') },
      DiagLogLevel.WARN,
    );
  }
  sdk.start();
  const { OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT } = process.env;
  log.info(
    {
      exporter: OTEL_TRACES_EXPORTER ?? 'otlp',
      endpoint: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? OTEL_EXPORTER_OTLP_ENDPOINT,
    },
    'exporting OpenTelemetry traces',
  );
  return {
    // Spans that cannot be sent make no shutdown unclean.
    shutdown: () => sdk.shutdown().catch((err) => log.warn({ err }, 'could not export the last spans')),
  };
}
