import { Type, type Static } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { Cents, CommandHeaders, commandIdOf, orderRetentionMs, serviceContract, Sku } from '@ordersaga/contracts';
import {
  envJson,
  forbidden,
  holdTimeMs,
  initial,
  isOperator,
  keyedBy,
  main,
  notFound,
  runService,
  StateTable,
} from '@ordersaga/runtime';
import {
  createStockHandler,
  levelOf,
  levels,
  reservationHold,
  stockLifecycle,
  unitsOf,
  type Catalog,
  type StockRow,
} from './inventory.js';

/** What the local run starts with when STOCK_CATALOG is not set. */
const DEMO_CATALOG: Catalog = {
  'KB-001': { quantity: 100, price: 4_990 },
  'MOUSE-01': { quantity: 200, price: 1_990 },
  'SCREEN-27': { quantity: 5, price: 24_900 },
};

const RestockBody = Type.Object(
  { quantity: Type.Integer({ minimum: 1, maximum: 1_000_000 }) },
  { additionalProperties: false },
);

main(async () => {
  const catalog = envJson(
    'STOCK_CATALOG',
    Type.Record(
      Sku,
      Type.Object({ quantity: Type.Integer({ minimum: 0 }), price: Cents }, { additionalProperties: false }),
    ),
    DEMO_CATALOG,
  );
  const holdMs = holdTimeMs();
  const table = new StateTable<StockRow>(stockLifecycle);
  const committed = (key: string) => table.getCommitted(key);
  await runService({
    contract: serviceContract('stock'),
    table,
    handle: createStockHandler(catalog, holdMs),
    holds: reservationHold(holdMs),
    retentionMs: orderRetentionMs(),
    publishes: true,
    routes: (app, { publisher, routing }) => {
      // A SKU's units are read on its partition's owner; the list, from every replica's part.
      const bySku = { ownerKey: (request: FastifyRequest) => (request.params as { sku: string }).sku };
      const catalogOrder = Object.keys(catalog);
      app.get('/stock', async (request, reply) => {
        const all = await routing.gather(request, reply, () =>
          levels(committed, catalog).filter(({ sku }) => routing.servesKey(sku)),
        );
        return all && all.sort((a, b) => catalogOrder.indexOf(a.sku) - catalogOrder.indexOf(b.sku));
      });
      app.get<{ Params: { sku: string } }>('/stock/:sku', { config: bySku }, async (request, reply) => {
        const units = unitsOf(request.params.sku, committed, catalog);
        if (!units) return notFound(reply, `unknown sku ${request.params.sku}`);
        return levelOf(units);
      });
      // Units added through the SKU's one owner; the same Idempotency-Key adds them once.
      app.post<{ Params: { sku: string }; Body: Static<typeof RestockBody>; Headers: Static<typeof CommandHeaders> }>(
        '/stock/:sku/restock',
        {
          config: bySku,
          schema: {
            body: RestockBody,
            headers: CommandHeaders,
          },
        },
        async (request, reply) => {
          const { sku } = request.params;
          if (!isOperator(request)) return forbidden(reply, 'restocking is for the operator scope only');
          if (!unitsOf(sku, committed, catalog)) return notFound(reply, `unknown sku ${sku}`);
          const restockId = commandIdOf(request.headers);
          const { quantity } = request.body;
          await publisher!.publish(
            keyedBy(initial('stock.sku.restock', restockId, { sku, quantity, restockId }, new Date(), request.id), sku),
          );
          return reply.code(202).send({ sku, quantity, restockId });
        },
      );
    },
  });
});
