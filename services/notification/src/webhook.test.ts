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
