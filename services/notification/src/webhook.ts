/**
 * Calling a customer's webhook without handing the caller a way into the cluster (SSRF): https
 * only unless allowed, every address the name resolves to checked at connect time (the socket
 * connects to the very address that was checked, so a second DNS answer cannot slip in between),
 * no redirect followed, the answer bounded in time and size.
 */
import { lookup as resolve, type LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { NON_PUBLIC_IPV4, NON_PUBLIC_IPV6 } from '@ordersaga/contracts';
import { ConfigError, metrics, NotRetryable } from '@ordersaga/runtime';
import { Counter } from 'prom-client';

export interface WebhookPolicy {
  /** Plain http allowed (NOTIFICATION_WEBHOOK_ALLOW_HTTP): for a receiver that cannot do TLS. */
  readonly allowHttp: boolean;
  /** Non-public ranges let through anyway (NOTIFICATION_WEBHOOK_ALLOWED_CIDRS): a receiver inside the cluster. */
  readonly allowedCidrs: readonly string[];
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
}

export const REFUSAL_REASONS = ['address', 'redirect'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

const refusals = new Counter({
  name: 'ordersaga_webhooks_refused_total',
  help: 'Webhook calls refused: an address that is not public, a redirect',
  labelNames: ['reason'] as const,
  registers: [metrics.registry],
});
for (const reason of REFUSAL_REASONS) refusals.inc({ reason }, 0);

/** A call that must not be made, or followed: dead-lettered with the reason, not retried. */
export class WebhookRefused extends NotRetryable {
  override name = 'WebhookRefused';
  constructor(
    readonly reason: RefusalReason,
    message: string,
  ) {
    super(message);
    refusals.inc({ reason });
  }
}

const blockListOf = (cidrs: readonly string[]) => {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [network, bits] = cidr.split('/');
    const family = isIP(network ?? '');
    const prefix = Number(bits);
    if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
      throw new ConfigError(`"${cidr}" is not a CIDR range`);
    }
    list.addSubnet(network!, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
};

export class WebhookClient {
  private readonly nonPublic = blockListOf([...NON_PUBLIC_IPV4, ...NON_PUBLIC_IPV6]);
  private readonly allowed: BlockList;

  constructor(private readonly policy: WebhookPolicy) {
    this.allowed = blockListOf(policy.allowedCidrs);
  }

  /** At start-up: a URL that can never be called is a configuration error, not a dead letter later. */
  checkUrl(raw: string, name: string): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ConfigError(`${name}: "${raw}" is not a URL`);
    }
    const schemes = this.policy.allowHttp ? ['https', 'http'] : ['https'];
    const scheme = url.protocol.slice(0, -1);
    if (!schemes.includes(scheme)) {
      const hint = scheme === 'http' ? ' (NOTIFICATION_WEBHOOK_ALLOW_HTTP=true allows http)' : '';
      throw new ConfigError(`${name}: ${scheme} webhooks are refused, only ${schemes.join(' or ')}${hint}`);
    }
    if (url.username || url.password) throw new ConfigError(`${name}: credentials in a webhook URL are refused`);
    return url;
  }

  private refused(address: string): boolean {
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    return this.nonPublic.check(address, family) && !this.allowed.check(address, family);
  }

  /** dns.lookup, refusing the name when any address it has is not public. */
  private readonly lookup: LookupFunction = (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      const refused = addresses.find((a) => this.refused(a.address));
      if (refused) {
        const message = `${hostname} resolves to ${refused.address}, not a public address`;
        return callback(new WebhookRefused('address', message), '', 0);
      }
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };

  /** POSTs the body; resolves on a 2xx answer. */
  post(url: URL, body: string, headers: Readonly<Record<string, string>>): Promise<void> {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(host) && this.refused(host)) {
      return Promise.reject(new WebhookRefused('address', `${host} is not a public address`));
    }
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const { timeoutMs, maxResponseBytes } = this.policy;
    return new Promise<void>((done, fail) => {
      const call = request(
        url,
        {
          method: 'POST',
          headers: { ...headers, 'content-length': Buffer.byteLength(body) },
          lookup: this.lookup,
          agent: false,
          signal: AbortSignal.timeout(timeoutMs),
        },
        (response: IncomingMessage) => {
          const status = response.statusCode ?? 0;
          // Only as much of the answer as the limit is read; nothing in it is needed.
          let read = 0;
          response.on('data', (chunk: Buffer) => {
            read += chunk.length;
            if (read > maxResponseBytes) response.destroy();
          });
          response.on('error', () => undefined);
          if (status >= 300 && status < 400) {
            response.destroy();
            const to = response.headers.location ?? 'nowhere';
            return fail(
              new WebhookRefused('redirect', `webhook answered HTTP ${status} to ${to}: redirects are not followed`),
            );
          }
          if (status < 200 || status >= 300) {
            response.destroy();
            return fail(new Error(`webhook answered HTTP ${status}`));
          }
          done();
        },
      );
      call.on('error', (err) =>
        fail(
          err.name === 'TimeoutError' || err.name === 'AbortError'
            ? new Error(`webhook gave no answer within ${timeoutMs} ms`)
            : err,
        ),
      );
      call.end(body);
    });
  }
}
