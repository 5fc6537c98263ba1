/**
 * The Kubernetes commands of the READMEs, run as written (one shell per block, in the
 * repository's root) against the real API server with the Strimzi and Prometheus Operator CRDs.
 * The commands that need Docker, a kubelet or the internet are named below and left out: a
 * command added to a README is run, or has to be named here.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, TestCluster } from './support/cluster.js';

/** The commands no API server alone can run, and why. */
const NOT_HERE: ReadonlyArray<readonly [RegExp, string]> = [
  [/^kind create cluster/, 'needs Docker'],
  [/^helm install strimzi oci:\/\//, 'needs quay.io, and a kubelet to run the operator'],
  [/^skaffold dev /, 'needs Docker and a cluster that runs pods'],
  [/^helm test /, 'needs a kubelet to run its Pod (chart.test.ts checks the Pod it creates)'],
];

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start();
  await cluster.installThirdPartyCrds();
});

afterAll(() => cluster?.stop());

/** The ```sh blocks of a markdown text: of its `## heading` section when one is named, or of all but `except`. */
function shellBlocks(file: string, { heading, except }: { heading?: string; except?: string } = {}): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const section = (name: string) => {
    const start = text.indexOf(`\n## ${name}\n`);
    if (start < 0) throw new Error(`${file} has no section ${name}`);
    const end = text.indexOf('\n## ', start + 1);
    return text.slice(start, end < 0 ? undefined : end);
  };
  const chosen = heading ? section(heading) : except ? text.replace(section(except), '') : text;
  return [...chosen.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

/** A block's commands: continued lines joined, comments dropped. */
function commands(block: string): string[] {
  return block
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .map((line) => line.replace(/\s+#\s.*$/, '').trim())
    .filter(Boolean);
}

/** Runs the blocks' commands that can run here, as one script; returns the output and what was left out. */
async function runAsWritten(blocks: string[]): Promise<{ output: string; left: string[] }> {
  const all = blocks.flatMap(commands);
  const left = all.filter((c) => NOT_HERE.some(([pattern]) => pattern.test(c)));
  const output = await cluster.shell(all.filter((c) => !left.includes(c)).join('\n'));
  return { output, left };
}

test("README, On Kubernetes: the chart installed into the Kafka cluster's namespace, a SagaOrder applied and described", async () => {
  // "A cluster that runs Strimzi and a Kafka cluster": its namespace is there.
  await cluster.kubectl(['create', 'namespace', 'kafka']);
  const { output, left } = await runAsWritten(shellBlocks('README.md', { heading: 'On Kubernetes' }));
  expect(left.map((c) => c.split(' ').slice(0, 2).join(' '))).toEqual([
    'kind create',
    'helm install',
    'skaffold dev',
    'helm test',
  ]);
  expect(output).toMatch(/STATUS: deployed/);
  // skaffold, offline: its configuration, and the chart rendered with its images.
  expect(output).toMatch(/^apiVersion: skaffold\/v\S+$/m);
  expect(output).toMatch(/image: ordersaga-order:\S+/);
  expect(output).toMatch(/sagaorder\.ordersaga\.dev\/my-first-order created/);
  expect(output).toMatch(/Name:\s+my-first-order\nNamespace:\s+kafka/);
  const order = await cluster.json(['get', 'sagaorder', 'my-first-order', '-n', 'kafka']);
  expect(order.spec).toEqual({ customerId: 'alice', items: [{ sku: 'KB-001', quantity: 2 }] });
});

/** The chart as it was at its version 0.1 (the last commit before names derived from the release). */
const CHART_0_1 = '680f10370cf91cb2287ac6116aafc18e465aed66';

test('the chart README: a 0.1 release upgraded as it says, keeping its topics and users', async () => {
  const old = mkdtempSync(join(tmpdir(), 'ordersaga-chart-0.1-'));
  execFileSync('bash', ['-c', `git -C "${ROOT}" archive ${CHART_0_1} charts/ordersaga | tar -x -C "${old}"`]);
  await cluster.helm([
    'install',
    'ordersaga',
    join(old, 'charts', 'ordersaga'),
    '-n',
    'ordersaga',
    '--create-namespace',
    '--set',
    'auth.enabled=false',
  ]);
  // Uninstalled whatever happens: the next test installs a release of the same name.
  try {
    const uids = async () =>
      Object.fromEntries(
        (await cluster.json(['get', 'kafkatopics,kafkausers', '-n', 'ordersaga'])).items.map((o: any) => [
          `${o.kind}/${o.metadata.name}`,
          o.metadata.uid,
        ]),
      );
    const before = await uids();
    expect(Object.keys(before)).toContain('KafkaTopic/order.placed');

    const { output, left } = await runAsWritten(
      shellBlocks(join('charts', 'ordersaga', 'README.md'), { heading: 'Upgrading from chart 0.1' }),
    );
    expect(left).toEqual([]);
    expect(output).toMatch(/has been upgraded/);
    // The same KafkaTopics and KafkaUsers (so the same topics and credentials), and the new
    // chart's new topics beside them; new Deployments.
    expect(await uids()).toMatchObject(before);
    const order = await cluster.json(['get', 'deployment', 'ordersaga-order', '-n', 'ordersaga']);
    expect(order.spec.selector.matchLabels).toMatchObject({ 'app.kubernetes.io/instance': 'ordersaga' });
    const config = await cluster.json(['get', 'configmap', 'ordersaga-order', '-n', 'ordersaga']);
    expect(config.data.ORDERSAGA_NAMESPACE).toBe('');
  } finally {
    await cluster.helm(['uninstall', 'ordersaga', '-n', 'ordersaga', '--wait']);
  }
});

test('the chart README: installed into its own namespace, a second release beside it, the CRD upgraded as it says, the saga version raised', async () => {
  const { output, left } = await runAsWritten(
    shellBlocks(join('charts', 'ordersaga', 'README.md'), { except: 'Upgrading from chart 0.1' }),
  );
  expect(left).toEqual([]);
  expect(output).toMatch(/NAMESPACE: ordersaga\nSTATUS: deployed/);
  expect(output).toMatch(
    /customresourcedefinition\.apiextensions\.k8s\.io\/sagaorders\.ordersaga\.dev serverside-applied/,
  );
  for (const release of ['ordersaga', 'outlet']) {
    const deployments = await cluster.kubectl([
      'get',
      'deployments',
      '-n',
      'ordersaga',
      '-l',
      `app.kubernetes.io/instance=${release}`,
      '-o',
      'name',
    ]);
    expect(deployments.trim().split('\n')).toHaveLength(5);
  }
  expect(output).toMatch(/kafkatopic\.kafka\.strimzi\.io\/outlet-ordersaga\.order\.placed/);
  const order = await cluster.json(['get', 'sagaorder', 'outlet-order', '-n', 'ordersaga']);
  expect(order.metadata.labels['app.kubernetes.io/instance']).toBe('outlet');
  // "Changing the saga version": the release's new orders start on v2, the other release's do not.
  expect(output).toMatch(/Release "ordersaga" has been upgraded/);
  const version = async (configMap: string) =>
    (await cluster.json(['get', 'configmap', configMap, '-n', 'ordersaga'])).data.SAGA_VERSION;
  expect(await version('ordersaga-order')).toBe('2');
  expect(await version('outlet-ordersaga-order')).toBe('1');
});
