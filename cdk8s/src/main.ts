/**
 * `npm run synth -w @ordersaga/cdk8s`: writes the manifests to cdk8s/dist/ordersaga.k8s.yaml
 * (or to OUTDIR). DEV_KAFKA=true adds a one-node KRaft Kafka for a dev cluster.
 */
import { App, YamlOutputType } from 'cdk8s';
import { DEFAULTS, OrdersagaChart } from './ordersaga-chart.js';

const outdir = process.env.OUTDIR ?? new URL('../dist', import.meta.url).pathname;
const app = new App({ outdir, yamlOutputType: YamlOutputType.FILE_PER_CHART });
new OrdersagaChart(app, 'ordersaga', { ...DEFAULTS, devKafka: process.env.DEV_KAFKA === 'true' });
app.synth();
