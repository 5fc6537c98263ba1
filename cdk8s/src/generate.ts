/**
 * `npm run generate`: writes every file derived from the component registry and the contracts
 * (services/contracts), so that a component, a topic or a phase is named in one place only:
 *
 * - the Helm chart's templates, dashboards and CRD (helm.ts, crd.ts);
 * - the per-component parts of the chart's values.yaml and values.schema.json;
 * - docs/asyncapi.json, the AsyncAPI document of the topics and messages;
 * - skaffold.yaml; the image list in the Dockerfile's notes; the root tsconfig.json's references;
 * - the README's component and topic tables.
 *
 * Hand-written files keep their own text outside `generated` markers. tests/generated.test.ts
 * fails when any of these is stale.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ASYNCAPI_FILE,
  asyncApiJson,
  COMPONENT_NAMES,
  COMPONENTS,
  SAGA_TOPICS,
  STATE_TOPICS,
  type ComponentName,
  type TopicSpec,
} from '@ordersaga/contracts';
import { chartFiles } from './helm.js';
import { DEFAULTS } from './ordersaga-chart.js';
import { PUBLIC_API } from './model.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHART = 'charts/ordersaga';
/** Where every file (of that kind) is generated: one there that the generator does not write is stale. */
export const GENERATED_DIRS = [
  { dir: `${CHART}/templates`, ending: '.yaml' }, // not _helpers.tpl, NOTES.txt
  { dir: `${CHART}/dashboards`, ending: '' },
  { dir: `${CHART}/crds`, ending: '' },
];
const LIBRARIES = ['services/runtime', 'services/contracts'];
/** Workspaces that are tools, not components: the command line. */
const TOOLS = ['cli'];

const imageOf = (c: ComponentName) => `ordersaga-${c}`;
const skaffoldVar = (c: ComponentName) => imageOf(c).replaceAll('-', '_');

/** Replaces what lies between `<begin>` and `<end>` marker lines (kept) of a hand-written file. */
function between(text: string, file: string, marker: string, body: string, comment = '#'): string {
  const begin = `${comment} generated:${marker} (npm run generate, from services/contracts: do not edit)`;
  const end = `${comment} end:${marker}`;
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from < 0 || to < from) throw new Error(`${file}: no "${begin}" ... "${end}" block`);
  // From the end of the begin marker's line to the start of the end marker's line.
  return `${text.slice(0, text.indexOf('\n', from) + 1)}${body}${text.slice(text.lastIndexOf('\n', to) + 1)}`;
}

function valuesYaml(text: string): string {
  const images = COMPONENT_NAMES.map((c) => `  ${c}: {repository: "", tag: ""}`);
  const components = COMPONENT_NAMES.flatMap((c, i) => [
    `  # -- ${COMPONENTS[c].description}`,
    `  ${c}:`,
    '    replicas: 1',
    '    logLevel: info',
    i === 0 ? '    resources: &resources' : '    resources: *resources',
    ...(i === 0 ? ['      requests: {cpu: 100m, memory: 128Mi}', '      limits: {cpu: "1", memory: 512Mi}'] : []),
  ]);
  return between(
    text,
    'values.yaml',
    'components',
    [
      '# -- Per-component image overrides (skaffold sets these): repository and tag (a tag may carry @digest).',
      'images:',
      ...images,
      '',
      '# -- Replicas, resources and log level per component.',
      'components:',
      ...components,
      '',
    ].join('\n'),
  );
}

function valuesSchema(text: string): string {
  const schema = JSON.parse(text);
  const each = (ref: string) => Object.fromEntries(COMPONENT_NAMES.map((c) => [c, { $ref: ref }]));
  schema.properties.images = {
    type: 'object',
    additionalProperties: false,
    description: 'Generated from the component registry: one entry per component.',
    properties: each('#/$defs/image'),
  };
  schema.properties.components = {
    type: 'object',
    additionalProperties: false,
    description: 'Generated from the component registry: one entry per component.',
    required: COMPONENT_NAMES,
    properties: each('#/$defs/component'),
  };
  return `${JSON.stringify(schema, null, 2)}\n`;
}

function skaffoldYaml(text: string): string {
  const artifacts = COMPONENT_NAMES.flatMap((c) => [
    `    - image: ${imageOf(c)}`,
    '      docker:',
    '        dockerfile: Dockerfile',
    `        buildArgs: {WORKSPACE: ${COMPONENTS[c].workspace}, PORT: "${COMPONENTS[c].port}"}`,
  ]);
  const values = COMPONENT_NAMES.flatMap((c) => [
    `          images.${c}.repository: "{{.IMAGE_REPO_${skaffoldVar(c)}}}"`,
    `          images.${c}.tag: "{{.IMAGE_TAG_${skaffoldVar(c)}}}@{{.IMAGE_DIGEST_${skaffoldVar(c)}}}"`,
  ]);
  const { name: publicComponent, port } = PUBLIC_API;
  // The release skaffold installs (deploy.helm.releases) is named as the model's install: its Services too.
  const service = `${DEFAULTS.release.fullname}-${publicComponent}`;
  const portForward = ['portForward:', '  - resourceType: service', `    resourceName: ${service}`];
  portForward.push('    namespace: ordersaga', `    port: ${port}`, `    localPort: ${port}`, '');
  let out = between(text, 'skaffold.yaml', 'artifacts', `  artifacts:\n${artifacts.join('\n')}\n`);
  out = between(out, 'skaffold.yaml', 'image-values', `${values.join('\n')}\n`);
  return between(out, 'skaffold.yaml', 'port-forward', portForward.join('\n'));
}

function dockerfile(text: string): string {
  const width = Math.max(...COMPONENT_NAMES.map((c) => COMPONENTS[c].workspace.length));
  const lines = COMPONENT_NAMES.map((c) => {
    const { workspace, port } = COMPONENTS[c];
    return `#   docker build --build-arg WORKSPACE=${workspace.padEnd(width)} --build-arg PORT=${port} -t ${imageOf(c)} .`;
  });
  return between(text, 'Dockerfile', 'images', `${lines.join('\n')}\n`);
}

function rootTsconfig(text: string): string {
  const tsconfig = JSON.parse(text);
  const workspaces = [...LIBRARIES, ...COMPONENT_NAMES.map((c) => COMPONENTS[c].workspace), ...TOOLS, 'cdk8s'];
  tsconfig.references = [...workspaces, 'tests', 'k8s-tests'].map((path) => ({ path }));
  return `${JSON.stringify(tsconfig, null, 2)}\n`;
}

function readme(text: string): string {
  const services = COMPONENT_NAMES.filter((c) => COMPONENTS[c].kind === 'service');
  const componentRows = services.map((c) => {
    const { port, endpoints } = COMPONENTS[c];
    return `| ${c} | http://127.0.0.1:${port} | ${endpoints.map((e) => `\`${e}\``).join(', ')} |`;
  });
  const topicRows = (Object.entries({ ...SAGA_TOPICS, ...STATE_TOPICS }) as Array<[string, TopicSpec]>).map(
    ([name, spec]) => {
      const to = [...spec.consumers, ...(spec.readers ?? []).map((reader) => `${reader} (lookup)`)];
      return `| \`${name}\` | ${spec.key ?? 'orderId'} | ${spec.producer} | ${to.join(', ')} | ${spec.description} |`;
    },
  );
  const table = (head: string, rows: string[]) => `${head}\n${rows.join('\n')}\n`;
  let out = between(
    text,
    'README.md',
    'services',
    table('| service | URL | what you can ask it |\n|---|---|---|', componentRows),
    '<!--',
  );
  out = between(
    out,
    'README.md',
    'topics',
    table('| topic | key | from | to | what |\n|---|---|---|---|---|', topicRows),
    '<!--',
  );
  return out;
}

/** Every generated file, by path from the repository root, as it should be now. */
export function generatedFiles(): Map<string, string> {
  const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');
  const files = new Map<string, string>();
  for (const [file, text] of chartFiles()) files.set(`${CHART}/${file}`, text);
  files.set(`${CHART}/values.yaml`, valuesYaml(read(`${CHART}/values.yaml`)));
  files.set(`${CHART}/values.schema.json`, valuesSchema(read(`${CHART}/values.schema.json`)));
  files.set('skaffold.yaml', skaffoldYaml(read('skaffold.yaml')));
  files.set('Dockerfile', dockerfile(read('Dockerfile')));
  files.set('tsconfig.json', rootTsconfig(read('tsconfig.json')));
  files.set('README.md', readme(read('README.md')));
  files.set(ASYNCAPI_FILE, asyncApiJson());
  return files;
}

/** Files in the generated folders that the generator does not write (a removed component's). */
export function strayFiles(files: Map<string, string>): string[] {
  return GENERATED_DIRS.flatMap(({ dir, ending }) =>
    existsSync(join(ROOT, dir))
      ? readdirSync(join(ROOT, dir))
          .filter((name) => name.endsWith(ending))
          .map((name) => `${dir}/${name}`)
      : [],
  ).filter((file) => !files.has(file));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const files = generatedFiles();
  for (const stray of strayFiles(files)) rmSync(join(ROOT, stray));
  let changed = 0;
  for (const [file, text] of files) {
    const path = join(ROOT, file);
    if (existsSync(path) && readFileSync(path, 'utf8') === text) continue;
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    console.log(`generate: wrote ${file}`);
    changed++;
  }
  console.log(`generate: ${files.size} files, ${changed} changed`);
}
