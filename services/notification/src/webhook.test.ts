import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebhookClient, WebhookRefused } from './webhook.js';

const policy = { allowHttp: false, allowedCidrs: [], timeoutMs: 1_000, maxResponseBytes: 1_024 };

test('a URL that can never be called is refused at start-up, saying why', () => {
  const client = new WebhookClient(policy);
  expect(() => client.checkUrl('http://hooks.example.com/', 'W.alice')).toThrow(
    'W.alice: http webhooks are refused, only https (NOTIFICATION_WEBHOOK_ALLOW_HTTP=true allows http)',
  );
  expect(() => client.checkUrl('file:///etc/passwd', 'W.alice')).toThrow('W.alice: file webhooks are refused');
  expect(() => client.checkUrl('https://user:secret@hooks.example.com/', 'W.alice')).toThrow(/credentials/);
  expect(() => client.checkUrl('hooks.example.com', 'W.alice')).toThrow('W.alice: "hooks.example.com" is not a URL');
  expect(client.checkUrl('https://hooks.example.com/x', 'W.alice').host).toBe('hooks.example.com');
  expect(new WebhookClient({ ...policy, allowHttp: true }).checkUrl('http://hooks.example.com/', 'W').protocol).toBe(
    'http:',
  );
  expect(() => new WebhookClient({ ...policy, allowedCidrs: ['10.0.0.0/33'] })).toThrow(
    '"10.0.0.0/33" is not a CIDR range',
  );
});

test.each([
  '127.0.0.1',
  '10.1.2.3',
  '172.31.255.255',
  '192.168.0.10',
  '100.64.0.1',
  '169.254.169.254', // cloud metadata (IPv4)
  '0.0.0.0',
  '[::1]',
  '[::ffff:127.0.0.1]', // IPv4-mapped loopback
  '[::ffff:169.254.169.254]',
  '[fd00:ec2::254]', // cloud metadata (IPv6)
  '[fe80::1]',
])('an address that is not public is refused before any connection: %s', async (host) => {
  const client = new WebhookClient(policy);
  const call = client.post(new URL(`https://${host}:8443/hook`), '{}', {});
  await expect(call).rejects.toBeInstanceOf(WebhookRefused);
  await expect(call).rejects.toThrow('is not a public address');
});

test('an allowed range lets its addresses through, and only those', async () => {
  const client = new WebhookClient({ ...policy, allowedCidrs: ['10.20.0.0/16'] });
  // Let through: the call is made (and fails to connect, not refused).
  const allowed = client.post(new URL('https://10.20.0.1:1/hook'), '{}', {});
  await expect(allowed).rejects.not.toBeInstanceOf(WebhookRefused);
  await expect(client.post(new URL('https://10.21.0.1:1/hook'), '{}', {})).rejects.toBeInstanceOf(WebhookRefused);
});

describe('an answer is bounded in time and size', () => {
  let server: Server;
  let base: string;
  const sockets = new Set<Socket>();
  let endlessClosed: Promise<void>;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/silent') return; // never answers
      endlessClosed = new Promise((resolve) => res.once('close', () => resolve()));
      res.writeHead(200);
      // An endless answer: only the first bytes are ever read.
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const pump = () => {
        while (res.write(chunk));
        res.once('drain', pump);
      };
      pump();
    });
    server.on('connection', (socket) => sockets.add(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const client = () =>
    new WebhookClient({ allowHttp: true, allowedCidrs: ['127.0.0.1/32'], timeoutMs: 300, maxResponseBytes: 1_024 });

  test('no answer within the time: a retryable failure that says so', async () => {
    const started = Date.now();
    const call = client().post(new URL(`${base}/silent`), '{}', {});
    await expect(call).rejects.toThrow('webhook gave no answer within 300 ms');
    await expect(call).rejects.not.toBeInstanceOf(WebhookRefused);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  test('an endless 2xx answer is delivered, and read no further than the limit', async () => {
    await expect(client().post(new URL(`${base}/endless`), '{}', {})).resolves.toBeUndefined();
    await endlessClosed; // the client hung up past the limit, rather than reading on
  });
});
