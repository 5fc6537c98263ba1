/**
 * A real OpenTelemetry Collector (built by k8s-tests/scripts/build-tools.sh otelcol) that receives
 * the services' spans over OTLP/HTTP and writes them to a file as OTLP JSON, and what the tests
 * need to read them back: spans with their service, parents and attributes.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually, freePort } from './stack.js';

const VERSIONS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'k8s-tests', 'scripts', 'versions.env');

/** OTLP span kinds (opentelemetry/proto/trace/v1/trace.proto). */
export const SpanKind = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;
const STATUS_ERROR = 2;

export interface ExportedSpan {
  /** The resource's service.name. */
  readonly service: string;
  readonly resource: Readonly<Record<string, unknown>>;
  readonly traceId: string;
  readonly spanId: string;
  /** Empty for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: number;
  readonly start: bigint;
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly events: readonly string[];
  readonly error: string | undefined;
}

interface OtlpKeyValue {
  key: string;
  value: Record<string, unknown>;
}

function attributesOf(list: OtlpKeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) {
    const [type, v] = Object.entries(value)[0] ?? [];
    out[key] = type === 'intValue' ? Number(v) : v;
  }
  return out;
}

export class Collector {
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'ordersaga-otelcol-'));
  private readonly output = join(this.dir, 'traces.jsonl');
  private port = 0;

  /** Where the services send their spans (OTEL_EXPORTER_OTLP_ENDPOINT). */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const binary = execFileSync('bash', ['-c', `source "${VERSIONS}" && printf %s "$OTELCOL_BIN"`], {
      encoding: 'utf8',
    });
    if (!existsSync(binary)) {
      throw new Error(`${binary} not found: build it with bash k8s-tests/scripts/build-tools.sh otelcol`);
    }
    this.port = await freePort();
    const config = join(this.dir, 'config.yaml');
    // No batch processor: each request the services send is written as it comes.
    writeFileSync(
      config,
      [
        'receivers:',
        '  otlp:',
        '    protocols:',
        '      http:',
        `        endpoint: 127.0.0.1:${this.port}`,
        'exporters:',
        '  file:',
        `    path: ${this.output}`,
        '    flush_interval: 100ms',
        'service:',
        '  telemetry:',
        '    metrics:',
        '      level: none',
        '  pipelines:',
        '    traces:',
        '      receivers: [otlp]',
        '      exporters: [file]',
        '',
      ].join('\n'),
    );
    const log = createWriteStream(join(this.dir, 'otelcol.log'));
    const child = spawn(binary, ['--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.on('exit', resolve));
    const died = this.exited.then((code) => {
      throw new Error(`otelcol exited with code ${code}: ${readFileSync(join(this.dir, 'otelcol.log'), 'utf8')}`);
    });
    // Up once its receiver answers (405 to a GET).
    await Promise.race([
      eventually('otelcol to listen', async () =>
        (await fetch(this.endpoint).catch(() => undefined)) ? true : undefined,
      ),
      died,
    ]);
    died.catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.child?.kill('SIGTERM');
    await this.exited;
  }

  /** Every span written so far. */
  spans(): ExportedSpan[] {
    if (!existsSync(this.output)) return [];
    const spans: ExportedSpan[] = [];
    for (const line of readFileSync(this.output, 'utf8').split('\n')) {
      let request: any;
      try {
        request = JSON.parse(line);
      } catch {
        continue; // empty, or still being written
      }
      for (const resourceSpans of request.resourceSpans ?? []) {
        const resource = attributesOf(resourceSpans.resource?.attributes);
        for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
          for (const span of scopeSpans.spans ?? []) {
            spans.push({
              service: String(resource['service.name']),
              resource,
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId ?? '',
              name: span.name,
              kind: span.kind,
              start: BigInt(span.startTimeUnixNano),
              attributes: attributesOf(span.attributes),
              events: (span.events ?? []).map((e: { name: string }) => e.name),
              error: span.status?.code === STATUS_ERROR ? (span.status.message ?? '') : undefined,
            });
          }
        }
      }
    }
    return spans;
  }
}

/**
 * A trace as an indented tree, one span a line: `<service>: <name>`, `[ERROR: reason]` after a
 * failed span; siblings by service and name (spans of two processes start in either order). A
 * span whose parent is not in the trace is a root.
 */
export function renderTrace(spans: readonly ExportedSpan[]): string {
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map<string, ExportedSpan[]>();
  for (const span of spans) {
    const parent = ids.has(span.parentSpanId) ? span.parentSpanId : '';
    children.set(parent, [...(children.get(parent) ?? []), span]);
  }
  const lines: string[] = [];
  const walk = (parent: string, depth: number) => {
    const sorted = [...(children.get(parent) ?? [])].sort(
      (a, b) => a.service.localeCompare(b.service) || a.name.localeCompare(b.name) || Number(a.start - b.start),
    );
    for (const span of sorted) {
      const error = span.error === undefined ? '' : ` [ERROR: ${span.error}]`;
      lines.push(`${'  '.repeat(depth)}${span.service.replace(/^ordersaga-/, '')}: ${span.name}${error}`);
      walk(span.spanId, depth + 1);
    }
  };
  walk('', 0);
  return lines.join('\n');
}
