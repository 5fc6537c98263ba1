import { Type } from '@sinclair/typebox';
import { Cents, serviceContract, Sku } from '@ordersaga/contracts';
import { envJson, holdTimeMs, main, notFound, runService, StateTable } from '@ordersaga/runtime';
import { createStockHandler, Levels, reservationHold, type Catalog, type Reservation } from './inventory.js';

/** What the local run starts with when STOCK_CATALOG is not set. */
const DEMO_CATALOG: Catalog = {
  'KB-001': { quantity: 100, price: 4_990 },
  'MOUSE-01': { quantity: 200, price: 1_990 },
  'SCREEN-27': { quantity: 5, price: 24_900 },
};

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
  const table = new StateTable<Reservation>();
  const levels = new Levels(catalog, table);
  await runService({
    contract: serviceContract('stock'),
    table,
    handle: createStockHandler(levels, holdMs),
    holds: reservationHold(holdMs),
    routes: (app) => {
      app.get('/stock', async () => levels.all());
      app.get<{ Params: { sku: string } }>('/stock/:sku', async (request, reply) => {
        const level = levels.level(request.params.sku);
        if (!level) {
          return notFound(reply, `unknown sku ${request.params.sku}`);
        }
        return level;
      });
    },
  });
});
