/**
 * Two releases of the chart in one namespace, on one Kafka cluster. Every name derives from the
 * release, and neither release's Services, policies, Kafka user or controller touches the other's
 * pods, topics, groups, transactional ids or SagaOrders. Then each release's components run, with
 * the settings its ConfigMaps give (as processes: no kubelet here), against the real broker and
 * API server: an order through each one's API, and SagaOrders through each one's controller.
 */
import { Kafka, logLevel } from 'kafkajs';
import { allTopics, COMPONENT_NAMES, COMPONENTS, type ComponentName } from '@ordersaga/contracts';
import { eventually, Stack } from '../tests/support/stack.js';
import { ROOT, TestCluster } from './support/cluster.js';
import { allows, type Acl } from './support/kafka-acls.js';

const NAMESPACE = 'shops';
const CHART = `${ROOT}/charts/ordersaga`;
/** East places the SagaOrders that name no release; West only those labelled with it. */
const RELEASES = { east: { adoptUnlabelled: true }, west: { adoptUnlabelled: false } } as const;
type Release = keyof typeof RELEASES;
const RELEASE_NAMES = Object.keys(RELEASES) as Release[];
const fullnameOf = (release: Release) => `${release}-ordersaga`;
const prefixOf = (release: Release) => `${fullnameOf(release)}.`;
const KINDS =
  'deployments,services,configmaps,serviceaccounts,kafkatopics,kafkausers,networkpolicies,poddisruptionbudgets,servicemonitors,prometheusrules,roles,rolebindings';

type K8sObject = {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
};

let cluster: TestCluster;
const objects = {} as Record<Release, K8sObject[]>;
const stacks = {} as Record<Release, Stack>;

beforeAll(async () => {
  cluster = await TestCluster.start();
  await cluster.installThirdPartyCrds();
  await cluster.kubectl(['create', 'namespace', NAMESPACE]);
  for (const release of RELEASE_NAMES) {
    await cluster.helm([
      'install',
      release,
      CHART,
      '-n',
      NAMESPACE,
      '--set',
      `auth.enabled=false,kafka.tls=false,kafka.bootstrap=${process.env.KAFKA_BROKERS},topics.partitions=2`,
      '--set',
      `operator.adoptUnlabelled=${RELEASES[release].adoptUnlabelled}`,
    ]);
    const { items } = await cluster.json([
      'get',
      KINDS,
      '-n',
      NAMESPACE,
      '-l',
      `app.kubernetes.io/instance=${release}`,
    ]);
    objects[release] = items;
  }
});

afterAll(async () => {
  await Promise.all(Object.values(stacks).map((s) => s.stopAll()));
  await cluster?.stop();
});

const ofKind = (release: Release, kind: string) => objects[release].filter((o) => o.kind === kind);
const configOf = (release: Release, component: ComponentName) =>
  ofKind(release, 'ConfigMap').find((c) => c.metadata.name === `${fullnameOf(release)}-${component}`)!.data!;
const selects = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([key, value]) => labels[key] === value);
/** Every pod the two releases' Deployments make, by release and component. */
const pods = () =>
  RELEASE_NAMES.flatMap((release) =>
    ofKind(release, 'Deployment').map((d) => ({
      release,
      component: d.metadata.labels!['app.kubernetes.io/component'],
      labels: d.spec.template.metadata.labels as Record<string, string>,
    })),
  );

test('every name derives from its release, and the two releases share none', () => {
  const [east, west] = RELEASE_NAMES.map((r) => objects[r].map((o) => `${o.kind}/${o.metadata.name}`));
  expect(east!.length).toBeGreaterThan(60);
  expect(west!.length).toBe(east!.length);
  expect(east!.filter((id) => west!.includes(id))).toEqual([]);
  for (const release of RELEASE_NAMES) {
    for (const o of objects[release])
      expect(`${o.kind}/${o.metadata.name}`).toMatch(new RegExp(`^\\w+/${fullnameOf(release)}[-.]`));
    // Its topics on the Kafka cluster (a KafkaTopic is named as its topic), and what its services call them.
    const topics = ofKind(release, 'KafkaTopic').map((t) => t.metadata.name);
    expect(topics.sort()).toEqual(
      allTopics()
        .map((t) => `${prefixOf(release)}${t.name}`)
        .sort(),
    );
    for (const component of COMPONENT_NAMES)
      expect(configOf(release, component).ORDERSAGA_NAMESPACE).toBe(prefixOf(release));
    expect(configOf(release, 'operator')).toMatchObject({
      LEASE_NAME: `${fullnameOf(release)}-operator`,
      SAGAORDER_INSTANCE: release,
      SAGAORDER_ADOPT: String(RELEASES[release].adoptUnlabelled),
    });
    // The controller may renew its own release's Lease, which is the one it takes.
    const role = ofKind(release, 'Role')[0]!;
    const leases = (role as any).rules.find((r: any) => r.resourceNames)?.resourceNames;
    expect(leases).toEqual([`${fullnameOf(release)}-operator`]);
  }
});

test("a release's Services, budgets, monitors and policies select its own pods only", () => {
  for (const release of RELEASE_NAMES) {
    for (const service of ofKind(release, 'Service')) {
      const component = service.metadata.labels!['app.kubernetes.io/component'];
      expect({
        service: service.metadata.name,
        selects: pods().filter((p) => selects(service.spec.selector, p.labels)),
      }).toEqual({ service: service.metadata.name, selects: [expect.objectContaining({ release, component })] });
    }
    for (const budget of ofKind(release, 'PodDisruptionBudget')) {
      const selected = pods().filter((p) => selects(budget.spec.selector.matchLabels, p.labels));
      expect(selected.map((p) => `${p.release}/${p.component}`)).toEqual([
        `${release}/${budget.metadata.labels!['app.kubernetes.io/component']}`,
      ]);
    }
    // A ServiceMonitor selects Services: its release's one.
    const services = RELEASE_NAMES.flatMap((r) => ofKind(r, 'Service'));
    for (const monitor of ofKind(release, 'ServiceMonitor')) {
      const selected = services.filter((s) => selects(monitor.spec.selector.matchLabels, s.metadata.labels!));
      expect(selected.map((s) => s.metadata.name)).toEqual([monitor.metadata.name]);
    }
    // Each component's policy governs its own pods, and lets in or out only its own release's.
    for (const policy of ofKind(release, 'NetworkPolicy').filter((p) => p.spec.podSelector.matchLabels)) {
      const governed = pods().filter((p) => selects(policy.spec.podSelector.matchLabels, p.labels));
      expect(governed.every((p) => p.release === release)).toBe(true);
      const peers = [...(policy.spec.ingress ?? []), ...(policy.spec.egress ?? [])]
        .flatMap((rule: any) => rule.from ?? rule.to ?? [])
        .filter((peer: any) => peer.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'ordersaga');
      for (const peer of peers)
        expect(
          pods()
            .filter((p) => selects(peer.podSelector.matchLabels, p.labels))
            .map((p) => p.release),
        ).not.toContain(release === 'east' ? 'west' : 'east');
    }
  }
});

test("a release's Kafka users reach its topics, groups and transactional ids, and none of the other's", () => {
  for (const release of RELEASE_NAMES) {
    const other = RELEASE_NAMES.find((r) => r !== release)!;
    const otherTopics = ofKind(other, 'KafkaTopic').map((t) => t.metadata.name);
    for (const user of ofKind(release, 'KafkaUser')) {
      const component = user.metadata.labels!['app.kubernetes.io/component'] as ComponentName;
      const acls = user.spec.authorization.acls as Acl[];
      // What its runtime asks for, named with the release's prefix (TopicNamer).
      const ownGroup = `${prefixOf(release)}${component}.state-reader.${crypto.randomUUID()}`;
      expect(allows(acls, 'group', ownGroup, 'Read')).toBe(true);
      if (COMPONENTS[component].kind === 'service') {
        expect(allows(acls, 'group', `${prefixOf(release)}${component}`, 'Read')).toBe(true);
        expect(allows(acls, 'transactionalId', `${prefixOf(release)}${component}.task-0.a`, 'Write')).toBe(true);
        expect(allows(acls, 'topic', `${prefixOf(release)}${component}.state`, 'Write')).toBe(true);
      }
      for (const operation of ['Read', 'Write', 'Describe'])
        expect(otherTopics.filter((t) => allows(acls, 'topic', t, operation))).toEqual([]);
      for (const c of COMPONENT_NAMES) {
        expect(allows(acls, 'group', `${prefixOf(other)}${c}`, 'Read')).toBe(false);
        expect(allows(acls, 'group', `${prefixOf(other)}${c}.state-reader.x`, 'Read')).toBe(false);
        expect(allows(acls, 'transactionalId', `${prefixOf(other)}${c}.task-0.a`, 'Write')).toBe(false);
      }
    }
  }
});

/**
 * A component's settings as its release's ConfigMap gives them, but for where it listens and how it
 * reaches Kafka: the test's broker, plaintext and without SCRAM users (what Strimzi would provide).
 */
function settingsOf(release: Release, component: ComponentName): Record<string, string> {
  const {
    HOST: _host,
    PORT: _port,
    KAFKA_BROKERS: _brokers,
    KAFKA_SASL_USERNAME: _user,
    ...settings
  } = configOf(release, component);
  return settings;
}

/** What Strimzi's topic operator does with a release's KafkaTopics: the topics, as they say. */
async function createTopics(release: Release): Promise<void> {
  const admin = new Kafka({ brokers: process.env.KAFKA_BROKERS!.split(','), logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: ofKind(release, 'KafkaTopic').map((t) => ({
        topic: t.metadata.name,
        numPartitions: t.spec.partitions,
        replicationFactor: t.spec.replicas,
        configEntries: Object.entries(t.spec.config ?? {}).map(([name, value]) => ({ name, value: String(value) })),
      })),
    });
  } finally {
    await admin.disconnect();
  }
}

/**
 * The order.placed records a release's topic has for an order: read until the one expected shows
 * (a transaction's records are readable once its markers are written, a moment after its commit).
 */
async function placedOn(release: Release, orderId: string, expected: number): Promise<number> {
  if (expected > 0)
    await stacks[release].readTopicUntil('order.placed', `order.placed of ${orderId} on ${release}`, (records) =>
      records.some((r) => r.key === orderId),
    );
  return (await stacks[release].readTopic('order.placed')).filter((r) => r.key === orderId).length;
}

const sagaOrder = (name: string, labels: Record<string, string>) =>
  JSON.stringify({
    apiVersion: 'ordersaga.dev/v1alpha1',
    kind: 'SagaOrder',
    metadata: { name, namespace: NAMESPACE, labels },
    spec: { customerId: 'alice', items: [{ sku: 'KB-001', quantity: 1 }] },
  });

async function confirmedSagaOrder(name: string): Promise<any> {
  return eventually(
    `SagaOrder ${name} to be Confirmed`,
    async () => {
      const o = await cluster.json(['get', 'sagaorder', name, '-n', NAMESPACE]);
      return o.status?.phase === 'Confirmed' ? o : undefined;
    },
    60_000,
  );
}

test('each release runs its orders on its own topics, and its controller keeps its own SagaOrders', async () => {
  for (const release of RELEASE_NAMES) {
    await createTopics(release);
    const stack = new Stack({
      namespace: prefixOf(release),
      env: Object.fromEntries(COMPONENT_NAMES.map((c) => [c, settingsOf(release, c)])),
    });
    stacks[release] = stack;
    await stack.startAll();
    const kubeconfig = await cluster.serviceAccountKubeconfig(`${fullnameOf(release)}-operator`, NAMESPACE);
    await stack.start('operator', '0', { KUBECONFIG: kubeconfig, WATCH_NAMESPACE: NAMESPACE });
  }
  const [east, west] = [stacks.east, stacks.west];
  const orderStatus = async (stack: Stack, orderId: string) => (await stack.http('order', `/orders/${orderId}`)).status;

  // Over HTTP: each release's order is its own, unknown to the other.
  const orders = {} as Record<Release, string>;
  for (const release of RELEASE_NAMES) {
    const { body } = await stacks[release].placeOrder({ customerId: 'alice', items: [{ sku: 'KB-001', quantity: 2 }] });
    expect((await stacks[release].finished(body.orderId)).status).toBe('CONFIRMED');
    orders[release] = body.orderId;
  }
  expect(await orderStatus(west, orders.east)).toBe(404);
  expect(await orderStatus(east, orders.west)).toBe(404);
  // Mirrored by its release's controller, labelled so.
  for (const release of RELEASE_NAMES) {
    const mirror = await confirmedSagaOrder(orders[release]);
    expect(mirror.metadata.labels['app.kubernetes.io/instance']).toBe(release);
  }

  // With kubectl: a SagaOrder labelled west is West's; one that names no release East claims.
  await cluster.kubectl(['apply', '-f', '-'], {
    input: sagaOrder('for-west', { 'app.kubernetes.io/instance': 'west' }),
  });
  await cluster.kubectl(['apply', '-f', '-'], { input: sagaOrder('for-anyone', {}) });
  const forWest = await confirmedSagaOrder('for-west');
  const forAnyone = await confirmedSagaOrder('for-anyone');
  expect(forAnyone.metadata.labels['app.kubernetes.io/instance']).toBe('east');
  expect(await orderStatus(west, forWest.status.orderId)).toBe(200);
  expect(await orderStatus(east, forWest.status.orderId)).toBe(404);
  expect(await orderStatus(east, forAnyone.status.orderId)).toBe(200);
  expect(await orderStatus(west, forAnyone.status.orderId)).toBe(404);
  // Placed once each, on its release's topic only.
  for (const [release, orderId, count] of [
    ['west', forWest.status.orderId, 1],
    ['east', forWest.status.orderId, 0],
    ['east', forAnyone.status.orderId, 1],
    ['west', forAnyone.status.orderId, 0],
  ] as const)
    expect({ release, orderId, placed: await placedOn(release, orderId, count) }).toEqual({
      release,
      orderId,
      placed: count,
    });

  // What a user sees: each release's SagaOrders under its label; one Lease per release's controller.
  const names = async (release: Release) =>
    (
      await cluster.kubectl([
        'get',
        'sagaorders',
        '-n',
        NAMESPACE,
        '-l',
        `app.kubernetes.io/instance=${release}`,
        '-o',
        'name',
      ])
    )
      .trim()
      .split('\n')
      .map((n) => n.replace(/^sagaorder\.ordersaga\.dev\//, ''))
      .sort();
  expect(await names('east')).toEqual([orders.east, 'for-anyone'].sort());
  expect(await names('west')).toEqual([orders.west, 'for-west'].sort());
  for (const release of RELEASE_NAMES) {
    const lease = await cluster.json(['get', 'lease', `${fullnameOf(release)}-operator`, '-n', NAMESPACE]);
    expect(lease.spec.holderIdentity).toBe('operator-0');
  }
  // What a user of the two sees.
  const shown = await cluster.kubectl(['get', 'sagaorders,kafkatopics', '-A', '-L', 'app.kubernetes.io/instance']);
  const [header, ...rows] = shown.split('\n');
  const placedTopic = /order\.placed\s/;
  console.log(
    'kubectl get sagaorders,kafkatopics -A -L app.kubernetes.io/instance (of the KafkaTopics, order.placed only)\n' +
      [header, ...rows.filter((r) => !r.includes('kafkatopic') || placedTopic.test(r))].join('\n'),
  );
}, 240_000);

test('two controllers that both adopt: each SagaOrder that names no release is claimed by one, and placed once', async () => {
  // West adopts too now (a misconfiguration the claim makes harmless).
  const westConfig = await cluster.serviceAccountKubeconfig(`${fullnameOf('west')}-operator`, NAMESPACE);
  await stacks.west.stop('operator', '0');
  await stacks.west.start('operator', '0', {
    KUBECONFIG: westConfig,
    WATCH_NAMESPACE: NAMESPACE,
    SAGAORDER_ADOPT: 'true',
  });
  const names = Array.from({ length: 6 }, (_, i) => `contested-${i}`);
  await cluster.kubectl(['apply', '-f', '-'], { input: names.map((n) => sagaOrder(n, {})).join('\n---\n') });
  for (const name of names) {
    const object = await confirmedSagaOrder(name);
    const owner = object.metadata.labels['app.kubernetes.io/instance'] as Release;
    expect(RELEASE_NAMES).toContain(owner);
    const { orderId } = object.status;
    const other = owner === 'east' ? 'west' : 'east';
    expect({ name, owner: await placedOn(owner, orderId, 1), other: await placedOn(other, orderId, 0) }).toEqual({
      name,
      owner: 1,
      other: 0,
    });
  }
  // Each claimed once, by its owner: a claim that came second was refused (409), not applied.
  const claims = RELEASE_NAMES.flatMap((release) =>
    stacks[release]
      .logLines('operator', '0')
      .filter((l) => l.msg === 'SagaOrder claimed for this release' && names.includes(l.sagaOrder as string))
      .map((l) => l.sagaOrder),
  );
  expect(claims.sort()).toEqual([...names].sort());
  const conflicts = await Promise.all(
    RELEASE_NAMES.map(async (r) => {
      const text = await (await fetch(`${stacks[r].url('operator', '0')}/metrics`)).text();
      return Number(/ordersaga_operator_api_requests_total\{verb="patch",outcome="409"\} (\d+)/.exec(text)?.[1] ?? 0);
    }),
  );
  console.log(`6 contested SagaOrders: claims refused with 409 Conflict, east ${conflicts[0]}, west ${conflicts[1]}`);
}, 120_000);
