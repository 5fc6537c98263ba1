import swagger from '@fastify/swagger';
import {
  API_VERSION,
  asyncApiDocument,
  DEFAULT_ORDER_SAGA_VERSION,
  orderRetentionMs,
  ORDER_SAGAS,
  orderSagaOf,
  serviceContract,
  type SagaState,
} from '@ordersaga/contracts';
import { ConfigError, envInt, main, runService, StateTable } from '@ordersaga/runtime';
import { orderApi } from './api.js';
import { createOrchestrator, sagaLifecycle } from './orchestrator.js';
import { observeSagaChanges, watchInFlight } from './saga-metrics.js';

main(async () => {
  const table = new StateTable<SagaState>(sagaLifecycle);
  // Which version new sagas start on: raise it only once every order replica runs code that has it.
  const version = envInt('SAGA_VERSION', DEFAULT_ORDER_SAGA_VERSION);
  const startOn = orderSagaOf(version);
  if (!startOn) {
    const known = ORDER_SAGAS.map((saga) => saga.version).join(', ');
    throw new ConfigError(`environment variable SAGA_VERSION is ${version}; this code runs saga versions ${known}`);
  }
  const orchestrator = createOrchestrator(
    table,
    {
      stepMs: envInt('SAGA_STEP_TIMEOUT_MS', 15_000),
      compensationMs: envInt('SAGA_COMPENSATION_TIMEOUT_MS', 15_000),
    },
    startOn,
  );
  watchInFlight(table);
  await runService({
    contract: serviceContract('order'),
    table,
    handle: orchestrator.handle,
    tick: orchestrator.tick,
    retentionMs: orderRetentionMs(),
    onCommitted: observeSagaChanges,
    publishes: true,
    routes: async (app, { publisher, routing }) => {
      await app.register(swagger, {
        openapi: {
          info: {
            title: 'ordersaga Order API',
            version: API_VERSION,
            description: 'Place orders and follow their saga',
          },
          // Required when the service is given keys (AUTH_JWKS, AUTH_JWKS_URL): README, Security.
          components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
          security: [{ bearer: [] }],
        },
        hideUntagged: true,
      });
      await app.register(orderApi, {
        table,
        publisher: publisher!,
        routing,
        startTimeoutMs: envInt('ORDER_START_TIMEOUT_MS', 10_000),
      });
      app.get('/openapi.json', { config: { public: true } }, async () => app.swagger());
      // The topics and messages behind the API (docs/asyncapi.json holds the same).
      const asyncApi = asyncApiDocument();
      app.get('/asyncapi.json', { config: { public: true } }, async () => asyncApi);
    },
  });
});
