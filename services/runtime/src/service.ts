import type { FastifyInstance } from 'fastify';
import { envInt, runtimeConfig, type RuntimeConfig } from './config.js';
import { createLogger, type Logger } from './context.js';
import { createHttpServer } from './http.js';
import { createKafka, ensureTopics, TopicNamer } from './kafka.js';
import { Processor, type Handler, type ProcessorOptions, type Tick } from './processor.js';
import { Publisher } from './publisher.js';
import { DEFAULT_BACKOFF } from './retry.js';
import type { StateTable } from './state-table.js';
import { startTelemetry } from './telemetry.js';
import { HTTP_PORTS, type ServiceName, type StateTopic } from './topics.js';

/** What a service hands its HTTP routes. */
export interface ServiceRuntime<V> {
  readonly config: RuntimeConfig;
  readonly log: Logger;
  readonly table: StateTable<V>;
  /** Only for services that start sagas from HTTP requests. */
  readonly publisher: Publisher | undefined;
}

export interface ServiceDefinition<V> {
  readonly name: ServiceName;
  readonly stateTopic: StateTopic;
  readonly table: StateTable<V>;
  readonly handle: Handler<V>;
  readonly tick?: Tick<V>;
  readonly onCommitted?: ProcessorOptions<V>['onCommitted'];
  readonly publishes?: boolean;
  readonly routes?: (app: FastifyInstance, runtime: ServiceRuntime<V>) => Promise<void> | void;
}

export interface RunningService {
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * Starts a service: tracing, topics, state, consumer, HTTP; and stops it cleanly on SIGTERM/SIGINT
 * (in-flight batch finished and committed, group left, connections closed, last spans exported).
 */
export async function runService<V>(definition: ServiceDefinition<V>): Promise<RunningService> {
  const config = runtimeConfig(definition.name, HTTP_PORTS[definition.name]);
  const log = createLogger(definition.name);
  const telemetry = await startTelemetry(definition.name, config.instanceId, log);
  const namer = new TopicNamer(config.namespace);
  const kafka = createKafka(`${definition.name}-${config.instanceId}`, config.brokers, log);
  const admin = kafka.admin();
  await admin.connect();
  if (process.env.CREATE_TOPICS !== 'false') {
    await ensureTopics(admin, namer, config, log);
  }

  const processor = new Processor({
    service: definition.name,
    kafka,
    admin,
    namer,
    instanceId: config.instanceId,
    log,
    stateTopic: definition.stateTopic,
    table: definition.table,
    handle: definition.handle,
    tick: definition.tick,
    onCommitted: definition.onCommitted,
    backoff: {
      retries: envInt('RETRY_ATTEMPTS', DEFAULT_BACKOFF.retries),
      initialMs: envInt('RETRY_INITIAL_MS', DEFAULT_BACKOFF.initialMs),
      maxMs: envInt('RETRY_MAX_MS', DEFAULT_BACKOFF.maxMs),
    },
    sessionTimeoutMs: envInt('KAFKA_SESSION_TIMEOUT_MS', 10_000),
  });
  const publisher = definition.publishes ? new Publisher(kafka, namer) : undefined;
  await publisher?.connect();

  const app = createHttpServer(log, () => processor.ready);
  await app.register(async (scope) => definition.routes?.(scope, { config, log, table: definition.table, publisher }));
  const url = await app.listen({ port: config.httpPort, host: config.httpHost });

  await processor.start();
  log.info(
    { url, brokers: config.brokers, instanceId: config.instanceId },
    `${definition.name} service ready at ${url}`,
  );

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info('shutting down: finishing in-flight work');
      await app.close();
      await processor.stop();
      await publisher?.disconnect();
      await admin.disconnect();
      await telemetry.shutdown();
      log.info('stopped');
    })());

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      const force = setTimeout(() => process.exit(1), 30_000);
      force.unref();
      stop().then(
        () => process.exit(0),
        (err) => {
          log.error({ err }, 'unclean shutdown');
          process.exit(1);
        },
      );
    });
  }
  return { url, stop };
}

/** Entry point helper: logs a start-up failure and exits non-zero instead of crashing silently. */
export function main(start: () => Promise<unknown>): void {
  start().catch((err) => {
    createLogger('startup').fatal({ err }, 'service failed to start');
    process.exit(1);
  });
}
