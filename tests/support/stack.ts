/**
 * Runs the real services as child processes against the real broker, each test file in a
 * Kafka namespace of its own (topics, groups and transactional ids prefixed), and gives the
 * tests what they need to look at the outcome: the HTTP APIs and the topics themselves.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel, Partitioners, type IHeaders, type Producer } from 'kafkajs';
import { COMPONENTS, SERVICE_NAMES, type ComponentName } from '@ordersaga/contracts';
import { headersToStrings, readWholeTopic, type TopicName } from '@ordersaga/runtime';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The services, in start order (the component registry's). */
export const SERVICES = SERVICE_NAMES;

/** What a stack can run: any component of the registry (the services, the SagaOrder controller). */
export type Component = ComponentName;
const entryPoint = (component: Component) => join(ROOT, COMPONENTS[component].workspace, 'dist', 'main.js');

export interface TopicRecord {
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  readonly value: string | null;
  readonly headers: Record<string, string>;
  /** The parsed JSON value, when it is JSON. */
  readonly json: any;
}

interface Running {
  readonly child: ChildProcess;
  readonly port: number;
  readonly exited: Promise<number | null>;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** Polls `probe` until it returns a value other than undefined, or fails with `what`. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(100);
  }
}

const everyChild = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of everyChild) child.kill('SIGKILL');
});

export interface StackOptions {
  /** Extra environment per service (catalogue, accounts, timeouts...). */
  readonly env?: Partial<Record<Component, Record<string, string>>>;
  /** The broker, when not the test run's (KAFKA_BROKERS). */
  readonly brokers?: string;
  /** Where the services connect, when not to `brokers` (another listener of the same broker). */
  readonly serviceBrokers?: string;
  /** The Kafka namespace (ORDERSAGA_NAMESPACE), when not one of its own: a chart release's, say. */
  readonly namespace?: string;
}

export class Stack {
  readonly namespace: string;
  readonly brokers: string;
  readonly logDir: string;
  readonly kafka: Kafka;
  private readonly running = new Map<string, Running>();
  private producer: Producer | undefined;

  constructor(private readonly options: StackOptions = {}) {
    this.namespace = options.namespace ?? `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}.`;
    this.logDir = join(tmpdir(), 'ordersaga-tests', `${this.namespace.slice(0, -1)}-${process.pid}`);
    this.brokers = options.brokers ?? process.env.KAFKA_BROKERS ?? '';
    if (!this.brokers) throw new Error('KAFKA_BROKERS is not set (the jest global setup starts a broker)');
    mkdirSync(this.logDir, { recursive: true });
    this.kafka = new Kafka({ clientId: 'tests', brokers: this.brokers.split(','), logLevel: logLevel.NOTHING });
  }

  topic(name: TopicName): string {
    return `${this.namespace}${name}`;
  }

  async startAll(): Promise<void> {
    // The first service first (the registry's order); the others then start together.
    const [first, ...others] = SERVICES;
    await this.start(first!);
    await Promise.all(others.map((s) => this.start(s)));
  }

  async start(service: Component, instance = '0', env: Record<string, string> = {}): Promise<void> {
    const name = `${service}-${instance}`;
    if (this.running.has(name)) throw new Error(`${name} is already running`);
    const port = await freePort();
    const log = createWriteStream(join(this.logDir, `${name}.log`), { flags: 'a' });
    const child = spawn(process.execPath, [entryPoint(service)], {
      env: {
        PATH: process.env.PATH,
        KAFKA_BROKERS: this.options.serviceBrokers ?? this.brokers,
        ORDERSAGA_NAMESPACE: this.namespace,
        INSTANCE_ID: name,
        PORT: String(port),
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
        KAFKA_SESSION_TIMEOUT_MS: '6000',
        STATE_DIR: this.stateDir(service, instance),
        ...this.options.env?.[service],
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    everyChild.add(child);
    // Both streams go to one file, which ends once both have closed: an instance's last words
    // (a fatal error just before it exits) are in its log before anyone reads it.
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    const exited = new Promise<number | null>((resolve) =>
      child.on('close', (code) => {
        everyChild.delete(child);
        log.end(() => resolve(code));
      }),
    );
    this.running.set(name, { child, port, exited });
    const ready = eventually(
      `${name} to be ready (log: ${join(this.logDir, `${name}.log`)})`,
      async () => {
        const response = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
        return response?.ok ? true : undefined;
      },
      60_000,
    );
    const died = exited.then((code) => {
      throw new Error(`${name} exited with code ${code} during start-up:\n${this.logTail(name)}`);
    });
    await Promise.race([ready, died]);
    died.catch(() => undefined);
  }

  /** Stops an instance: SIGTERM (graceful) or SIGKILL (a crash). */
  async stop(service: Component, instance = '0', signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const name = `${service}-${instance}`;
    const running = this.running.get(name);
    if (!running) return null;
    running.child.kill(signal);
    const code = await running.exited;
    this.running.delete(name);
    return code;
  }

  async stopAll(): Promise<void> {
    await Promise.all(
      [...this.running.keys()].map((name) => {
        const [service, instance] = name.split('-') as [Component, string];
        return this.stop(service, instance);
      }),
    );
    await this.producer?.disconnect();
  }

  /** Where an instance keeps its state store (local disk, restored from the state topic). */
  stateDir(service: Component, instance = '0'): string {
    return join(this.logDir, 'state', `${service}-${instance}`);
  }

  /** The partitions an instance was last assigned, from its log ("partitions assigned"). */
  assigned(service: Component, instance = '0'): number[] {
    const last = this.logLines(service, instance)
      .filter((l) => l.msg === 'partitions assigned')
      .pop();
    return (last?.partitions as number[] | undefined) ?? [];
  }

  /** The JSON lines of an instance's log, of every start. */
  logLines(service: Component, instance = '0'): Array<Record<string, unknown>> {
    return readFileSync(join(this.logDir, `${service}-${instance}.log`), 'utf8')
      .split('\n')
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  }

  logTail(name: string, lines = 30): string {
    try {
      return readFileSync(join(this.logDir, `${name}.log`), 'utf8')
        .split('\n')
        .slice(-lines)
        .join('\n');
    } catch {
      return '(no log)';
    }
  }

  url(service: Component, instance = '0'): string {
    const running = this.running.get(`${service}-${instance}`);
    if (!running) throw new Error(`${service}-${instance} is not running`);
    return `http://127.0.0.1:${running.port}`;
  }

  async http(
    service: Component,
    path: string,
    init?: RequestInit,
    instance = '0',
  ): Promise<{ status: number; body: any; headers: Headers }> {
    const response = await fetch(`${this.url(service, instance)}${path}`, init);
    const text = await response.text();
    let body: any = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* not JSON: keep the text */
    }
    return { status: response.status, body, headers: response.headers };
  }

  /** POST /orders, to the order replica `instance`. */
  placeOrder(body: unknown, headers: Record<string, string> = {}, instance = '0') {
    const init = {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    };
    return this.http('order', '/orders', init, instance);
  }

  /** Sends a signal to a running instance without forgetting it (SIGSTOP, SIGCONT). */
  signal(service: Component, instance: string, signal: NodeJS.Signals): void {
    const running = this.running.get(`${service}-${instance}`);
    if (!running) throw new Error(`${service}-${instance} is not running`);
    running.child.kill(signal);
  }

  /** Waits until the order is CONFIRMED or FAILED and returns it. */
  async finished(orderId: string, timeoutMs = 30_000): Promise<any> {
    return eventually(
      `order ${orderId} to finish`,
      async () => {
        const { status, body } = await this.http('order', `/orders/${orderId}`);
        return status === 200 && (body.status === 'CONFIRMED' || body.status === 'FAILED') ? body : undefined;
      },
      timeoutMs,
    );
  }

  /**
   * Every committed record of a topic, read from its start to its current end; with
   * `uncommitted`, the records of aborted and open transactions too (read_uncommitted).
   */
  async readTopic(name: TopicName, { uncommitted = false } = {}): Promise<TopicRecord[]> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const records = await readWholeTopic(
        this.kafka,
        admin,
        this.topic(name),
        `${this.namespace}reader.${Math.random()}`,
        {
          uncommitted,
          timeoutMs: 30_000,
        },
      );
      return records.map(({ partition, message: m }) => {
        const value = m.value?.toString('utf8') ?? null;
        let json: unknown;
        try {
          json = value === null ? null : JSON.parse(value);
        } catch {
          json = undefined;
        }
        return {
          partition,
          offset: m.offset,
          key: m.key?.toString('utf8') ?? null,
          value,
          headers: headersToStrings(m.headers as IHeaders),
          json,
        };
      });
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * The topic's committed records once `complete` holds for them. A record a service already
   * shows over HTTP may not be readable yet: its producer's commit returns before the broker has
   * written the transaction's markers, and a read-committed reader stops short of them until then.
   */
  async readTopicUntil(
    name: TopicName,
    what: string,
    complete: (records: TopicRecord[]) => boolean,
    timeoutMs = 30_000,
  ): Promise<TopicRecord[]> {
    return eventually(
      what,
      async () => {
        const records = await this.readTopic(name);
        return complete(records) ? records : undefined;
      },
      timeoutMs,
    );
  }

  /** Writes raw records to a topic of this stack (for duplicates and poison messages). */
  async produce(
    name: TopicName,
    messages: Array<{ key: string | null; value: string | Buffer | null; headers?: Record<string, string> }>,
  ) {
    if (!this.producer) {
      this.producer = this.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await this.producer.connect();
    }
    await this.producer.send({ topic: this.topic(name), messages });
  }
}
