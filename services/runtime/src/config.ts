import type { Static, TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/** Reads configuration from the environment, failing loudly on a bad value. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function envString(name: string, fallback?: string): string {
  const value = process.env[name];
  if (value !== undefined && value !== '') return value;
  if (fallback !== undefined) return fallback;
  throw new ConfigError(`environment variable ${name} is required`);
}

export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new ConfigError(`environment variable ${name} must be a non-negative integer, got "${raw}"`);
  }
  return value;
}

/** `true` or `false`; anything else fails the start rather than meaning one of them. */
export function envBoolean(name: string, fallback: boolean): boolean {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw !== 'true' && raw !== 'false') {
    throw new ConfigError(`environment variable ${name} must be true or false, got "${raw}"`);
  }
  return raw === 'true';
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration: `7d`, `12h`, `30m`, `45s`, `500ms`, or a number of milliseconds; in ms. */
export function envDuration(name: string, fallbackMs: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallbackMs;
  const match = /^(\d+)\s*(ms|s|m|h|d)?$/.exec(raw.trim());
  const ms = match ? Number(match[1]) * DURATION_UNITS_MS[match[2] ?? 'ms']! : NaN;
  if (!Number.isSafeInteger(ms) || ms < 1) {
    throw new ConfigError(
      `environment variable ${name} must be a duration such as 7d, 12h, 30m, 45s or 500ms, got "${raw}"`,
    );
  }
  return ms;
}

/** A JSON value, checked against its schema: a typo in a catalogue fails the start, clearly. */
export function envJson<S extends TSchema>(name: string, schema: S, fallback: Static<S>): Static<S> {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new ConfigError(`environment variable ${name} is not valid JSON: ${(err as Error).message}`);
  }
  const errors = [...Value.Errors(schema, value)].slice(0, 3).map((e) => `${e.path || '/'} ${e.message}`);
  if (errors.length > 0) throw new ConfigError(`environment variable ${name} is invalid: ${errors.join('; ')}`);
  return value as Static<S>;
}

/** Settings every service shares. */
export interface RuntimeConfig {
  /** Comma-separated bootstrap servers. */
  readonly brokers: string[];
  /** Prepended to every topic, group and transactional id: several platforms can share a cluster. */
  readonly namespace: string;
  /** Names the replica (pod name): its Kafka client id, its traces' service.instance.id. */
  readonly instanceId: string;
  readonly httpPort: number;
  readonly httpHost: string;
  readonly partitions: number;
  readonly replicationFactor: number;
}

export function runtimeConfig(service: string, defaultPort: number): RuntimeConfig {
  return {
    brokers: envString('KAFKA_BROKERS', '127.0.0.1:9092')
      .split(',')
      .map((b) => b.trim())
      .filter(Boolean),
    namespace: envString('ORDERSAGA_NAMESPACE', ''),
    instanceId: envString('INSTANCE_ID', process.env.HOSTNAME ?? `${service}-0`),
    httpPort: envInt('PORT', defaultPort),
    httpHost: envString('HOST', '127.0.0.1'),
    partitions: envInt('TOPIC_PARTITIONS', 6),
    replicationFactor: envInt('TOPIC_REPLICATION_FACTOR', 1),
  };
}
