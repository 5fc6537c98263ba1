/**
 * The Grafana dashboards as the chart ships them (charts/ordersaga/dashboards/*.json; the chart
 * test checks they are what dashboards.ts generates): JSON that Grafana imports — a current
 * schema version, unique panel ids on the grid, every panel and query on the `datasource`
 * variable, the namespace and service variables — with queries that Prometheus' own promtool
 * parses and that use no variable but $namespace, $service and $__rate_interval.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { DASHBOARDS, expandQuery, panelsOf } from './dashboards.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'charts', 'ordersaga', 'dashboards');
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };
/** The schema versions of Grafana 11 and 12. */
const SCHEMA_VERSIONS = { min: 39, max: 42 };
/** What the end-to-end test substitutes before it evaluates the queries against a real stack. */
const VARIABLES = ['$namespace', '$service', '$__rate_interval'];

type Target = { expr: string; refId: string; datasource?: unknown };
type Panel = {
  id: number;
  type: string;
  title: string;
  datasource?: unknown;
  gridPos: { x: number; y: number; w: number; h: number };
  fieldConfig?: { defaults?: { unit?: string } };
  targets?: Target[];
  /** A row's panels. */
  panels?: Panel[];
};
type Variable = { type: string; name: string; query?: unknown };
type Model = {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
  annotations: { list: unknown[] };
};

const files = readdirSync(DIR).filter((f) => f.endsWith('.json'));
const dashboards = files.map((file) => ({ file, model: JSON.parse(readFileSync(join(DIR, file), 'utf8')) as Model }));
const targets = (model: Model) => panelsOf(model).flatMap((p) => p.targets ?? []);
const onGrid = ({ x, y, w, h }: Panel['gridPos']) =>
  [x, y, w, h].every(Number.isInteger) && x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= 24;

test('the chart has one JSON file per dashboard, with unique uids', () => {
  expect(files.sort()).toEqual(DASHBOARDS.map((d) => `${d.name}.json`).sort());
  const uids = dashboards.map((d) => d.model.uid);
  expect(new Set(uids).size).toBe(files.length);
  // Grafana's limit on a uid.
  for (const uid of uids) expect(uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
});

describe.each(dashboards)('$file', ({ model }) => {
  test('a dashboard model of a current schema version, with a title and annotations', () => {
    expect(model.title).toEqual(expect.any(String));
    expect(Number.isInteger(model.schemaVersion)).toBe(true);
    expect(model.schemaVersion).toBeGreaterThanOrEqual(SCHEMA_VERSIONS.min);
    expect(model.schemaVersion).toBeLessThanOrEqual(SCHEMA_VERSIONS.max);
    expect(model.annotations.list).toEqual(expect.any(Array));
  });

  test('variables: a Prometheus data source, the namespace, and the service where queries use it', () => {
    const variables = new Map(model.templating.list.map((v) => [v.name, v]));
    expect(variables.size).toBe(model.templating.list.length);
    expect(variables.get('datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(variables.get('namespace')).toMatchObject({ type: 'query', datasource: DATASOURCE });
    const usesService = targets(model).some((t) => t.expr.includes('$service'));
    expect(variables.has('service')).toBe(usesService);
    if (usesService) {
      expect(variables.get('service')).toMatchObject({
        type: 'query',
        datasource: DATASOURCE,
        multi: true,
        includeAll: true,
      });
    }
    for (const v of model.templating.list.filter((v) => v.type === 'query'))
      expect(v.query).toEqual(expect.stringContaining('label_values('));
  });

  test('panels: unique integer ids, on the 24-column grid, each with queries on the datasource variable', () => {
    // Rows have ids too: those of the rows and of the panels in them.
    const ids = model.panels.flatMap((p) => [p.id, ...(p.panels ?? []).map((inRow) => inRow.id)]);
    expect(ids.every(Number.isInteger)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    const all = panelsOf(model);
    expect(all.length).toBeGreaterThan(0);
    for (const panel of all) {
      expect({ title: panel.title, onGrid: onGrid(panel.gridPos) }).toEqual({ title: panel.title, onGrid: true });
      expect(['timeseries', 'stat', 'gauge']).toContain(panel.type);
      expect(panel.datasource).toEqual(DATASOURCE);
      expect(panel.fieldConfig?.defaults?.unit).toEqual(expect.any(String));
      expect(panel.targets?.length).toBeGreaterThan(0);
      const refIds = panel.targets!.map((t) => t.refId);
      expect(new Set(refIds).size).toBe(refIds.length);
      for (const target of panel.targets!) {
        expect(target.datasource).toEqual(DATASOURCE);
        expect(target.expr).toEqual(expect.any(String));
      }
    }
  });

  test('queries: only the namespace picked, the services picked, and the rate interval', () => {
    for (const { expr } of targets(model)) {
      expect({ expr, variables: [...new Set(expr.match(/\$\w+/g))].filter((v) => !VARIABLES.includes(v)) }).toEqual({
        expr,
        variables: [],
      });
      // Every selector is in the namespace picked; the services picked are a regex.
      for (const [matchers] of expr.matchAll(/\{[^}]*\}/g))
        expect({ expr, matchers }).toEqual({ expr, matchers: expect.stringContaining('namespace="$namespace"') });
      expect(expr.replaceAll('service=~"$service"', '')).not.toContain('$service');
      expect(expr).not.toMatch(/vector\(/);
    }
  });
});

test('promtool parses every query (as recording rules, with the variables substituted)', async () => {
  const rules = dashboards.map(({ file, model }) => ({
    name: file,
    rules: panelsOf(model).flatMap((panel) =>
      (panel.targets ?? []).map((target) => ({
        // Names a failing rule by its dashboard, panel and query.
        record: `dashboard:${file.replace(/\W/g, '_')}:panel_${panel.id}_${target.refId}`,
        expr: expandQuery(target.expr, { namespace: 'x', service: '.*', rateInterval: '1m' }),
      })),
    ),
  }));
  const file = join(mkdtempSync(join(tmpdir(), 'ordersaga-dashboards-')), 'rules.yaml');
  writeFileSync(file, stringify({ groups: rules }));
  const { stdout } = await promisify(execFile)('promtool', ['check', 'rules', file]).catch((err) => {
    throw new Error(
      `promtool check rules (Debian package prometheus) failed:\n${err.stdout ?? ''}${err.stderr ?? err}`,
    );
  });
  const count = rules.reduce((n, group) => n + group.rules.length, 0);
  expect(stdout).toContain(`SUCCESS: ${count} rules found`);
});
