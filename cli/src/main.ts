/**
 * ordersaga: the operator's command line. Reads and writes Kafka as the services do
 * (KAFKA_BROKERS, ORDERSAGA_NAMESPACE, the KAFKA_TLS and SASL settings; --brokers, --namespace).
 * Tables for people, --json for programs; exit code 1 when something failed or was refused, 2
 * for a mistake in the command.
 */
import { parseArgs } from 'node:util';

// kafkajs 2.2.4 sets timers with negative delays, which Node 24 warns of (they fire at once, as
// kafkajs expects): the services run with --disable-warning=TimeoutNegativeWarning; a command's
// stderr is for what the user must read.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
  if (type !== 'TimeoutNegativeWarning') emitWarning(warning, ...(rest as []));
}) as typeof process.emitWarning;
import { attemptOf, sagaVersionOf, type SagaState } from '@ordersaga/contracts';
import {
  findDeadLetters,
  listDeadLetters,
  redrive,
  UsageError,
  type DeadLetterEntry,
  type DeadLetterFilter,
} from './dead-letters.js';
import { KafkaSession } from './kafka-session.js';
import { listOrders, readOrders } from './orders.js';
import { table } from './table.js';

const USAGE = `usage: ordersaga <command> [options]

  dlt list [--topic T] [--reason TEXT] [--kind K]   the dead letters, and how many per topic and kind
  dlt show <id>                                     one dead letter: its reasons, headers and value
  dlt redrive <id>...                               put dead letters back on their topic, once each
  dlt redrive --all [--topic T] [--reason TEXT] [--kind K]
  orders get <orderId>                              an order's saga: status, step, total, version, attempt, history
  orders list [--status S] [--customer C]           every order (not retired)

  --json                 JSON instead of a table
  --brokers host:port    default: KAFKA_BROKERS, else 127.0.0.1:9092
  --namespace PREFIX     default: ORDERSAGA_NAMESPACE (a chart release's: "<release>-ordersaga.")

An id is <topic>.dlt/<partition>/<offset>, as dlt list shows it.`;

const OPTIONS = {
  json: { type: 'boolean' },
  all: { type: 'boolean' },
  topic: { type: 'string' },
  reason: { type: 'string' },
  kind: { type: 'string' },
  status: { type: 'string' },
  customer: { type: 'string' },
  brokers: { type: 'string' },
  namespace: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

const out = (text: string) => process.stdout.write(`${text}\n`);
const json = (value: unknown) => out(JSON.stringify(value, null, 2));
const age = (seconds: number) =>
  seconds < 120 ? `${seconds}s` : seconds < 7_200 ? `${Math.round(seconds / 60)}m` : `${Math.round(seconds / 3_600)}h`;
const clip = (text: string, width = 70) => (text.length > width ? `${text.slice(0, width - 1)}…` : text);

function deadLetterRows(entries: DeadLetterEntry[]): string {
  const rows = entries.map((e) => ({
    ID: e.id,
    KIND: e.kind,
    REASON: `${clip(e.reason, 60)}${e.earlierReasons.length ? ` (+${e.earlierReasons.length} earlier)` : ''}`,
    KEY: e.key ?? '',
    AGE: age(e.ageSeconds),
    REDRIVEN: e.redrivenAt ?? '',
  }));
  return table(rows, ['ID', 'KIND', 'REASON', 'KEY', 'AGE', 'REDRIVEN']);
}

/** "3 dead letters (1 redriven): order.placed 2 (poison 2), ..." */
function deadLetterCounts(entries: DeadLetterEntry[]): string {
  const byTopic = new Map<string, Map<string, number>>();
  for (const e of entries) {
    const kinds = byTopic.get(e.topic) ?? new Map<string, number>();
    kinds.set(e.kind, (kinds.get(e.kind) ?? 0) + 1);
    byTopic.set(e.topic, kinds);
  }
  const parts = [...byTopic].map(([topic, kinds]) => {
    const total = [...kinds.values()].reduce((a, b) => a + b, 0);
    return `${topic} ${total} (${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')})`;
  });
  const redriven = entries.filter((e) => e.redrivenAt).length;
  return `${entries.length} dead letter${entries.length === 1 ? '' : 's'} (${redriven} redriven)${parts.length ? `: ${parts.join(', ')}` : ''}`;
}

function orderRows(orders: SagaState[]): string {
  const rows = orders.map((o) => ({
    ORDER: o.orderId,
    CUSTOMER: o.customerId,
    STATUS: o.phase,
    STEP: o.step ?? '',
    TOTAL: o.total === undefined ? '' : (o.total / 100).toFixed(2),
    REASON: clip(o.failure?.reason ?? '', 50),
    VERSION: String(sagaVersionOf(o)),
    ATTEMPT: String(attemptOf(o)),
    UPDATED: o.updatedAt,
  }));
  return table(rows, ['ORDER', 'CUSTOMER', 'STATUS', 'STEP', 'TOTAL', 'REASON', 'VERSION', 'ATTEMPT', 'UPDATED']);
}

const filterOf = (values: Values): DeadLetterFilter => ({
  ...(values.topic ? { topic: values.topic } : {}),
  ...(values.reason ? { reason: values.reason } : {}),
  ...(values.kind ? { kind: values.kind } : {}),
});

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  const [group, command, ...rest] = positionals;
  if (values.help || !group) {
    out(USAGE);
    return values.help ? 0 : 2;
  }
  const session = new KafkaSession({
    ...(values.brokers ? { brokers: values.brokers } : {}),
    ...(values.namespace !== undefined ? { namespace: values.namespace } : {}),
  });
  const now = new Date();
  try {
    switch (`${group} ${command ?? ''}`) {
      case 'dlt list': {
        const entries = await listDeadLetters(session, filterOf(values), now);
        if (values.json) json({ count: entries.length, deadLetters: entries });
        else out(`${deadLetterRows(entries)}\n${deadLetterCounts(entries)}`);
        return 0;
      }
      case 'dlt show': {
        if (rest.length !== 1) throw new UsageError('dlt show takes one id');
        const entry = (await findDeadLetters(session, rest, now))[0]!;
        if (values.json) json(entry);
        else {
          out(
            `${entry.id}: ${entry.kind}, from ${entry.topic}, key ${entry.key ?? '(none)'}, ${age(entry.ageSeconds)} ago`,
          );
          for (const reason of [...entry.earlierReasons, entry.reason]) out(`  reason: ${reason}`);
          if (entry.redrivenAt) out(`  redriven at ${entry.redrivenAt}`);
          out('headers:');
          for (const [name, value] of Object.entries(entry.headers)) out(`  ${name}: ${value}`);
          out(`value:\n${entry.value ?? '(null)'}`);
        }
        return 0;
      }
      case 'dlt redrive': {
        if (Boolean(values.all) === rest.length > 0)
          throw new UsageError('dlt redrive takes ids, or --all with the filters (--topic, --reason, --kind)');
        const entries = values.all
          ? await listDeadLetters(session, filterOf(values), now)
          : await findDeadLetters(session, rest, now);
        const outcome = await redrive(session, entries, now, (done, total) => {
          if (total > 100) process.stderr.write(`redriven ${done}/${total}\n`);
        });
        if (values.json)
          json({
            redriven: outcome.redriven.map((e) => e.id),
            refused: outcome.refused.map((r) => ({ id: r.entry.id, why: r.why })),
          });
        else {
          for (const e of outcome.redriven) out(`redriven ${e.id} to ${e.topic}`);
          for (const r of outcome.refused) process.stderr.write(`ordersaga: not redriven: ${r.entry.id}: ${r.why}\n`);
          out(`${outcome.redriven.length} redriven, ${outcome.refused.length} refused`);
        }
        return outcome.refused.length > 0 ? 1 : 0;
      }
      case 'orders get': {
        if (rest.length !== 1) throw new UsageError('orders get takes one order id');
        const order = (await readOrders(session)).get(rest[0]!);
        if (!order) throw new Error(`no order ${rest[0]} (never placed, or retired)`);
        if (values.json) json(order);
        else {
          out(orderRows([order]));
          for (const h of order.history) out(`  ${h.at}  ${h.phase.padEnd(12)} ${h.event}`);
        }
        return 0;
      }
      case 'orders list': {
        const orders = await listOrders(session, {
          ...(values.status ? { status: values.status } : {}),
          ...(values.customer ? { customer: values.customer } : {}),
        });
        if (values.json) json({ count: orders.length, orders });
        else out(`${orderRows(orders)}\n${orders.length} order${orders.length === 1 ? '' : 's'}`);
        return 0;
      }
      default:
        throw new UsageError(`no command "${positionals.join(' ')}"`);
    }
  } finally {
    await session.close();
  }
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`ordersaga: ${err.message}\n${usage ? `\n${USAGE}\n` : ''}`);
    process.exit(usage ? 2 : 1);
  },
);
