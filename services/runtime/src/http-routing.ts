/**
 * Reads answered by the replica that keeps the rows (owners.ts), whichever replica the request
 * reached, as Kafka Streams' interactive queries are:
 *
 * - a route that is about one key says which (`config.ownerKey`): when another replica serves its
 *   partition, the request is forwarded there, with the caller's credentials (the owner checks
 *   them as it would a request of its own), and its answer is relayed as it is;
 * - a route that lists rows asks every replica for the rows of the partitions it serves
 *   (`gather`) and joins the answers.
 *
 * A request is forwarded once: one that arrives forwarded for a partition not served here (the
 * group rebalanced since) is answered 503 with a Retry-After, as is one whose owner is not known
 * yet, or not reachable.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from './context.js';
import { unavailable } from './http.js';
import type { Owners } from './owners.js';
import { activeTraceparent } from './tracing.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The key whose partition's owner answers this request (the key of the messages that own
     * the rows it reads); undefined: answered where it arrives.
     */
    ownerKey?: (request: FastifyRequest) => string | undefined;
  }
}

/** Set on a request one replica makes of another: never forwarded again. */
const FORWARDED_BY = 'x-ordersaga-forwarded-by';
/** Asks a replica for the rows of the partitions it serves only (a part of a gathered list). */
const SCOPE = 'x-ordersaga-scope';
/** The caller's headers an owner needs to answer as it would the caller itself. */
const PASSED_ON = ['authorization', 'content-type', 'idempotency-key', 'accept'];
/** What of the owner's answer is relayed. */
const RELAYED = ['content-type', 'location', 'retry-after'];
const FORWARD_TIMEOUT_MS = 15_000;

/** What list routes use: the rows of every partition, from the replicas that serve them. */
export interface OwnerRouting {
  /** Whether this replica serves the key's partition now. */
  servesKey(key: string): boolean;
  /** Whether the partition is served here now. */
  servesPartition(partition: number): boolean;
  /**
   * Joins `local()` (the rows of the partitions served here) and the same list from every other
   * replica that serves partitions; undefined once it has answered 503 (a partition unserved, a
   * replica unreachable).
   */
  gather<T>(request: FastifyRequest, reply: FastifyReply, local: () => T[] | Promise<T[]>): Promise<T[] | undefined>;
}

export function ownerRouting(app: FastifyInstance, owners: Owners, log: Logger): OwnerRouting {
  const headersFor = (request: FastifyRequest, extra: Record<string, string> = {}) => {
    const headers: Record<string, string> = {
      [FORWARDED_BY]: owners.selfUrl,
      'x-correlation-id': request.id,
      ...extra,
    };
    for (const name of PASSED_ON) {
      const value = request.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const traceparent = activeTraceparent();
    if (traceparent) headers.traceparent = traceparent;
    return headers;
  };
  const call = (url: string, request: FastifyRequest, headers: Record<string, string>) =>
    fetch(`${url}${request.url}`, {
      method: request.method,
      headers,
      body: request.body === undefined ? undefined : JSON.stringify(request.body),
      signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
    });

  app.addHook('preHandler', async (request, reply) => {
    const key = request.routeOptions.config.ownerKey?.(request);
    if (key === undefined) return;
    const partition = owners.partitionOf(key);
    if (owners.servedPartitions.has(partition)) return;
    if (request.headers[FORWARDED_BY] !== undefined) {
      // The sender's view of the group is older than ours: it learns again, and the caller retries.
      owners.refresh().catch(() => undefined);
      return unavailable(reply, `partition ${partition} is not served by this replica (the group is rebalancing)`, 1);
    }
    const owner = await owners.ownerOf(partition);
    if (owner === undefined) {
      return unavailable(reply, `partition ${partition} is being assigned or restored`, 1);
    }
    let answer: Response;
    try {
      answer = await call(owner, request, headersFor(request));
    } catch (err) {
      log.warn({ err: String(err), owner, partition }, 'the replica serving the partition did not answer');
      owners.stale(owner);
      return unavailable(reply, `the replica serving partition ${partition} did not answer`, 1);
    }
    if (answer.status === 503) owners.stale(owner);
    for (const name of RELAYED) {
      const value = answer.headers.get(name);
      if (value !== null) reply.header(name, value);
    }
    // Relayed untouched: the owner's route already shaped (and checked) it.
    return reply
      .code(answer.status)
      .serializer((body: string) => body)
      .send(await answer.text());
  });

  return {
    servesKey: (key) => owners.servesKey(key),
    servesPartition: (partition) => owners.servedPartitions.has(partition),
    async gather(request, reply, local) {
      if (request.headers[SCOPE] === 'local') return local();
      const { urls, missing } = await owners.coverage();
      if (missing.length > 0) {
        unavailable(reply, `partitions ${missing.join(',')} are being assigned or restored`, 1);
        return undefined;
      }
      const parts = await Promise.all(
        urls.map(async (url) => {
          if (url === owners.selfUrl) return local();
          try {
            const answer = await call(url, request, headersFor(request, { [SCOPE]: 'local' }));
            if (answer.ok) return (await answer.json()) as Awaited<ReturnType<typeof local>>;
            log.warn({ owner: url, status: answer.status }, 'a replica could not give its part of a list');
          } catch (err) {
            log.warn({ err: String(err), owner: url }, 'a replica did not give its part of a list');
          }
          owners.stale(url);
          return undefined;
        }),
      );
      if (parts.some((part) => part === undefined)) {
        unavailable(reply, 'a replica serving part of the list did not answer', 1);
        return undefined;
      }
      return parts.flatMap((part) => part!);
    },
  };
}
