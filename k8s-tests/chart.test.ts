/**
 * The Helm chart: lint-clean, renders with default and other values, valid for a real API server
 * with the Strimzi and Prometheus Operator CRDs, installs and uninstalls, ships the Grafana
 * dashboards, and says the same as the cdk8s model it is generated from.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { allTopics, COMPONENT_NAMES, COMPONENTS, SERVICE_NAMES } from '@ordersaga/contracts';
import { AUTH_VALUES, ROOT, TestCluster } from './support/cluster.js';

const CHART = join(ROOT, 'charts', 'ordersaga');
const run = promisify(execFile);

type Manifest = {
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
};
const parse = (text: string) =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as Manifest)
    .filter(Boolean);
/** An object of one of the components (not of `helm test`, say). */
const ofComponent = (o: Manifest) =>
  (COMPONENT_NAMES as readonly string[]).includes(o.metadata.labels?.['app.kubernetes.io/component'] ?? '');
const ids = (objects: Manifest[]) => objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start();
  await cluster.installThirdPartyCrds();
});

afterAll(() => cluster?.stop());

test('helm lint is clean', async () => {
  const out = await cluster.helm(['lint', CHART, '--strict', ...AUTH_VALUES]);
  expect(out).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
  expect(out).not.toMatch(/\[(WARNING|ERROR)\]/);
});

test('renders with default and with other values; both pass server-side validation', async () => {
  const defaults = parse(await cluster.helm(['template', 'shop', CHART, '-n', 'shop', ...AUTH_VALUES]));
  const deployments = defaults.filter((o) => o.kind === 'Deployment');
  expect(deployments).toHaveLength(COMPONENT_NAMES.length);
  expect(deployments.map((d) => d.spec.template.spec.containers[0].image)).toContain(
    'ghcr.io/ordersaga/ordersaga-order:0.1.0',
  );
  expect(defaults.some((o) => o.kind === 'Kafka')).toBe(false);
  for (const o of defaults)
    expect(o.metadata.labels).toMatchObject({
      'app.kubernetes.io/instance': 'shop',
      'app.kubernetes.io/managed-by': 'Helm',
    });

  const custom = parse(
    await cluster.helm([
      'template',
      'shop',
      CHART,
      '-n',
      'shop',
      ...AUTH_VALUES,
      '--set',
      'image.registry=registry.example/shop,image.tag=1.2.3,components.order.replicas=3,topics.partitions=12',
      '--set',
      'kafka.dev.enabled=true,kafka.cluster=dev,metrics.serviceMonitors=false,operator.mirrorMode=failed',
      '--set',
      'images.stock.repository=localhost/stock,images.stock.tag=abc@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
      '--set',
      'tracing.endpoint=http://otel-collector.observability:4317,tracing.protocol=grpc,tracing.port=4317',
      '--set',
      'saga.stepTimeoutMs=20000,saga.compensationTimeoutMs=5000,saga.startTimeoutMs=3000,saga.holdTimeMs=86400000',
    ]),
  );
  const order = custom.find((o) => o.kind === 'Deployment' && o.metadata.name === 'shop-ordersaga-order')!;
  expect(order.spec.replicas).toBe(3);
  expect(order.spec.template.spec.containers[0].image).toBe('registry.example/shop/ordersaga-order:1.2.3');
  const stock = custom.find((o) => o.kind === 'Deployment' && o.metadata.name === 'shop-ordersaga-stock')!;
  expect(stock.spec.template.spec.containers[0].image).toMatch(/^localhost\/stock:abc@sha256:/);
  expect(
    custom.find((o) => o.kind === 'KafkaTopic' && o.metadata.name === 'shop-ordersaga.order.placed')!.spec.partitions,
  ).toBe(12);
  expect(
    custom.find((o) => o.kind === 'KafkaTopic' && o.metadata.name === 'shop-ordersaga.order.placed.dlt')!.spec
      .partitions,
  ).toBe(1);
  expect(custom.filter((o) => o.kind === 'ServiceMonitor')).toHaveLength(0);
  expect(custom.find((o) => o.kind === 'Kafka')!.metadata.name).toBe('dev');
  expect(
    custom
      .filter((o) => o.metadata.labels?.['strimzi.io/cluster'])
      .every((o) => o.metadata.labels!['strimzi.io/cluster'] === 'dev'),
  ).toBe(true);
  expect(
    (custom.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'shop-ordersaga-operator') as any).data
      .MIRROR_MODE,
  ).toBe('failed');
  // Traces: every component exports to the collector, and may reach its port.
  for (const config of custom.filter((o) => o.kind === 'ConfigMap' && ofComponent(o)))
    expect((config as any).data).toMatchObject({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector.observability:4317',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    });
  // The saga's clock reaches the components that keep it, and only them.
  const configOf = (objects: typeof custom, component: string) =>
    (objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === `shop-ordersaga-${component}`) as any).data;
  expect(configOf(custom, 'order')).toMatchObject({
    SAGA_STEP_TIMEOUT_MS: '20000',
    SAGA_COMPENSATION_TIMEOUT_MS: '5000',
    ORDER_START_TIMEOUT_MS: '3000',
  });
  const readsSettings = (c: (typeof COMPONENT_NAMES)[number]) => 'sagaSettings' in COMPONENTS[c];
  for (const component of ['stock', 'billing']) {
    expect(configOf(custom, component).HOLD_TIME_MS).toBe('86400000');
    expect(configOf(defaults, component).HOLD_TIME_MS).toBe('600000');
  }
  for (const component of COMPONENT_NAMES.filter((c) => !readsSettings(c)))
    expect(Object.keys(configOf(custom, component))).not.toEqual(
      expect.arrayContaining([expect.stringMatching(/TIMEOUT_MS|HOLD_TIME_MS/)]),
    );
  // Each component's policy (not the default deny) opens the collector's port (to any address: no networkPolicy.collector).
  for (const policy of custom.filter((o) => o.kind === 'NetworkPolicy' && ofComponent(o)))
    expect(policy.spec.egress).toContainEqual({ to: [], ports: [{ protocol: 'TCP', port: 4317 }] });

  await cluster.kubectl(['create', 'namespace', 'shop']);
  await cluster.kubectl(['apply', '-f', join(CHART, 'crds')]);
  for (const [name, objects] of [
    ['default', defaults],
    ['custom', custom],
  ] as const) {
    const file = join(cluster.runDir, `${name}.yaml`);
    writeFileSync(file, objects.map((o) => JSON.stringify(o)).join('\n---\n'));
    await cluster.kubectl(['apply', '--dry-run=server', '-n', 'shop', '-f', file]);
  }
  // A values typo is refused with the reason.
  for (const tag of ['image.tag=latest', 'images.order.tag=latest'])
    await expect(cluster.helm(['template', 'shop', CHART, '--set', tag, ...AUTH_VALUES])).rejects.toThrow(
      /tag': value must be 'a pinned version, not latest \(a tag that moves runs different code/,
    );
  await expect(cluster.helm(['template', 'shop', CHART, '--set', 'saga.holdTimeMs=0', ...AUTH_VALUES])).rejects.toThrow(
    /saga\/holdTimeMs/,
  );
});

test('security values reach the components: API authentication, webhooks, Kafka TLS and its authentication', async () => {
  const configOf = (objects: Manifest[], component: string) =>
    (objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === `shop-ordersaga-${component}`) as any).data;
  const envOf = (objects: Manifest[], component: string) =>
    (objects.find((o) => o.kind === 'Deployment' && o.metadata.name === `shop-ordersaga-${component}`) as any).spec
      .template.spec.containers[0].env as Array<{ name: string; valueFrom?: unknown }>;

  // On by default, and refused without keys, saying what to do.
  await expect(cluster.helm(['template', 'shop', CHART])).rejects.toThrow(
    /auth.enabled is true but neither auth.jwksUrl nor auth.jwksSecret is set/,
  );
  const secured = parse(
    await cluster.helm([
      'template',
      'shop',
      CHART,
      '--set',
      'auth.jwksSecret=shop-jwks,auth.issuer=https://idp.example.test,rateLimit.perMinute=120',
      '--set',
      'webhooks.urls.alice=https://hooks.example.com/alice,webhooks.allowHttp=true',
    ]),
  );
  for (const service of SERVICE_NAMES) {
    expect(configOf(secured, service)).toMatchObject({
      AUTH_JWKS_URL: '',
      AUTH_ISSUER: 'https://idp.example.test',
      AUTH_AUDIENCE: 'ordersaga',
      RATE_LIMIT_MAX: '120',
      KAFKA_TLS: 'true',
      KAFKA_TLS_CA_FILE: '/etc/ordersaga/kafka-ca/ca.crt',
      KAFKA_SASL_USERNAME: `shop-ordersaga-${service}`,
    });
    expect(envOf(secured, service)).toContainEqual({
      name: 'AUTH_JWKS',
      valueFrom: { secretKeyRef: { name: 'shop-jwks', key: 'jwks.json' } },
    });
  }
  // The controller serves no API: no authentication settings.
  expect(Object.keys(configOf(secured, 'operator'))).not.toContain('AUTH_JWKS_URL');
  expect(configOf(secured, 'notification')).toMatchObject({
    NOTIFICATION_WEBHOOKS: JSON.stringify({ alice: 'https://hooks.example.com/alice' }),
    NOTIFICATION_WEBHOOK_ALLOW_HTTP: 'true',
  });

  const open = parse(
    await cluster.helm(['template', 'shop', CHART, '--set', 'auth.enabled=false,auth.jwksSecret=ignored']),
  );
  expect(configOf(open, 'order').AUTH_JWKS_URL).toBe('');
  expect(envOf(open, 'order').map((e) => e.name)).not.toContain('AUTH_JWKS');

  // mTLS: the KafkaUsers say tls, the clients take the user's certificate, no SCRAM user.
  const mtls = parse(
    await cluster.helm(['template', 'shop', CHART, '--set', 'kafka.authentication=tls', ...AUTH_VALUES]),
  );
  for (const user of mtls.filter((o) => o.kind === 'KafkaUser'))
    expect((user as any).spec.authentication.type).toBe('tls');
  expect(configOf(mtls, 'stock')).toMatchObject({
    KAFKA_SASL_USERNAME: '',
    KAFKA_TLS_CERT_FILE: '/etc/ordersaga/kafka-user/user.crt',
    KAFKA_TLS_KEY_FILE: '/etc/ordersaga/kafka-user/user.key',
  });
  await expect(
    cluster.helm(['template', 'shop', CHART, '--set', 'kafka.authentication=tls,kafka.tls=false', ...AUTH_VALUES]),
  ).rejects.toThrow(/kafka\/tls/);
});

test('helm install succeeds, kubectl get kafkatopics lists the topics, helm uninstall removes it all', async () => {
  await cluster.helm([
    'install',
    'saga',
    CHART,
    '-n',
    'saga',
    '--create-namespace',
    '--set',
    'metrics.labels.release=kps',
    ...AUTH_VALUES,
  ]);
  const topics = (await cluster.kubectl(['get', 'kafkatopics', '-n', 'saga', '-o', 'name'])).trim().split('\n');
  expect(topics).toHaveLength(allTopics().length);
  const installed = await releaseObjects();
  expect(installed.length).toBeGreaterThan(60);

  // Selected as users select them: the application by its name, a part by its component...
  expect(await releaseObjects('app.kubernetes.io/name=ordersaga')).toEqual(installed);
  for (const component of COMPONENT_NAMES) {
    const selected = await cluster.kubectl([
      'get',
      'deployments',
      '-n',
      'saga',
      '-l',
      `app.kubernetes.io/name=ordersaga,app.kubernetes.io/component=${component}`,
      '-o',
      'name',
    ]);
    expect(selected.trim()).toBe(`deployment.apps/saga-ordersaga-${component}`);
  }
  // ...and the monitoring objects as kube-prometheus-stack's default selectors do (release: <its release>).
  const discovered = await cluster.kubectl([
    'get',
    'servicemonitors,prometheusrules',
    '-n',
    'saga',
    '-l',
    'release=kps',
    '-o',
    'name',
  ]);
  expect(discovered.trim().split('\n').sort()).toEqual(
    [
      ...COMPONENT_NAMES.map((c) => `servicemonitor.monitoring.coreos.com/saga-ordersaga-${c}`),
      'prometheusrule.monitoring.coreos.com/saga-ordersaga-alerts',
    ].sort(),
  );

  // `helm test` creates its Pod, which the API server takes (no kubelet runs it here: helm gives
  // up waiting). What it asks for are the release's Services, on their ports.
  await expect(cluster.helm(['test', 'saga', '-n', 'saga', '--timeout', '3s'])).rejects.toThrow();
  const pod = await cluster.json(['get', 'pod', 'saga-ordersaga-helm-test', '-n', 'saga']);
  const env = Object.fromEntries(
    (pod.spec.containers[0].env as Array<{ name: string; value?: string }>).map((e) => [e.name, e.value]),
  );
  const readyz = env.ORDERSAGA_READYZ!.split(' ');
  expect(readyz).toHaveLength(COMPONENT_NAMES.length);
  for (const url of [...readyz, env.ORDERSAGA_ORDER_URL!]) {
    const { hostname, port } = new URL(url);
    const service = await cluster.json(['get', 'service', hostname, '-n', 'saga']);
    expect(service.spec.ports.map((p: { port: number }) => p.port)).toContain(Number(port));
  }
  expect(JSON.parse(env.ORDERSAGA_ORDER!)).toEqual({ customerId: 'alice', items: [{ sku: 'KB-001', quantity: 1 }] });
  // Authentication on and no token given: readiness only, and it says why.
  expect(env.ORDERSAGA_NO_ORDER).toMatch(/tests\.tokenSecret names none/);
  const script = await cluster.json(['get', 'configmap', 'saga-ordersaga-helm-test', '-n', 'saga']);
  expect(script.data['helm-test.mjs']).toBe(readFileSync(join(ROOT, 'scripts', 'helm-test.mjs'), 'utf8'));
  // Test hooks are not the release's: they stay (the Pod for its logs) until the next `helm test`.
  await cluster.kubectl([
    'delete',
    'pod,configmap,networkpolicy',
    '-n',
    'saga',
    '-l',
    'app.kubernetes.io/component=helm-test',
  ]);

  // The CRD is upgraded as the chart's README says (Helm leaves crds/ alone after the install).
  await cluster.kubectl(['apply', '--server-side', '--force-conflicts', '-f', join(CHART, 'crds')]);

  await cluster.helm(['uninstall', 'saga', '-n', 'saga', '--wait']);
  const left = await releaseObjects();
  expect(left).toEqual([]);
  // The CRD stays, as Helm does with crds/: SagaOrders outlive a reinstall.
  await cluster.kubectl(['get', 'crd', 'sagaorders.ordersaga.dev']);
});

test('Grafana dashboards: a ConfigMap per dashboard file for the sidecar, none when turned off', async () => {
  const files = readdirSync(join(CHART, 'dashboards')).sort();
  expect(files).toHaveLength(4);
  const dashboards = (objects: Manifest[]) =>
    objects.filter((o) => o.kind === 'ConfigMap' && o.metadata.labels?.grafana_dashboard === '1');
  const rendered = dashboards(parse(await cluster.helm(['template', 'shop', CHART, '-n', 'shop', ...AUTH_VALUES])));
  expect(rendered.flatMap((c) => Object.keys(c.data!)).sort()).toEqual(files);
  for (const configMap of rendered) {
    expect(configMap.metadata.annotations).toEqual({ grafana_folder: 'ordersaga' });
    expect(configMap.metadata.labels).toMatchObject({ 'app.kubernetes.io/instance': 'shop' });
    for (const [file, json] of Object.entries(configMap.data!)) {
      expect(JSON.parse(json)).toEqual(JSON.parse(readFileSync(join(CHART, 'dashboards', file), 'utf8')));
      // A ConfigMap holds 1 MiB, but `kubectl apply` also copies it into an annotation: 256 KiB.
      expect(Buffer.byteLength(json)).toBeLessThan(256 * 1024);
    }
  }
  const off = parse(
    await cluster.helm(['template', 'shop', CHART, '--set', 'metrics.grafanaDashboards=false', ...AUTH_VALUES]),
  );
  expect(dashboards(off)).toEqual([]);
});

/** Everything of release "saga" in its namespace, by the instance label Helm's labels put on it. */
/** The objects of the release `saga` (and of the label selector given). */
async function releaseObjects(selector?: string): Promise<string[]> {
  const kinds =
    'all,configmaps,serviceaccounts,kafkatopics,kafkausers,networkpolicies,poddisruptionbudgets,servicemonitors,prometheusrules,roles,rolebindings';
  const out = await cluster.kubectl([
    'get',
    kinds,
    '-n',
    'saga',
    '-l',
    ['app.kubernetes.io/instance=saga', selector].filter(Boolean).join(','),
    '-o',
    'name',
  ]);
  return out.trim().split('\n').filter(Boolean);
}

test('the chart and the cdk8s model agree: the templates are what the model generates', async () => {
  const fresh = mkdtempSync(join(tmpdir(), 'ordersaga-chart-'));
  cpSync(CHART, fresh, { recursive: true });
  await run(process.execPath, [join(ROOT, 'cdk8s', 'dist', 'helm.js')], { env: { ...process.env, CHART_DIR: fresh } });
  const filesOf = (dir: string) =>
    readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .filter((f) => statSync(join(dir, f)).isFile())
      .sort();
  for (const dir of ['templates', 'dashboards']) {
    expect(filesOf(join(fresh, dir))).toEqual(filesOf(join(CHART, dir)));
    for (const file of filesOf(join(CHART, dir))) {
      expect({ file, text: readFileSync(join(fresh, dir, file), 'utf8') }).toEqual({
        file,
        text: readFileSync(join(CHART, dir, file), 'utf8'),
      });
    }
  }
  // Same objects: the chart (dev Kafka and monitors on) and the model's synthesis (which has no
  // `helm test`).
  const outdir = mkdtempSync(join(tmpdir(), 'ordersaga-synth-'));
  await run(process.execPath, [join(ROOT, 'cdk8s', 'dist', 'main.js')], {
    env: { ...process.env, OUTDIR: outdir, DEV_KAFKA: 'true' },
  });
  const model = parse(readFileSync(join(outdir, 'ordersaga.k8s.yaml'), 'utf8')).filter(
    (o) => o.kind !== 'CustomResourceDefinition',
  );
  // A release named as the model's install (DEFAULTS.release), so that every name is the same.
  const chart = parse(
    await cluster.helm([
      'template',
      'ordersaga',
      CHART,
      '--skip-tests',
      '--set',
      'kafka.dev.enabled=true',
      ...AUTH_VALUES,
    ]),
  );
  expect(ids(chart)).toEqual(ids(model));
  const acls = (objects: Manifest[]) =>
    Object.fromEntries(
      objects.filter((o) => o.kind === 'KafkaUser').map((u) => [u.metadata.name, u.spec.authorization.acls]),
    );
  expect(acls(chart)).toEqual(acls(model));
});
