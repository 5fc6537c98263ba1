#!/usr/bin/env node
// Plots a Grafana dashboard of the chart (charts/ordersaga/dashboards/*.json) from a real
// Prometheus into a PNG, without Grafana: every panel's queries are run as range queries with the
// dashboard's variables filled in, drawn with Vega-Lite and rasterized with resvg.
//
//   node scripts/render-dashboard.js [--prometheus http://127.0.0.1:9090] [--namespace local]
//     [--dashboard charts/ordersaga/dashboards/saga-overview.json] [--minutes 15]
//     [--rate-interval 1m] [--out docs/saga-overview.png]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile } from 'vega-lite';
// Built by `npm run build`.
import { expandQuery, panelsOf } from '../cdk8s/dist/dashboards.js';
import { queryPrometheus } from './prometheus.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    prometheus: { type: 'string', default: 'http://127.0.0.1:9090' },
    namespace: { type: 'string', default: 'local' },
    dashboard: { type: 'string', default: join(ROOT, 'charts', 'ordersaga', 'dashboards', 'saga-overview.json') },
    minutes: { type: 'string', default: '15' },
    'rate-interval': { type: 'string', default: '1m' },
    out: { type: 'string', default: join(ROOT, 'docs', 'saga-overview.png') },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(
    readFileSync(fileURLToPath(import.meta.url), 'utf8')
      .split('\n')
      .slice(1, 8)
      .join('\n'),
  );
  process.exit(0);
}

const dashboard = JSON.parse(readFileSync(values.dashboard, 'utf8'));
const minutes = Number(values.minutes);
const end = Math.floor(Date.now() / 1000);
const start = end - minutes * 60;
const range = { start, end, step: Math.max(1, Math.round((end - start) / 240)) };

/** The variables as Grafana fills them in for one namespace and every service. */
const variables = { namespace: values.namespace, service: '.*', rateInterval: values['rate-interval'] };

/** Grafana's legend format (`{{label}}`) applied to a series' labels. */
const legend = (format, metric) =>
  (format || '').replace(/\{\{\s*(\w+)\s*\}\}/g, (_, label) => metric[label] ?? '') ||
  Object.entries(metric)
    .map(([k, v]) => `${k}=${v}`)
    .join(',') ||
  'value';

/** Grafana units as an axis: its title and number format. */
const AXES = {
  percentunit: { title: null, format: '.0%' },
  s: { title: 'seconds', format: '.2~f' },
  ops: { title: 'per second', format: '.3~g' },
  reqps: { title: 'requests/s', format: '.3~g' },
  mps: { title: 'messages/s', format: '.3~g' },
  bytes: { title: 'bytes', format: '~s' },
};
const axisOf = (unit) => AXES[unit] ?? { title: null, format: '.3~g' };

const panels = panelsOf(dashboard).filter((p) => p.targets?.length);
const charts = [];
for (const panel of panels) {
  const points = [];
  for (const target of panel.targets) {
    const { result } = await queryPrometheus(values.prometheus, expandQuery(target.expr, variables), { range });
    for (const series of result) {
      const name = legend(target.legendFormat, series.metric);
      const values = series.values.filter(([, v]) => Number.isFinite(Number(v)));
      // Series that stayed at 0 (every dead-letter topic and kind, say) would only crowd the legend.
      if (!values.some(([, v]) => Number(v) !== 0)) continue;
      for (const [t, v] of values) points.push({ time: t * 1000, value: Number(v), series: name });
    }
  }
  console.log(`render-dashboard: ${panel.title}: ${points.length} points`);
  charts.push({
    title: panel.title,
    width: 300,
    height: 140,
    data: { values: points },
    mark: { type: 'line', interpolate: 'monotone' },
    encoding: {
      x: {
        field: 'time',
        type: 'temporal',
        title: null,
        scale: { domain: [start * 1000, end * 1000] },
        axis: { format: '%H:%M', tickCount: 6 },
      },
      y: { field: 'value', type: 'quantitative', axis: axisOf(panel.fieldConfig?.defaults?.unit) },
      color: {
        field: 'series',
        type: 'nominal',
        title: null,
        legend: { orient: 'bottom', columns: 2, labelLimit: 200, columnPadding: 8 },
      },
    },
  });
}

const spec = compile({
  $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
  title: {
    text: dashboard.title,
    subtitle: `namespace ${values.namespace}, ${minutes} minutes to ${new Date(end * 1000).toISOString()}, rates over ${values['rate-interval']}; series that stayed at 0 left out`,
  },
  config: { font: 'DejaVu Sans', background: 'white' },
  columns: 3,
  concat: charts,
  resolve: { scale: { color: 'independent' } },
}).spec;
const svg = await new vega.View(vega.parse(spec), { renderer: 'none', logLevel: vega.Warn }).toSVG();
const png = new Resvg(svg, { background: 'white', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } })
  .render()
  .asPng();
mkdirSync(dirname(values.out), { recursive: true });
writeFileSync(values.out, png);
console.log(`render-dashboard: ${panels.length} panels -> ${values.out} (${png.length} bytes)`);
