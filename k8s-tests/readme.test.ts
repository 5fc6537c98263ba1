/**
 * The Kubernetes commands of the READMEs, run as written (one shell per block, in the
 * repository's root) against the real API server with the Strimzi and Prometheus Operator CRDs.
 * The commands that need Docker, a kubelet or the internet are named below and left out: a
 * command added to a README is run, or has to be named here.
 */
import { readFileSync } from 'node:fs';
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

/** The ```sh blocks of a markdown text (of its `## heading` section when one is named). */
function shellBlocks(file: string, heading?: string): string[] {
  let text = readFileSync(join(ROOT, file), 'utf8');
  if (heading) {
    const start = text.indexOf(`\n## ${heading}\n`);
    if (start < 0) throw new Error(`${file} has no section ${heading}`);
    const end = text.indexOf('\n## ', start + 1);
    text = text.slice(start, end < 0 ? undefined : end);
  }
  return [...text.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
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
  const { output, left } = await runAsWritten(shellBlocks('README.md', 'On Kubernetes'));
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

test('the chart README: installed into its own namespace, the CRD upgraded as it says', async () => {
  const { output, left } = await runAsWritten(shellBlocks(join('charts', 'ordersaga', 'README.md')));
  expect(left).toEqual([]);
  expect(output).toMatch(/NAMESPACE: ordersaga\nSTATUS: deployed/);
  expect(output).toMatch(
    /customresourcedefinition\.apiextensions\.k8s\.io\/sagaorders\.ordersaga\.dev serverside-applied/,
  );
  const deployments = await cluster.kubectl(['get', 'deployments', '-n', 'ordersaga', '-o', 'name']);
  expect(deployments.trim().split('\n')).toHaveLength(5);
});
