import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Kafka, logLevel, type Admin, type LogEntry, type SASLOptions } from 'kafkajs';
import { ConfigError } from './config.js';
import './coordinator-cache.js';
import type { Logger } from './context.js';
import type { TopicDeclaration, TopicName } from './contract.js';

/** Maps logical topic names to the cluster's, with the platform namespace in front. */
export class TopicNamer {
  constructor(readonly namespace: string) {}

  physical(topic: TopicName): string {
    return `${this.namespace}${topic}`;
  }

  logical(physical: string): TopicName {
    if (!physical.startsWith(this.namespace))
      throw new Error(`topic ${physical} is outside namespace "${this.namespace}"`);
    return physical.slice(this.namespace.length) as TopicName;
  }

  /** Consumer groups and transactional ids live in the same namespace as the topics. */
  id(name: string): string {
    return `${this.namespace}${name}`;
  }
}

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** Errors a broker answers while its group or transaction coordinator starts, which kafkajs retries. */
const COORDINATOR_STARTING = [
  'The coordinator is loading',
  'The group coordinator is not available',
  'This is not the correct coordinator',
];
const isCoordinatorStarting = (text: string) =>
  COORDINATOR_STARTING.some((known) => text.startsWith(known) || text.includes(`KafkaJSProtocolError: ${known}`));

const readPem = (variable: string): string | undefined => {
  const file = process.env[variable];
  if (!file) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${variable}: cannot read ${file}: ${(err as Error).message}`);
  }
};

/**
 * How the client reaches a Strimzi listener: KAFKA_TLS=true for TLS, trusting the cluster CA in
 * KAFKA_TLS_CA_FILE (else the system's); KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE for mTLS (a
 * KafkaUser of type tls); KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD for SCRAM-SHA-512 (a
 * KafkaUser of type scram-sha-512). None of them: plaintext, as the dev broker is.
 */
export function kafkaSecurity(): { ssl?: ConnectionOptions | true; sasl?: SASLOptions } {
  const username = process.env.KAFKA_SASL_USERNAME;
  const password = process.env.KAFKA_SASL_PASSWORD;
  if (Boolean(username) !== Boolean(password)) {
    throw new ConfigError('KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD go together: set both or neither');
  }
  const tls = process.env.KAFKA_TLS === 'true';
  const ca = readPem('KAFKA_TLS_CA_FILE');
  const cert = readPem('KAFKA_TLS_CERT_FILE');
  const key = readPem('KAFKA_TLS_KEY_FILE');
  if (!tls && (ca || cert || key)) throw new ConfigError('KAFKA_TLS_* files are set but KAFKA_TLS is not "true"');
  if (Boolean(cert) !== Boolean(key)) throw new ConfigError('KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE go together');
  const ssl = ca || cert ? { ...(ca ? { ca: [ca] } : {}), ...(cert && key ? { cert, key } : {}) } : true;
  return {
    ...(tls ? { ssl } : {}),
    ...(username && password ? { sasl: { mechanism: 'scram-sha-512' as const, username, password } } : {}),
  };
}

/**
 * The first connection of a process: a broker that refuses the credentials is a configuration
 * error, said as such (kafkajs would only name the mechanism).
 */
export async function connectAdmin(admin: Admin): Promise<void> {
  try {
    await admin.connect();
  } catch (err) {
    if ((err as Error).name !== 'KafkaJSSASLAuthenticationError') throw err;
    throw new ConfigError(
      `Kafka refused the credentials of user "${process.env.KAFKA_SASL_USERNAME}" ` +
        `(KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD): ${(err as Error).message}`,
    );
  }
}

/**
 * A Kafka client, secured as kafkaSecurity says. A service rides out a broker that is restarting
 * (`retries`, about 30 s in all); a command line says sooner that it cannot reach one.
 */
export function createKafka(clientId: string, brokers: string[], log: Logger, { retries = 10 } = {}): Kafka {
  return new Kafka({
    clientId,
    brokers,
    ...kafkaSecurity(),
    logLevel: logLevel.WARN,
    retry: { initialRetryTime: 100, retries, maxRetryTime: 5_000 },
    logCreator: () => {
      // A consumer that gave up waiting for a coordinator restarts itself: that restart is expected.
      let restartExpected = false;
      return ({ namespace, level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        if (isCoordinatorStarting(String(entry.error ?? message))) {
          // A fresh (or restarted) broker loads its coordinators: kafkajs retries, nothing failed.
          restartExpected ||= message.startsWith('Crash: ');
          log.info({ kafkajs: namespace, ...rest }, 'waiting for the Kafka coordinator (normal while a broker starts)');
          return;
        }
        if (restartExpected && message.startsWith('Restarting the consumer')) {
          restartExpected = false;
          log.info({ kafkajs: namespace, ...rest }, message);
          return;
        }
        log[LEVELS[level] ?? 'info']({ kafkajs: namespace, ...rest }, message);
      };
    },
  });
}

/**
 * Creates the topics that are missing (never alters existing ones). Safe to run from every
 * service at start-up and from several at once.
 */
export async function ensureTopics(
  admin: Admin,
  namer: TopicNamer,
  topics: readonly TopicDeclaration[],
  replicationFactor: number,
  log: Logger,
): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(namer.physical(t.name)));
  if (missing.length === 0) return;
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((t) => ({
        topic: namer.physical(t.name),
        numPartitions: t.partitions,
        replicationFactor,
        configEntries: Object.entries(t.config).map(([name, value]) => ({ name, value })),
      })),
    });
  } catch (err) {
    // Another service created some of them at the same moment: fine, as long as they exist now.
    const now = new Set(await admin.listTopics());
    const stillMissing = missing.filter((t) => !now.has(namer.physical(t.name)));
    if (stillMissing.length > 0) throw err;
  }
  log.info({ created: missing.map((t) => t.name) }, `created ${missing.length} topics`);
}
