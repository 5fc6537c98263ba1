// Types of scripts/prometheus.js, for the tests that start Prometheus with it.
export interface PrometheusTarget {
  readonly component: string;
  /** host:port of its /metrics. */
  readonly address: string;
  readonly instance?: string;
}

export interface RunningPrometheus {
  readonly url: string;
  readonly configFile: string;
  readonly logFile: string;
  stop(): Promise<void>;
  readonly exited: Promise<number | string | null>;
}

export function prometheusConfig(options: {
  targets: readonly PrometheusTarget[];
  namespace: string;
  interval?: string;
  rulesFile: string;
}): string;

export function startPrometheus(options: {
  targets: readonly PrometheusTarget[];
  namespace: string;
  interval?: string;
  port: number;
  dir?: string;
}): Promise<RunningPrometheus>;

export function queryPrometheus(
  url: string,
  query: string,
  options?: { time?: number; range?: { start: number; end: number; step: number } },
): Promise<{ resultType: string; result: any[] }>;
