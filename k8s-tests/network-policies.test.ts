/**
 * What the chart's NetworkPolicies allow and refuse, asked as "may this pod open a connection to
 * that address and port", by an evaluator of the Kubernetes NetworkPolicy rules
 * (support/network-policy.ts), itself checked first against the examples of the Kubernetes docs.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { COMPONENT_NAMES, COMPONENTS, type ComponentName } from '@ordersaga/contracts';
import { allowed, inCidr, selects, type Endpoint, type NetworkPolicy } from './support/network-policy.js';
import { AUTH_VALUES, ROOT, tool } from './support/cluster.js';

const NS = 'shop';

describe('the evaluator, on the examples of the Kubernetes documentation', () => {
  // https://kubernetes.io/docs/concepts/services-networking/network-policies/#networkpolicy-resource
  const example: NetworkPolicy = {
    metadata: { name: 'test-network-policy', namespace: 'default' },
    spec: {
      podSelector: { matchLabels: { role: 'db' } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        {
          from: [
            { ipBlock: { cidr: '172.17.0.0/16', except: ['172.17.1.0/24'] } },
            { namespaceSelector: { matchLabels: { project: 'myproject' } } },
            { podSelector: { matchLabels: { role: 'frontend' } } },
          ],
          ports: [{ protocol: 'TCP', port: 6379 }],
        },
      ],
      egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/24' } }], ports: [{ protocol: 'TCP', port: 5978 }] }],
    },
  };
  const db: Endpoint = { pod: { role: 'db' }, namespace: 'default' };
  const pod = (labels: Record<string, string>, namespace = 'default', namespaceLabels = {}) =>
    ({ pod: labels, namespace, namespaceLabels }) as Endpoint;

  test('ingress: from the ipBlock but its except, the namespaces, the pods of its namespace; on 6379 only', () => {
    const to = (from: Endpoint, port = 6379) => allowed([example], { from, to: db, port }, 'default');
    expect(to({ ip: '172.17.0.5' })).toBe(true);
    expect(to({ ip: '172.17.1.5' })).toBe(false); // except
    expect(to({ ip: '172.18.0.5' })).toBe(false);
    expect(to(pod({ role: 'frontend' }))).toBe(true);
    expect(to(pod({ role: 'frontend' }, 'other'))).toBe(false); // podSelector alone: own namespace
    expect(to(pod({ any: 'thing' }, 'other', { project: 'myproject' }))).toBe(true);
    expect(to(pod({ role: 'frontend' }), 6380)).toBe(false);
  });

  test('egress: to 10.0.0.0/24 on 5978 only; unselected pods are open; no policy types, no rules: deny', () => {
    expect(allowed([example], { from: db, to: { ip: '10.0.0.7' }, port: 5978 }, 'default')).toBe(true);
    expect(allowed([example], { from: db, to: { ip: '10.0.1.7' }, port: 5978 }, 'default')).toBe(false);
    expect(allowed([example], { from: db, to: { ip: '10.0.0.7' }, port: 5979 }, 'default')).toBe(false);
    expect(allowed([example], { from: pod({ role: 'web' }), to: { ip: '8.8.8.8' }, port: 53 }, 'default')).toBe(true);
    // https://kubernetes.io/docs/concepts/services-networking/network-policies/#default-deny-all-egress-traffic
    const denyEgress: NetworkPolicy = { metadata: { name: 'd' }, spec: { podSelector: {}, policyTypes: ['Egress'] } };
    expect(allowed([denyEgress], { from: pod({ role: 'web' }), to: { ip: '8.8.8.8' }, port: 53 }, 'default')).toBe(
      false,
    );
    // A port entry with no port: every port of its protocol (the mistake this test exists for).
    const anyPort: NetworkPolicy = {
      metadata: { name: 'a' },
      spec: { podSelector: {}, policyTypes: ['Egress'], egress: [{ ports: [{ protocol: 'TCP' }] }] },
    };
    expect(allowed([anyPort], { from: db, to: { ip: '10.9.9.9' }, port: 5432 }, 'default')).toBe(true);
    expect(inCidr('169.254.169.254', '169.254.0.0/16')).toBe(true);
  });
});

test('label selectors, on the examples of the Kubernetes documentation', () => {
  // https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#resources-that-support-set-based-requirements
  const selector = {
    matchLabels: { component: 'redis' },
    matchExpressions: [
      { key: 'tier', operator: 'In', values: ['cache'] },
      { key: 'environment', operator: 'NotIn', values: ['dev'] },
    ],
  } as const;
  expect(selects(selector, { component: 'redis', tier: 'cache', environment: 'production' })).toBe(true);
  expect(selects(selector, { component: 'redis', tier: 'cache' })).toBe(true); // NotIn: a missing key holds
  expect(selects(selector, { component: 'redis', tier: 'cache', environment: 'dev' })).toBe(false);
  expect(selects(selector, { component: 'redis', tier: 'frontend' })).toBe(false);
  expect(selects(selector, { tier: 'cache' })).toBe(false);
  const partition = (operator: 'Exists' | 'DoesNotExist') => ({ matchExpressions: [{ key: 'partition', operator }] });
  expect(selects(partition('Exists'), { partition: '' })).toBe(true);
  expect(selects(partition('Exists'), {})).toBe(false);
  expect(selects(partition('DoesNotExist'), {})).toBe(true);
  expect(selects(partition('DoesNotExist'), { partition: 'a' })).toBe(false);
});

/** The chart's NetworkPolicies and pods' labels, as helm renders them with these extra arguments. */
async function render(...args: string[]) {
  return renderRelease('shop', ...args);
}

async function renderRelease(release: string, ...args: string[]) {
  const helm = await tool('HELM_BIN');
  const { stdout } = await promisify(execFile)(
    helm,
    ['template', release, join(ROOT, 'charts', 'ordersaga'), '-n', NS, ...AUTH_VALUES, ...args],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  const objects = parseAllDocuments(stdout)
    .map((d) => d.toJS())
    .filter(Boolean);
  const policies: NetworkPolicy[] = objects.filter((o: any) => o.kind === 'NetworkPolicy');
  const podLabels: Record<string, Record<string, string>> = Object.fromEntries(
    objects
      .filter((o: any) => o.kind === 'Deployment')
      .map((d: any) => [d.metadata.labels['app.kubernetes.io/component'], d.spec.template.metadata.labels]),
  );
  const podOf = (c: ComponentName): Endpoint => ({ pod: podLabels[c]!, namespace: NS, ip: '10.244.0.10' });
  const testPod = objects.find((o: any) => o.kind === 'Pod' && o.metadata.annotations?.['helm.sh/hook'] === 'test');
  const helmTest: Endpoint = { pod: testPod.metadata.labels, namespace: NS, ip: '10.244.0.30' };
  const may = (from: Endpoint, to: Endpoint, port: number, protocol: 'TCP' | 'UDP' = 'TCP') =>
    allowed(policies, { from, to, port, protocol }, NS);
  return { policies, podOf, helmTest, may };
}

describe("the chart's NetworkPolicies (helm template, default values)", () => {
  let policies: NetworkPolicy[];
  let podOf: (c: ComponentName) => Endpoint;
  let helmTest: Endpoint;
  let may: Awaited<ReturnType<typeof render>>['may'];

  beforeAll(async () => {
    ({ policies, podOf, helmTest, may } = await render());
  });

  const kafka: Endpoint = { pod: { 'strimzi.io/cluster': 'ordersaga', 'strimzi.io/kind': 'Kafka' }, namespace: NS };
  const dns: Endpoint = {
    pod: { 'k8s-app': 'kube-dns' },
    namespace: 'kube-system',
    namespaceLabels: { 'kubernetes.io/metadata.name': 'kube-system' },
  };
  const prometheus: Endpoint = {
    pod: { 'app.kubernetes.io/name': 'prometheus' },
    namespace: 'monitoring',
    namespaceLabels: { 'kubernetes.io/metadata.name': 'monitoring' },
  };
  test("every rule names its ports, each with a number; one policy per component, helm test's and the default deny", () => {
    expect(policies.map((p) => p.metadata.name).sort()).toEqual(
      [
        ...COMPONENT_NAMES.map((c) => `shop-ordersaga-${c}`),
        'shop-ordersaga-helm-test',
        'shop-ordersaga-default-deny',
      ].sort(),
    );
    for (const policy of policies.filter((p) => p.metadata.name !== 'shop-ordersaga-default-deny') as any[])
      for (const rule of [...policy.spec.ingress, ...policy.spec.egress]) {
        expect(rule.ports?.length).toBeGreaterThan(0);
        for (const port of rule.ports) expect(typeof port.port).toBe('number');
      }
  });

  test.each(COMPONENT_NAMES)(
    "%s may reach Kafka's TLS listener (9093), DNS on 53, the collector; nothing else it does not need",
    (c) => {
      const self = podOf(c);
      expect(may(self, kafka, 9093)).toBe(true);
      expect(may(self, dns, 53, 'UDP')).toBe(true);
      expect(may(self, dns, 53, 'TCP')).toBe(true);
      expect(may(self, { ip: '10.0.0.20' }, 4318)).toBe(true); // the OTLP collector's port
      expect(may(self, kafka, 9092)).toBe(false); // the plaintext listener
      expect(may(self, kafka, 9090)).toBe(false); // the controllers'
      expect(may(self, { ip: '10.0.0.1' }, 5432)).toBe(false);
      expect(may(self, { ip: '169.254.169.254' }, 80)).toBe(false); // cloud metadata
      expect(may(self, { ip: '169.254.169.254' }, 443)).toBe(COMPONENTS[c].egress.includes('kube-apiserver' as never));
      // No component calls another over HTTP: they talk through Kafka only.
      for (const other of COMPONENT_NAMES.filter((o) => o !== c))
        expect({ other, allowed: may(self, podOf(other), COMPONENTS[other].port) }).toEqual({ other, allowed: false });
    },
  );

  test.each(COMPONENT_NAMES)(
    "%s: a service's replicas reach each other on its port, nothing more (reads forwarded to a partition's owner); the controller's do not",
    (c) => {
      const { port, kind } = COMPONENTS[c];
      const replica = podOf(c);
      const another: Endpoint = { ...replica, ip: '10.244.1.11' };
      expect(may(replica, another, port)).toBe(kind === 'service');
      expect(may(replica, another, port + 1)).toBe(false);
      expect(may(replica, another, 9093)).toBe(false);
    },
  );

  test("notification's webhooks: https to public addresses only", () => {
    const notification = podOf('notification');
    expect(may(notification, { ip: '93.184.215.14' }, 443)).toBe(true);
    expect(may(notification, { ip: '93.184.215.14' }, 80)).toBe(false);
    for (const ip of ['10.1.2.3', '172.20.0.1', '192.168.1.1', '127.0.0.1', '169.254.169.254', '100.64.0.1'])
      expect({ ip, allowed: may(notification, { ip }, 443) }).toEqual({ ip, allowed: false });
  });

  test("helm test's Pod may ask each component on its port, and DNS; nothing else, and nothing reaches it", () => {
    for (const c of COMPONENT_NAMES) {
      const { port } = COMPONENTS[c];
      expect({ c, allowed: may(helmTest, podOf(c), port) }).toEqual({ c, allowed: true });
      expect({ c, otherPort: may(helmTest, podOf(c), port + 1) }).toEqual({ c, otherPort: false });
    }
    expect(may(helmTest, dns, 53, 'UDP')).toBe(true);
    expect(may(helmTest, kafka, 9093)).toBe(false);
    expect(may(helmTest, { ip: '93.184.215.14' }, 443)).toBe(false);
    expect(may(helmTest, { ip: '10.0.0.20' }, 4318)).toBe(false);
    for (const c of COMPONENT_NAMES) expect({ c, in: may(podOf(c), helmTest, 3000) }).toEqual({ c, in: false });
  });

  test('a component without a public API is reached only from the monitoring namespace', () => {
    for (const c of COMPONENT_NAMES) {
      const { port, ingress } = COMPONENTS[c];
      expect({ c, prometheus: may(prometheus, podOf(c), port) }).toEqual({ c, prometheus: true });
      const stranger: Endpoint = { pod: { app: 'x' }, namespace: 'other', namespaceLabels: { team: 'x' } };
      expect({ c, stranger: may(stranger, podOf(c), port) }).toEqual({ c, stranger: ingress === 'public' });
      expect({ c, otherPort: may(prometheus, podOf(c), port + 1) }).toEqual({ c, otherPort: false });
    }
  });
});

describe('the default deny', () => {
  test("another app's pod in the namespace can neither reach anything nor be reached; Strimzi's pods are left to their own policies", async () => {
    const { may, podOf } = await render();
    const other: Endpoint = { pod: { app: 'legacy' }, namespace: NS, ip: '10.244.0.99' };
    const elsewhere: Endpoint = { pod: { app: 'x' }, namespace: 'other', namespaceLabels: {} };
    expect(may(other, { ip: '93.184.215.14' }, 443)).toBe(false);
    expect(may(other, { pod: { 'k8s-app': 'kube-dns' }, namespace: 'kube-system' }, 53, 'UDP')).toBe(false);
    expect(may(elsewhere, other, 8080)).toBe(false);
    expect(may(podOf('order'), other, 8080)).toBe(false);
    const broker: Endpoint = { pod: { 'strimzi.io/cluster': 'ordersaga', 'strimzi.io/kind': 'Kafka' }, namespace: NS };
    expect(
      may(broker, { pod: { 'strimzi.io/cluster': 'ordersaga', 'strimzi.io/kind': 'Kafka' }, namespace: NS }, 9091),
    ).toBe(true);
    expect(may(podOf('stock'), broker, 9093)).toBe(true);
  });

  test('networkPolicy.defaultDeny=false leaves the other pods open, the components as they were', async () => {
    const { may, podOf, policies } = await render('--set', 'networkPolicy.defaultDeny=false');
    expect(policies.map((p) => p.metadata.name)).not.toContain('shop-ordersaga-default-deny');
    expect(may({ pod: { app: 'legacy' }, namespace: NS }, { ip: '93.184.215.14' }, 443)).toBe(true);
    expect(may(podOf('order'), { ip: '93.184.215.14' }, 443)).toBe(false);
  });
});

test("two releases in one namespace: no pod of one reaches a pod of the other's, helm test included", async () => {
  const [east, west] = await Promise.all([renderRelease('east'), renderRelease('west')]);
  // Both releases' policies are in the namespace, and govern every pod there.
  const policies = [...east.policies, ...west.policies];
  const may = (from: Endpoint, to: Endpoint, port: number) =>
    allowed(policies, { from, to, port, protocol: 'TCP' }, NS);
  const port = (c: ComponentName) => COMPONENTS[c].port;
  for (const from of COMPONENT_NAMES)
    for (const to of COMPONENT_NAMES) {
      expect({ from, to, may: may(east.podOf(from), west.podOf(to), port(to)) }).toEqual({ from, to, may: false });
      expect({ from, to, may: may(west.podOf(from), east.podOf(to), port(to)) }).toEqual({ from, to, may: false });
    }
  // Each release's helm test reaches its own components, and not the other's.
  for (const c of COMPONENT_NAMES) {
    expect({ c, own: may(east.helmTest, east.podOf(c), port(c)) }).toEqual({ c, own: true });
    expect({ c, other: may(east.helmTest, west.podOf(c), port(c)) }).toEqual({ c, other: false });
  }
  // And a service's replicas still reach each other (each answers reads of the partitions it keeps).
  expect(may(east.podOf('stock'), east.podOf('stock'), port('stock'))).toBe(true);
});

describe('egress narrowed by values', () => {
  test('networkPolicy.collector: traces go only to the collector it names', async () => {
    const { may, podOf } = await render(
      '--set-json',
      'networkPolicy.collector=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"observability"}},"podSelector":{"matchLabels":{"app":"otel-collector"}}}]',
    );
    const collector: Endpoint = {
      pod: { app: 'otel-collector' },
      namespace: 'observability',
      namespaceLabels: { 'kubernetes.io/metadata.name': 'observability' },
    };
    for (const c of COMPONENT_NAMES) {
      expect({ c, collector: may(podOf(c), collector, 4318) }).toEqual({ c, collector: true });
      expect({ c, other: may(podOf(c), { ip: '10.0.0.20' }, 4318) }).toEqual({ c, other: false });
      expect({ c, otherPod: may(podOf(c), { ...collector, pod: { app: 'x' } }, 4318) }).toEqual({ c, otherPod: false });
    }
  });

  test("networkPolicy.kubeApiServer: the controller reaches only the API server's addresses", async () => {
    const { may, podOf } = await render(
      '--set-json',
      'networkPolicy.kubeApiServer=[{"ipBlock":{"cidr":"10.96.0.1/32"}}]',
    );
    const controller = podOf('operator');
    expect(may(controller, { ip: '10.96.0.1' }, 443)).toBe(true);
    expect(may(controller, { ip: '10.96.0.2' }, 443)).toBe(false);
    expect(may(controller, { ip: '93.184.215.14' }, 6443)).toBe(false);
  });

  test('webhooks.allowHttp and webhooks.allowedCidrs open port 80 and those ranges, to notification only', async () => {
    const { may, podOf } = await render(
      '--set',
      'webhooks.allowHttp=true',
      '--set',
      'webhooks.allowedCidrs={10.20.0.0/16}',
    );
    const notification = podOf('notification');
    expect(may(notification, { ip: '93.184.215.14' }, 80)).toBe(true);
    expect(may(notification, { ip: '10.20.3.4' }, 443)).toBe(true);
    expect(may(notification, { ip: '10.21.3.4' }, 443)).toBe(false);
    expect(may(notification, { ip: '169.254.169.254' }, 80)).toBe(false);
    expect(may(notification, { ip: '93.184.215.14' }, 8080)).toBe(false);
    expect(may(podOf('order'), { ip: '93.184.215.14' }, 80)).toBe(false);
  });
});
