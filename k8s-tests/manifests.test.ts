/**
 * The cdk8s model's manifests: valid for a real API server with the Strimzi and Prometheus
 * Operator CRDs installed, and within the project's policies.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import {
  allTopics,
  COMPONENT_NAMES,
  COMPONENTS,
  SAGA_TOPICS,
  STATE_TOPICS,
  type TopicSpec,
} from '@ordersaga/contracts';
import { deadLetterTopicOf } from '@ordersaga/runtime';
import { ROOT, TestCluster } from './support/cluster.js';
import { allows } from './support/kafka-acls.js';
import { DEFAULTS } from '../cdk8s/src/ordersaga-chart.js';

const NAMESPACE = 'ordersaga';
/** The plain manifests are one install's, named as a release `ordersaga` of the chart would be. */
const { fullname, topicPrefix } = DEFAULTS.release;

type Manifest = { apiVersion: string; kind: string; metadata: { name: string }; spec?: any };

async function synth(env: Record<string, string> = {}): Promise<{ file: string; objects: Manifest[] }> {
  const outdir = mkdtempSync(join(tmpdir(), 'ordersaga-synth-'));
  await promisify(execFile)(process.execPath, [join(ROOT, 'cdk8s', 'dist', 'main.js')], {
    env: { ...process.env, OUTDIR: outdir, ...env },
  });
  const file = join(outdir, 'ordersaga.k8s.yaml');
  return { file, objects: parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as Manifest) };
}

let cluster: TestCluster;
let manifests: { file: string; objects: Manifest[] };

beforeAll(async () => {
  manifests = await synth();
  cluster = await TestCluster.start();
  await cluster.installThirdPartyCrds();
  await cluster.kubectl(['create', 'namespace', NAMESPACE]);
});

afterAll(() => cluster?.stop());

const byKind = (kind: string) => manifests.objects.filter((o) => o.kind === kind);
const containers = () => byKind('Deployment').flatMap((d) => d.spec.template.spec.containers as any[]);

test('every object passes server-side validation (default and dev-Kafka synths)', async () => {
  await cluster.kubectl(['apply', '--dry-run=server', '-n', NAMESPACE, '-f', manifests.file]);
  const dev = await synth({ DEV_KAFKA: 'true' });
  expect(dev.objects.map((o) => o.kind)).toEqual(expect.arrayContaining(['Kafka', 'KafkaNodePool']));
  await cluster.kubectl(['apply', '--dry-run=server', '-n', NAMESPACE, '-f', dev.file]);
});

test("kubectl get kafkatopics lists exactly the saga topics, with the install's prefix", async () => {
  await cluster.kubectl(['apply', '-n', NAMESPACE, '-f', manifests.file]);
  const names = (await cluster.kubectl(['get', 'kafkatopics', '-n', NAMESPACE, '-o', 'name'])).trim().split('\n');
  expect(names.map((n) => n.replace(/^kafkatopic\.kafka\.strimzi\.io\//, '')).sort()).toEqual(
    allTopics()
      .map((t) => `${topicPrefix}${t.name}`)
      .sort(),
  );
  const state = await cluster.json(['get', 'kafkatopic', `${topicPrefix}order.state`, '-n', NAMESPACE]);
  expect(state.spec).toMatchObject({ partitions: 6, config: { 'cleanup.policy': 'compact' } });
});

test('policy: probes, requests and limits, the restricted securityContext, no latest tag', () => {
  expect(containers()).toHaveLength(COMPONENT_NAMES.length);
  for (const c of containers()) {
    expect({ name: c.name, liveness: !!c.livenessProbe, readiness: !!c.readinessProbe }).toEqual({
      name: c.name,
      liveness: true,
      readiness: true,
    });
    expect(c.resources.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
    expect(c.resources.limits).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.image).toMatch(/^[^:]+:[^:]+$/);
    expect(c.image).not.toMatch(/:latest$/);
  }
});

test("each component's KafkaUser can touch only its own topics and consumer groups", () => {
  // Computed here from the topic list, independently of the model.
  const saga = Object.entries(SAGA_TOPICS) as Array<[string, TopicSpec]>;
  const state = Object.entries(STATE_TOPICS) as Array<[string, TopicSpec]>;
  const expected = (service: string) => {
    const consumed = saga.filter(([, s]) => s.consumers.includes(service as never)).map(([t]) => t);
    return new Set([
      ...consumed,
      ...consumed.map((t) => deadLetterTopicOf(t as never)),
      ...saga.filter(([, s]) => s.producer === service).map(([t]) => t),
      ...state.filter(([, s]) => s.producer === service).map(([t]) => t),
      ...state.filter(([, s]) => s.readers?.includes(service as never)).map(([t]) => t),
    ]);
  };
  const users = byKind('KafkaUser');
  expect(users.map((u) => u.metadata.name).sort()).toEqual(COMPONENT_NAMES.map((c) => `${fullname}-${c}`).sort());
  for (const user of users) {
    const component = user.metadata.name.slice(`${fullname}-`.length);
    const acls = user.spec.authorization.acls as Array<{
      resource: { type: string; name: string; patternType: string };
      operations: string[];
    }>;
    const topics = new Set(acls.filter((a) => a.resource.type === 'topic').map((a) => a.resource.name));
    expect(acls.filter((a) => a.resource.type === 'topic').every((a) => a.resource.patternType === 'literal')).toBe(
      true,
    );
    const spec = COMPONENTS[component as (typeof COMPONENT_NAMES)[number]];
    // A controller's topics are declared in the registry; a service's follow from the topic list.
    const want = 'kafka' in spec ? new Set([...spec.kafka.reads, ...spec.kafka.writes]) : expected(component);
    expect({ component, topics: [...topics].sort() }).toEqual({
      component,
      topics: [...want].map((t) => `${topicPrefix}${t}`).sort(),
    });
    // Which consumer groups the user may use, asked of its ACLs as Kafka's authorizer would: the
    // groups the runtime names for this component, and none of another's.
    const mayUseGroup = (group: string) => allows(acls, 'group', group, 'Read');
    const groupsOf = (c: string) =>
      (COMPONENTS[c as (typeof COMPONENT_NAMES)[number]].kind === 'service'
        ? [c, `${c}.state-reader.${crypto.randomUUID()}`, `${c}.lookup.state-reader.${crypto.randomUUID()}`]
        : [`${c}.state-reader.${crypto.randomUUID()}`, `${c}.placed-reader.${crypto.randomUUID()}`]
      ).map((group) => `${topicPrefix}${group}`);
    for (const group of groupsOf(component))
      expect({ component, group, may: mayUseGroup(group) }).toEqual({ component, group, may: true });
    for (const other of COMPONENT_NAMES.filter((c) => c !== component))
      for (const group of [
        ...groupsOf(other),
        `${topicPrefix}${component}${other}`,
        `${topicPrefix}${component}-x`,
        // The same group without the install's prefix: another install's, or none.
        ...groupsOf(component).map((g) => g.slice(topicPrefix.length)),
      ])
        expect({ component, group, may: mayUseGroup(group) }).toEqual({ component, group, may: false });
  }
});
