import { existsSync, readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import {
  connectAdmin,
  createHttpServer,
  createKafka,
  createLogger,
  envBoolean,
  envInt,
  envString,
  main,
  Publisher,
  runtimeConfig,
  startTelemetry,
  Changelog,
  StateTable,
  TopicNamer,
} from '@ordersaga/runtime';
import { COMPONENTS, type SagaState } from '@ordersaga/contracts';
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { Controller } from './controller.js';
import { Kube, RateLimiter } from './kube.js';
import { LeaderElector } from './leader.js';
import { MirrorLedger } from './mirror-ledger.js';
import { PlacedOrders } from './placed-orders.js';
import type { MirrorMode } from './sagaorder.js';

const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

main(async () => {
  const config = runtimeConfig('operator', COMPONENTS.operator.port);
  const log = createLogger('operator');
  const telemetry = await startTelemetry('operator', config.instanceId, log);
  const mirrorMode = envString('MIRROR_MODE', 'all');
  if (!Value.Check(Type.Union([Type.Literal('all'), Type.Literal('failed'), Type.Literal('sampled')]), mirrorMode)) {
    throw new Error(`MIRROR_MODE must be all, failed or sampled, got "${mirrorMode}"`);
  }
  const namespace = envString(
    'WATCH_NAMESPACE',
    existsSync(SERVICE_ACCOUNT_NAMESPACE) ? readFileSync(SERVICE_ACCOUNT_NAMESPACE, 'utf8').trim() : 'default',
  );

  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  const kube = new Kube(kubeConfig, namespace, new RateLimiter(envInt('API_QPS', 20), envInt('API_BURST', 40)));

  const namer = new TopicNamer(config.namespace);
  const kafka = createKafka(`operator-${config.instanceId}`, config.brokers, log);
  const admin = kafka.admin();
  await connectAdmin(admin);
  const sagas = new StateTable<SagaState>();
  // Every saga, in memory: the controller mirrors them all (retired ones leave as tombstones).
  const stateTopic = namer.physical('order.state');
  const stateLog = new Changelog(kafka, admin, stateTopic, sagas, namer.id('operator.state-reader'), log);
  const placed = new PlacedOrders(kafka, admin, namer);
  const ledger = new MirrorLedger(kafka, admin, namer);
  const publisher = new Publisher(kafka, namer);
  // client-go's defaults: a 15 s lease, renewed every 2 s, given up 10 s after the last renewal.
  const leaseSeconds = envInt('LEASE_DURATION_SECONDS', 15);
  const leader = new LeaderElector(
    kube,
    {
      name: envString('LEASE_NAME', 'ordersaga-operator'),
      identity: config.instanceId,
      durationSeconds: leaseSeconds,
      renewDeadlineMs: envInt('LEASE_RENEW_DEADLINE_MS', Math.round((leaseSeconds * 1000 * 2) / 3)),
      renewEveryMs: envInt('LEASE_RENEW_MS', 2_000),
    },
    log,
  );
  const controller = new Controller({
    kube,
    sagas,
    placed,
    ledger,
    publisher,
    leader,
    log,
    identity: config.instanceId,
    mirrorMode,
    samplePercent: envInt('MIRROR_SAMPLE_PERCENT', 10),
    ttlSeconds: envInt('SAGAORDER_TTL_SECONDS', 3_600),
    release: envString('SAGAORDER_INSTANCE', ''),
    adoptUnlabelled: envBoolean('SAGAORDER_ADOPT', true),
  });

  let kafkaReady = false;
  const app = createHttpServer(log, () => kafkaReady && controller.ready);
  const url = await app.listen({ port: config.httpPort, host: config.httpHost });

  await publisher.connect();
  await placed.start();
  await ledger.start();
  await stateLog.start();
  await stateLog.read();
  await ledger.caughtUp();
  kafkaReady = true;
  leader.start();
  await controller.start();
  log.info({ url, namespace, mirrorMode, sagas: sagas.size }, `operator ready at ${url}`);

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      log.info('shutting down');
      void (async () => {
        await app.close();
        await controller.stop();
        await leader.stop();
        await Promise.all([publisher.disconnect(), placed.stop(), ledger.stop(), stateLog.stop(), admin.disconnect()]);
        await telemetry.shutdown();
        process.exit(0);
      })().catch((err) => {
        log.error({ err }, 'unclean shutdown');
        process.exit(1);
      });
    });
  }
});
