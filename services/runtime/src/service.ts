import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { envDuration, envInt, envString, runtimeConfig, type RuntimeConfig } from './config.js';
import { createLogger, type Logger } from './context.js';
import { holdExpiry, type HoldRules } from './holds.js';
import { accessConfig, apiAccess } from './api-access.js';
import { createHttpServer, unavailable } from './http.js';
import { ownerRouting, type OwnerRouting } from './http-routing.js';
import { connectAdmin, createKafka, ensureTopics, TopicNamer } from './kafka.js';
import type { Handler, Lookup, Tick } from './decision.js';
import {
  DEFAULT_LOOKUP_SETTLE_MS,
  DEFAULT_STATE_CLEANUP_DELAY_MS,
  Processor,
  type ProcessorOptions,
} from './processor.js';
import { Publisher } from './publisher.js';
import { retention } from './retention.js';
import { DEFAULT_BACKOFF } from './retry.js';
import { DiskStores } from './row-store.js';
import type { StateTable } from './state-table.js';
import { startTelemetry } from './telemetry.js';
import type { ServiceContract } from './contract.js';

/** What a service hands its HTTP routes. */
export interface ServiceRuntime<V> {
  readonly config: RuntimeConfig;
  readonly log: Logger;
  readonly table: StateTable<V>;
  /** Only for services that start sagas from HTTP requests. */
  readonly publisher: Publisher | undefined;
  /** Which keys this replica serves; lists gathered from every replica (http-routing.ts). */
  readonly routing: OwnerRouting;
}

export interface ServiceDefinition<V> {
  /** What the service is: name, port, topics (from the application's contracts). */
  readonly contract: ServiceContract;
  readonly table: StateTable<V>;
  readonly handle: Handler<V>;
  readonly tick?: Tick<V>;
  /** Rows that hold something (stock, credit): the clock releases what nothing settles (holds.ts). */
  readonly holds?: HoldRules<V>;
  /**
   * How long a row is kept after it ended (its table's lifecycle says when): then it is retired,
   * and a message older than this is not acted on (retention.ts).
   */
  readonly retentionMs: number;
  /** Other services' state topics it reads (each must be among its contract's `lookups`). */
  readonly lookups?: readonly Lookup[];
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
  const { contract } = definition;
  const { name } = contract;
  for (const { topic } of definition.lookups ?? []) {
    if (!contract.lookups.includes(topic)) {
      // Its ACLs are derived from the same contract: undeclared, it could not read it when deployed.
      throw new Error(`${name} looks up ${topic}, but its contract does not list it among its lookups`);
    }
  }
  const config = runtimeConfig(name, contract.port);
  const access = accessConfig();
  const log = createLogger(name);
  // Before the state loads: expiry follows every row change from the first.
  const expiry = definition.holds && holdExpiry(definition.table, definition.holds, log);
  const telemetry = await startTelemetry(name, config.instanceId, log);
  const namer = new TopicNamer(config.namespace);
  const retire = retention(definition.table, definition.retentionMs, contract.stateTopic, log);
  // The rows on local disk, one store per replica: a restart reads only what changed since.
  const stateDir = envString(
    'STATE_DIR',
    join(tmpdir(), 'ordersaga', 'state', config.namespace || 'default', name, config.instanceId),
  );
  const stores = DiskStores.open(stateDir, log);
  definition.table.useStore(stores.table(contract.stateTopic, definition.table.lifecycle));
  for (const { topic, table } of definition.lookups ?? []) table.useStore(stores.table(topic));
  log.info(
    { stateDir, rows: definition.table.size, positions: Object.fromEntries(definition.table.positions()) },
    `state store opened in ${stateDir}`,
  );
  // Where the other replicas reach this one's API: ADVERTISED_URL (the pod's IP in Kubernetes).
  const listenHost = config.httpHost === '0.0.0.0' || config.httpHost === '::' ? '127.0.0.1' : config.httpHost;
  const url = envString('ADVERTISED_URL', `http://${listenHost}:${config.httpPort}`);
  const kafka = createKafka(`${name}-${config.instanceId}`, config.brokers, log);
  const admin = kafka.admin();
  await connectAdmin(admin);
  if (process.env.CREATE_TOPICS !== 'false') {
    await ensureTopics(admin, namer, contract.topics(config.partitions), config.replicationFactor, log);
  }

  const processor = new Processor({
    contract,
    kafka,
    admin,
    namer,
    log,
    table: definition.table,
    handle: definition.handle,
    url,
    stateCleanupDelayMs: envDuration('STATE_CLEANUP_DELAY', DEFAULT_STATE_CLEANUP_DELAY_MS),
    ticks: [definition.tick, expiry?.tick, retire.tick].filter((t) => t !== undefined),
    lookups: definition.lookups,
    retentionMs: definition.retentionMs,
    onCommitted: (changes) => {
      expiry?.observe(changes);
      retire.observe(changes);
      definition.onCommitted?.(changes);
    },
    backoff: {
      retries: envInt('RETRY_ATTEMPTS', DEFAULT_BACKOFF.retries),
      initialMs: envInt('RETRY_INITIAL_MS', DEFAULT_BACKOFF.initialMs),
      maxMs: envInt('RETRY_MAX_MS', DEFAULT_BACKOFF.maxMs),
    },
    sessionTimeoutMs: envInt('KAFKA_SESSION_TIMEOUT_MS', 10_000),
    lookupSettleMs: envInt('LOOKUP_SETTLE_MS', DEFAULT_LOOKUP_SETTLE_MS),
  });
  const publisher = definition.publishes ? new Publisher(kafka, namer) : undefined;
  await publisher?.connect();

  const app = createHttpServer(
    log,
    () => processor.ready,
    () => ({ restoring: processor.restoreProgress }),
  );
  await app.register(async (scope) => {
    await apiAccess(scope, access, log);
    // Until the state is restored, a read would see part of it (an existing order missing, a
    // level or a balance wrong): the service's own routes say so instead of answering.
    scope.addHook('onRequest', async (_request, reply) => {
      if (processor.restored) return;
      const { table } = definition;
      return unavailable(
        reply,
        `${name} is restoring its state from ${contract.stateTopic} (${table.size} rows so far)`,
        1,
      );
    });
    const routing = ownerRouting(scope, processor.owners, log);
    await definition.routes?.(scope, { config, log, table: definition.table, publisher, routing });
  });
  await app.listen({ port: config.httpPort, host: config.httpHost });

  await processor.start();
  log.info({ url, brokers: config.brokers, instanceId: config.instanceId }, `${name} service ready at ${url}`);

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info('shutting down: finishing in-flight work');
      await app.close();
      await processor.stop();
      await stores.close();
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

/**
 * Entry point helper: logs a start-up failure and exits non-zero instead of crashing silently.
 * Process warnings become log lines too, but for one that is known and harmless: kafkajs 2.2.4
 * arms its request queue's timer with a negative delay when nothing is pending
 * (scheduleCheckPendingRequests), which Node runs after 1 ms, as kafkajs means, and which Node 24
 * reports as a TimeoutNegativeWarning several times a second.
 */
export function main(start: () => Promise<unknown>): void {
  const log = createLogger('process');
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    if (warning.name === 'TimeoutNegativeWarning') return;
    log.warn({ warning: { name: warning.name, message: warning.message } }, `Node.js warning: ${warning.message}`);
  });
  start().catch((err) => {
    createLogger('startup').fatal({ err }, 'service failed to start');
    process.exit(1);
  });
}
