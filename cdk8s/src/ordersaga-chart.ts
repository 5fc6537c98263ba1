/**
 * The ordersaga deployment as one cdk8s chart: per component a Deployment, Service,
 * ServiceAccount, ConfigMap, PodDisruptionBudget, NetworkPolicy and ServiceMonitor; a Strimzi
 * KafkaTopic per topic and a KafkaUser per component with ACLs for exactly its topics, groups
 * and transactional ids; the SagaOrder CRD and the controller's RBAC; the alerts and the Grafana
 * dashboards; optionally a one-node KRaft Kafka for a dev cluster.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiObject, Chart, Duration, Include, JsonPatch, Size, type ChartProps } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import { parseAllDocuments } from 'yaml';
import { ALERT_RULE_GROUPS } from './alerts.js';
import { sagaOrderCrd } from './crd.js';
import { DASHBOARDS, dashboardJson, SIDECAR_LABEL } from './dashboards.js';
import {
  COMPONENTS as REGISTRY,
  DEFAULT_ORDER_SAGA_VERSION,
  NON_PUBLIC_IPV4,
  RELEASE_LABEL,
  type ComponentSpec,
} from '@ordersaga/contracts';
import { allTopics, COMPONENTS, PUBLIC_API, type Component, type ComponentName } from './model.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const OPERATOR_RBAC_FILE = join(ROOT, 'operator', 'rbac.yaml');

export interface OrdersagaProps extends ChartProps {
  /**
   * What the install is called: every object's name starts with `fullname` (`<fullname>-order`),
   * its pods carry `app.kubernetes.io/instance: <name>`, and its topics, consumer groups and
   * transactional ids start with `topicPrefix` (the runtime's ORDERSAGA_NAMESPACE), so that two
   * installs share a namespace and a Kafka cluster without touching each other's.
   */
  readonly release: { readonly name: string; readonly fullname: string; readonly topicPrefix: string };
  /** Image registry and tag of every component (repository `ordersaga-<component>`). */
  readonly images: { readonly registry: string; readonly tag: string };
  readonly replicas?: Partial<Record<ComponentName, number>>;
  /** The Strimzi Kafka cluster the topics and users belong to. */
  readonly kafkaCluster: string;
  /** Bootstrap servers of the listener the components use (host:port, comma-separated). */
  readonly kafkaBootstrap: string;
  /** TLS to that listener, trusting the cluster CA (Strimzi's `<cluster>-cluster-ca-cert` Secret). */
  readonly kafkaTls: boolean;
  /** How each component's KafkaUser authenticates: a SCRAM-SHA-512 password, or its TLS certificate (mTLS). */
  readonly kafkaAuthentication: KafkaAuthentication;
  readonly topicPartitions: number;
  readonly topicReplicas: number;
  /** A one-node KRaft Kafka (Kafka + KafkaNodePool) for a dev cluster. */
  readonly devKafka: boolean;
  /** ServiceMonitors for the Prometheus Operator. */
  readonly serviceMonitors: boolean;
  /** The namespace Prometheus scrapes from: the only source allowed to reach a non-public port. */
  readonly monitoringNamespace: string;
  /** The alerts, as a PrometheusRule for the Prometheus Operator. */
  readonly prometheusRules: boolean;
  /** The Grafana dashboards, as ConfigMaps for kube-prometheus-stack's Grafana sidecar. */
  readonly grafanaDashboards: boolean;
  /**
   * Where every component sends its traces (OTLP): the OpenTelemetry SDK's own variables. An
   * empty endpoint exports nothing; trace ids still go from request to messages to logs.
   */
  readonly tracing: {
    readonly endpoint: string;
    readonly protocol: 'http/protobuf' | 'http/json' | 'grpc';
    /** The collector's port, opened in the NetworkPolicies' egress. */
    readonly port: number;
    readonly sampler: string;
    readonly samplerArg: string;
  };
  readonly operator: {
    /**
     * Whether the install's controller places SagaOrders that name no install (no instance label),
     * claiming each first; the others place only those labelled with their release.
     */
    readonly adoptUnlabelled: boolean;
    readonly mirrorMode: 'all' | 'failed' | 'sampled';
    readonly ttlSeconds: number;
    readonly apiQps: number;
    readonly apiBurst: number;
  };
  /**
   * A NetworkPolicy that denies every pod of the namespace all traffic but what a policy allows:
   * every pod but Strimzi's (label strimzi.io/kind), which come with policies of their own.
   */
  readonly defaultDeny: boolean;
  /** The version new sagas start on, and the saga's clock (milliseconds): see SAGA_SETTINGS. */
  readonly saga: Record<(typeof SAGA_SETTINGS)[number]['value'], number>;
  /**
   * The `helm test` hook (the chart's, not the plain manifests'): a Pod that asks every
   * component whether it is ready and places one order through the API (scripts/helm-test.mjs).
   */
  readonly helmTest: boolean;
}

/** The saga's version and clock: each setting (a value `saga.<value>`) and its variable (the registry says who reads which). */
export const SAGA_SETTINGS = [
  { value: 'version', env: 'SAGA_VERSION' },
  { value: 'stepTimeoutMs', env: 'SAGA_STEP_TIMEOUT_MS' },
  { value: 'compensationTimeoutMs', env: 'SAGA_COMPENSATION_TIMEOUT_MS' },
  { value: 'startTimeoutMs', env: 'ORDER_START_TIMEOUT_MS' },
  { value: 'holdTimeMs', env: 'HOLD_TIME_MS' },
] as const satisfies ReadonlyArray<{ value: NonNullable<ComponentSpec['sagaSettings']>[number]; env: string }>;

/** The saga settings a component reads. */
export const sagaSettingsOf = (component: ComponentName) => {
  const reads: readonly string[] = (REGISTRY[component] as ComponentSpec).sagaSettings ?? [];
  return SAGA_SETTINGS.filter((s) => reads.includes(s.value));
};

export const DEFAULTS: OrdersagaProps = {
  release: { name: 'ordersaga', fullname: 'ordersaga', topicPrefix: 'ordersaga.' },
  images: { registry: 'ghcr.io/ordersaga', tag: '0.1.0' },
  kafkaCluster: 'ordersaga',
  kafkaBootstrap: 'ordersaga-kafka-bootstrap:9093',
  kafkaTls: true,
  kafkaAuthentication: 'scram-sha-512',
  defaultDeny: true,
  topicPartitions: 6,
  topicReplicas: 1,
  devKafka: false,
  serviceMonitors: true,
  monitoringNamespace: 'monitoring',
  prometheusRules: true,
  grafanaDashboards: true,
  tracing: { endpoint: '', protocol: 'http/protobuf', port: 4318, sampler: 'parentbased_always_on', samplerArg: '' },
  operator: { adoptUnlabelled: true, mirrorMode: 'all', ttlSeconds: 3_600, apiQps: 20, apiBurst: 40 },
  saga: {
    version: DEFAULT_ORDER_SAGA_VERSION,
    stepTimeoutMs: 15_000,
    compensationTimeoutMs: 15_000,
    startTimeoutMs: 10_000,
    holdTimeMs: 600_000,
  },
  helmTest: false,
};

/** The order `helm test` places by default: one the Stock service's default catalogue has. */
export const HELM_TEST_ORDER = { customerId: 'alice', items: [{ sku: 'KB-001', quantity: 1 }] };

const STRIMZI = 'kafka.strimzi.io/v1';

/**
 * The labels of every object: the application (`app.kubernetes.io/name`, the same on all); a
 * component's objects add `app.kubernetes.io/component`, and Helm its release's labels.
 */
const APP_LABELS = { 'app.kubernetes.io/name': 'ordersaga', 'app.kubernetes.io/part-of': 'ordersaga' };

/** The component label of the `helm test` Pod and of what it comes with. */
export const HELM_TEST = 'helm-test';
const HELM_TEST_SCRIPT = join(ROOT, 'scripts', 'helm-test.mjs');
/** The names operator/rbac.yaml gives its ServiceAccount, Role, RoleBinding and Lease: the chart's are the release's. */
const RBAC_FILE_NAME = 'ordersaga-operator';

export const KAFKA_AUTHENTICATIONS = ['scram-sha-512', 'tls'] as const;
export type KafkaAuthentication = (typeof KAFKA_AUTHENTICATIONS)[number];

/**
 * Where a pod finds the cluster CA and its KafkaUser's Secret (Strimzi writes `password` for
 * SCRAM, `user.crt` and `user.key` for mTLS), and the client settings that point there.
 */
export const KAFKA_CA_DIR = '/etc/ordersaga/kafka-ca';
export const KAFKA_USER_DIR = '/etc/ordersaga/kafka-user';
/** Where a service keeps its state store: an emptyDir, so a restarted container reads only the tail. */
export const STATE_DIR = '/var/lib/ordersaga/state';
export const kafkaClientSettings = (user: string, tls: boolean, authentication: KafkaAuthentication) => ({
  KAFKA_TLS: String(tls),
  KAFKA_TLS_CA_FILE: tls ? `${KAFKA_CA_DIR}/ca.crt` : '',
  KAFKA_SASL_USERNAME: authentication === 'scram-sha-512' ? user : '',
  KAFKA_TLS_CERT_FILE: authentication === 'tls' ? `${KAFKA_USER_DIR}/user.crt` : '',
  KAFKA_TLS_KEY_FILE: authentication === 'tls' ? `${KAFKA_USER_DIR}/user.key` : '',
});

/** The index of a component's egress rule for a peer it calls: after Kafka, DNS and the collector. */
export const EXTRA_EGRESS_RULE = 3;

/** The port of the first bootstrap server: the one Kafka port the NetworkPolicies open. */
export const kafkaPortOf = (bootstrap: string) => Number(bootstrap.split(',')[0]!.split(':').at(-1));

/** A NetworkPolicy port: IntOrString, since cdk8s-plus drops a plain number from a typed NetworkPolicyPort. */
const tcp = (port: number) => ({ protocol: 'TCP', port: kplus.k8s.IntOrString.fromNumber(port) });

/** Egress to the cluster's DNS, on 53 (UDP and TCP). */
const DNS_EGRESS = {
  to: [{ namespaceSelector: {}, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
  ports: [{ protocol: 'UDP', port: kplus.k8s.IntOrString.fromNumber(53) }, tcp(53)],
};

const GRAFANA_FOLDER = 'ordersaga';

export class OrdersagaChart extends Chart {
  constructor(
    scope: Construct,
    id: string,
    private readonly props: OrdersagaProps,
  ) {
    super(scope, id, props);
    if (props.devKafka) this.devKafka();
    for (const topic of allTopics(props.topicPartitions)) {
      new ApiObject(this, `topic-${topic.name}`, {
        apiVersion: STRIMZI,
        kind: 'KafkaTopic',
        // Named as the topic (Strimzi's default), so that a release installed before topics had
        // a prefix keeps its KafkaTopics, and so its topics, with kafka.topicPrefix="".
        metadata: {
          name: this.topicOf(topic.name),
          labels: { ...this.labelsOf(), 'strimzi.io/cluster': props.kafkaCluster },
        },
        spec: {
          partitions: topic.partitions,
          replicas: props.topicReplicas,
          config: topic.config,
        },
      });
    }
    new ApiObject(this, 'sagaorder-crd', sagaOrderCrd());
    this.operatorRbac();
    for (const component of COMPONENTS) this.component(component);
    if (props.prometheusRules) {
      new ApiObject(this, 'alerts', {
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'PrometheusRule',
        metadata: { name: this.nameOf('alerts'), labels: this.labelsOf() },
        spec: ALERT_RULE_GROUPS,
      });
    }
    if (props.grafanaDashboards) this.grafanaDashboards();
    if (props.helmTest) this.helmTest();
    if (props.defaultDeny) {
      new kplus.k8s.KubeNetworkPolicy(this, 'default-deny', {
        metadata: { name: this.nameOf('default-deny'), labels: this.labelsOf() },
        spec: {
          podSelector: { matchExpressions: [{ key: 'strimzi.io/kind', operator: 'DoesNotExist' }] },
          policyTypes: ['Ingress', 'Egress'],
        },
      });
    }
  }

  /** The name of one of the install's objects. */
  private nameOf(what: string): string {
    return `${this.props.release.fullname}-${what}`;
  }

  /** A component's image (repository `ordersaga-<component>`: the images are not the install's). */
  private imageOf(component: ComponentName): string {
    return `${this.props.images.registry}/ordersaga-${component}:${this.props.images.tag}`;
  }

  /** The install's name of a topic (or of a consumer group, or a transactional id prefix). */
  private topicOf(name: string): string {
    return `${this.props.release.topicPrefix}${name}`;
  }

  /** The labels of the install's objects, and of a component's when one is named. */
  private labelsOf(component?: string): Record<string, string> {
    return {
      ...APP_LABELS,
      // With the component's, what selects a component's pods of one install.
      [RELEASE_LABEL]: this.props.release.name,
      ...(component ? { 'app.kubernetes.io/component': component } : {}),
    };
  }

  /** operator/rbac.yaml, each of its names the release's: its own Lease, its own ServiceAccount. */
  private operatorRbac(): void {
    const rbac = new Include(this, 'operator-rbac', { url: OPERATOR_RBAC_FILE });
    for (const object of rbac.apiObjects) {
      const json = object.toJson();
      const paths: string[] = [];
      const find = (node: unknown, path: string) => {
        if (node === RBAC_FILE_NAME) paths.push(path);
        else if (node && typeof node === 'object')
          for (const [key, value] of Object.entries(node)) find(value, `${path}/${key}`);
      };
      find(json, '');
      for (const path of paths) object.addJsonPatch(JsonPatch.replace(path, this.nameOf('operator')));
      object.addJsonPatch(JsonPatch.add('/metadata/labels', { ...json.metadata.labels, ...this.labelsOf('operator') }));
    }
  }

  /**
   * One ConfigMap per dashboard, labelled for the sidecar. grafana_folder names the Grafana folder
   * for a sidecar configured with `folderAnnotation: grafana_folder`; others ignore it.
   */
  private grafanaDashboards(): void {
    for (const { name, model } of DASHBOARDS) {
      new kplus.k8s.KubeConfigMap(this, `dashboard-${name}`, {
        metadata: {
          name: this.nameOf(`dashboard-${name}`),
          labels: { ...this.labelsOf(), [SIDECAR_LABEL]: '1' },
          annotations: { grafana_folder: GRAFANA_FOLDER },
        },
        data: { [`${name}.json`]: dashboardJson(model) },
      });
    }
  }

  private component(component: Component): void {
    const { props } = this;
    const name = this.nameOf(component.name);
    const labels = this.labelsOf(component.name);
    const metadata = { name, labels };

    this.kafkaUser(component, name);

    const config = new kplus.ConfigMap(this, `${name}-config`, {
      metadata,
      data: {
        KAFKA_BROKERS: props.kafkaBootstrap,
        ...kafkaClientSettings(name, props.kafkaTls, props.kafkaAuthentication),
        CREATE_TOPICS: 'false',
        ORDERSAGA_NAMESPACE: props.release.topicPrefix,
        TOPIC_PARTITIONS: String(props.topicPartitions),
        HOST: '0.0.0.0',
        PORT: String(component.port),
        LOG_LEVEL: 'info',
        OTEL_EXPORTER_OTLP_ENDPOINT: props.tracing.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: props.tracing.protocol,
        OTEL_TRACES_SAMPLER: props.tracing.sampler,
        OTEL_TRACES_SAMPLER_ARG: props.tracing.samplerArg,
        ...Object.fromEntries(sagaSettingsOf(component.name).map((s) => [s.env, String(props.saga[s.value])])),
        ...(component.kind === 'controller'
          ? {
              LEASE_NAME: this.nameOf('operator'),
              SAGAORDER_INSTANCE: props.release.name,
              SAGAORDER_ADOPT: String(props.operator.adoptUnlabelled),
              MIRROR_MODE: props.operator.mirrorMode,
              SAGAORDER_TTL_SECONDS: String(props.operator.ttlSeconds),
              API_QPS: String(props.operator.apiQps),
              API_BURST: String(props.operator.apiBurst),
            }
          : {}),
      },
    });

    // The controller's ServiceAccount comes with its RBAC, from operator/rbac.yaml.
    const serviceAccount =
      component.kind === 'controller'
        ? kplus.ServiceAccount.fromServiceAccountName(this, `${name}-sa`, this.nameOf('operator'))
        : new kplus.ServiceAccount(this, `${name}-sa`, { metadata, automountToken: false });

    const kafkaUserSecret = kplus.Secret.fromSecretName(this, `${name}-kafka-secret`, name);
    const kafkaCa = kplus.Secret.fromSecretName(this, `${name}-kafka-ca`, `${props.kafkaCluster}-cluster-ca-cert`);
    const deployment = new kplus.Deployment(this, `${name}-deployment`, {
      metadata,
      replicas: props.replicas?.[component.name] ?? 1,
      serviceAccount,
      automountServiceAccountToken: component.kind === 'controller',
      podMetadata: { labels },
      select: false,
      securityContext: { ensureNonRoot: true, user: 65532, group: 65532, fsGroup: 65532 },
      containers: [
        {
          name: component.name,
          image: this.imageOf(component.name),
          imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
          ports: [{ name: 'http', number: component.port }],
          envFrom: [kplus.Env.fromConfigMap(config)],
          envVariables: {
            // Names the replica in its Kafka client id and its traces.
            INSTANCE_ID: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_NAME),
            POD_NAMESPACE: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_NAMESPACE),
            // Where a span comes from; service.name (ordersaga-<component>) is the runtime's.
            OTEL_RESOURCE_ATTRIBUTES: kplus.EnvValue.fromValue(
              'k8s.namespace.name=$(POD_NAMESPACE),k8s.pod.name=$(INSTANCE_ID)',
            ),
            // A service's state store (local disk, rebuilt from its state topic when the pod is new).
            ...(component.kind === 'controller'
              ? {}
              : {
                  STATE_DIR: kplus.EnvValue.fromValue(STATE_DIR),
                  // Where the other replicas forward reads of the partitions this one keeps.
                  POD_IP: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_IP),
                  ADVERTISED_URL: kplus.EnvValue.fromValue(`http://$(POD_IP):${component.port}`),
                }),
            // Its KafkaUser's Secret has a password only for SCRAM.
            KAFKA_SASL_PASSWORD: kplus.EnvValue.fromSecretValue(
              { secret: kafkaUserSecret, key: 'password' },
              { optional: true },
            ),
          },
          liveness: kplus.Probe.fromHttpGet('/healthz', {
            port: component.port,
            periodSeconds: Duration.seconds(10),
            failureThreshold: 3,
          }),
          readiness: kplus.Probe.fromHttpGet('/readyz', { port: component.port, periodSeconds: Duration.seconds(5) }),
          startup: kplus.Probe.fromHttpGet('/healthz', {
            port: component.port,
            failureThreshold: 30,
            periodSeconds: Duration.seconds(2),
          }),
          resources: {
            cpu: { request: kplus.Cpu.millis(100), limit: kplus.Cpu.millis(1000) },
            memory: { request: Size.mebibytes(128), limit: Size.mebibytes(512) },
          },
          volumeMounts: [
            {
              path: KAFKA_CA_DIR,
              volume: kplus.Volume.fromSecret(this, `${name}-kafka-ca-volume`, kafkaCa, {
                name: 'kafka-ca',
                optional: true,
              }),
              readOnly: true,
            },
            {
              path: KAFKA_USER_DIR,
              volume: kplus.Volume.fromSecret(this, `${name}-kafka-user-volume`, kafkaUserSecret, {
                name: 'kafka-user',
                optional: true,
              }),
              readOnly: true,
            },
            ...(component.kind === 'controller'
              ? []
              : [{ path: STATE_DIR, volume: kplus.Volume.fromEmptyDir(this, `${name}-state-volume`, 'state') }]),
          ],
          securityContext: {
            ensureNonRoot: true,
            user: 65532,
            group: 65532,
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
            privileged: false,
            capabilities: { drop: [kplus.Capability.ALL] },
            seccompProfile: { type: kplus.SeccompProfileType.RUNTIME_DEFAULT },
          },
        },
      ],
    });

    // Its pods, and no other install's: the Service and the PodDisruptionBudget select the same.
    deployment.select(kplus.LabelSelector.of({ labels }));
    // cdk8s-plus's own label of the pods (its construct path), which nothing selects any more.
    ApiObject.of(deployment).addJsonPatch(
      JsonPatch.remove(`/spec/template/metadata/labels/${kplus.Pod.ADDRESS_LABEL.replace('/', '~1')}`),
    );

    const service = new kplus.Service(this, `${name}-service`, {
      metadata,
      ports: [{ name: 'http', port: component.port, targetPort: component.port }],
    });
    for (const [key, value] of Object.entries(labels)) service.selectLabel(key, value);

    new kplus.k8s.KubePodDisruptionBudget(this, `${name}-pdb`, {
      metadata,
      spec: { maxUnavailable: kplus.k8s.IntOrString.fromNumber(1), selector: { matchLabels: labels } },
    });

    this.networkPolicy(component, metadata, labels);

    if (props.serviceMonitors) {
      new ApiObject(this, `${name}-monitor`, {
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'ServiceMonitor',
        metadata,
        spec: { selector: { matchLabels: labels }, endpoints: [{ port: 'http', path: '/metrics', interval: '15s' }] },
      });
    }
  }

  /**
   * Only Kafka, DNS and what the component really calls, each rule with its ports; in: its port,
   * from anywhere for the public API, else from the monitoring namespace (Prometheus) only. A
   * service's replicas reach each other's port too: each answers the reads of the partitions it
   * keeps (owners.ts).
   */
  private networkPolicy(
    component: Component,
    metadata: { name: string; labels: Record<string, string> },
    labels: Record<string, string>,
  ) {
    const egress: object[] = [
      {
        to: [{ podSelector: { matchLabels: { 'strimzi.io/cluster': this.props.kafkaCluster } } }],
        ports: [tcp(kafkaPortOf(this.props.kafkaBootstrap))],
      },
      DNS_EGRESS,
    ];
    // Traces, to the OpenTelemetry Collector: where networkPolicy.collector says (any address when empty).
    egress.push({ to: [], ports: [tcp(this.props.tracing.port)] });
    const replicas = { podSelector: { matchLabels: labels } };
    const servesPartitions = component.kind !== 'controller';
    // Then what the component calls, in the registry's order (EXTRA_EGRESS_RULE).
    for (const peer of component.egress) {
      if (peer === 'kube-apiserver') {
        // Where networkPolicy.kubeApiServer says (any address when empty).
        egress.push({ to: [], ports: [tcp(443), tcp(6443)] });
      } else {
        // Customers' webhooks are on the internet: https, to public addresses only.
        egress.push({ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: [...NON_PUBLIC_IPV4] } }], ports: [tcp(443)] });
      }
    }
    // Last, so the peers' rules keep their places (EXTRA_EGRESS_RULE): the other replicas.
    if (servesPartitions) egress.push({ to: [replicas], ports: [tcp(component.port)] });
    new kplus.k8s.KubeNetworkPolicy(this, `${metadata.name}-netpol`, {
      metadata,
      spec: {
        podSelector: { matchLabels: labels },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [
          {
            ...(component.ingress === 'public'
              ? {}
              : {
                  from: [
                    {
                      namespaceSelector: {
                        matchLabels: { 'kubernetes.io/metadata.name': this.props.monitoringNamespace },
                      },
                    },
                  ],
                }),
            ports: [tcp(component.port)],
          },
          ...(servesPartitions && component.ingress !== 'public'
            ? [{ from: [replicas], ports: [tcp(component.port)] }]
            : []),
          // `helm test` asks it whether it is ready.
          ...(this.props.helmTest && component.ingress !== 'public'
            ? [{ from: [{ podSelector: { matchLabels: this.labelsOf(HELM_TEST) } }], ports: [tcp(component.port)] }]
            : []),
        ],
        egress: egress as never,
      },
    });
  }

  /**
   * `helm test`: a Pod that asks each component's Service for /readyz, then places an order
   * through the Order API and follows it to its end, with the script from a ConfigMap and a
   * NetworkPolicy that lets it reach the components' ports and DNS, nothing else.
   */
  private helmTest(): void {
    // All three are test hooks, created by `helm test` (the Pod last) and replaced by the next.
    const hook = (weight: number) => ({
      'helm.sh/hook': 'test',
      'helm.sh/hook-weight': String(weight),
      'helm.sh/hook-delete-policy': 'before-hook-creation',
    });
    const metadata = { name: this.nameOf(HELM_TEST), labels: this.labelsOf(HELM_TEST), annotations: hook(-1) };
    new kplus.k8s.KubeConfigMap(this, 'helm-test-script', {
      metadata,
      data: { 'helm-test.mjs': readFileSync(HELM_TEST_SCRIPT, 'utf8') },
    });
    const api = PUBLIC_API;
    new kplus.k8s.KubePod(this, 'helm-test-pod', {
      metadata: { ...metadata, annotations: hook(0) },
      spec: {
        restartPolicy: 'Never',
        automountServiceAccountToken: false,
        securityContext: {
          runAsNonRoot: true,
          runAsUser: 65532,
          runAsGroup: 65532,
          seccompProfile: { type: 'RuntimeDefault' },
        },
        containers: [
          {
            name: HELM_TEST,
            image: this.imageOf(api.name),
            imagePullPolicy: 'IfNotPresent',
            command: ['node', '/helm-test/helm-test.mjs'],
            env: [
              {
                name: 'ORDERSAGA_READYZ',
                value: COMPONENTS.map((c) => `http://${this.nameOf(c.name)}:${c.port}/readyz`).join(' '),
              },
              { name: 'ORDERSAGA_ORDER_URL', value: `http://${this.nameOf(api.name)}:${api.port}` },
              { name: 'ORDERSAGA_ORDER', value: JSON.stringify(HELM_TEST_ORDER) },
              { name: 'ORDERSAGA_NO_ORDER', value: '' },
            ],
            volumeMounts: [{ name: 'script', mountPath: '/helm-test', readOnly: true }],
            securityContext: {
              readOnlyRootFilesystem: true,
              allowPrivilegeEscalation: false,
              privileged: false,
              capabilities: { drop: ['ALL'] },
            },
            resources: {
              requests: { cpu: kplus.k8s.Quantity.fromString('50m'), memory: kplus.k8s.Quantity.fromString('64Mi') },
              limits: { cpu: kplus.k8s.Quantity.fromString('500m'), memory: kplus.k8s.Quantity.fromString('128Mi') },
            },
          },
        ],
        volumes: [{ name: 'script', configMap: { name: metadata.name } }],
      },
    });
    new kplus.k8s.KubeNetworkPolicy(this, 'helm-test-netpol', {
      metadata,
      spec: {
        podSelector: { matchLabels: this.labelsOf(HELM_TEST) },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [],
        egress: [
          DNS_EGRESS,
          ...COMPONENTS.map((c) => ({
            to: [{ podSelector: { matchLabels: this.labelsOf(c.name) } }],
            ports: [tcp(c.port)],
          })),
        ] as never,
      },
    });
  }

  /** SCRAM credentials and ACLs for exactly the component's topics, groups and transactional ids. */
  private kafkaUser(component: Component, name: string): void {
    const { kafka } = component;
    // Every name is the install's: its topics, groups and transactional ids, and none of another's.
    const topicAcl = (topic: string, operations: string[]) => ({
      resource: { type: 'topic', name: this.topicOf(topic), patternType: 'literal' },
      operations,
    });
    new ApiObject(this, `${name}-kafka-user`, {
      apiVersion: STRIMZI,
      kind: 'KafkaUser',
      metadata: {
        name,
        labels: { ...this.labelsOf(component.name), 'strimzi.io/cluster': this.props.kafkaCluster },
      },
      spec: {
        authentication: { type: this.props.kafkaAuthentication },
        authorization: {
          type: 'simple',
          acls: [
            ...kafka.read.map((t) => topicAcl(t, ['Describe', 'Read'])),
            ...kafka.write.filter((t) => !kafka.read.includes(t)).map((t) => topicAcl(t, ['Describe', 'Write'])),
            ...kafka.write.filter((t) => kafka.read.includes(t)).map((t) => topicAcl(t, ['Write'])),
            ...(kafka.group
              ? [
                  {
                    resource: { type: 'group', name: this.topicOf(kafka.group), patternType: 'literal' },
                    operations: ['Describe', 'Read'],
                  },
                ]
              : []),
            {
              resource: { type: 'group', name: this.topicOf(kafka.groupPrefix), patternType: 'prefix' },
              operations: ['Describe', 'Read'],
            },
            ...(kafka.transactionalIdPrefix
              ? [
                  {
                    resource: {
                      type: 'transactionalId',
                      name: this.topicOf(kafka.transactionalIdPrefix),
                      patternType: 'prefix',
                    },
                    operations: ['Describe', 'Write'],
                  },
                ]
              : []),
          ],
        },
      },
    });
  }

  private devKafka(): void {
    const cluster = this.props.kafkaCluster;
    new ApiObject(this, 'dev-kafka-pool', {
      apiVersion: STRIMZI,
      kind: 'KafkaNodePool',
      metadata: { name: this.nameOf('dual-role'), labels: { ...this.labelsOf(), 'strimzi.io/cluster': cluster } },
      spec: { replicas: 1, roles: ['controller', 'broker'], storage: { type: 'ephemeral' } },
    });
    new ApiObject(this, 'dev-kafka', {
      apiVersion: STRIMZI,
      kind: 'Kafka',
      metadata: { name: cluster, labels: this.labelsOf() },
      spec: {
        kafka: {
          listeners: [
            { name: 'plain', port: 9092, type: 'internal', tls: false, authentication: { type: 'scram-sha-512' } },
            {
              name: 'tls',
              port: 9093,
              type: 'internal',
              tls: true,
              authentication: { type: this.props.kafkaAuthentication },
            },
          ],
          authorization: { type: 'simple' },
          config: {
            'offsets.topic.replication.factor': 1,
            'transaction.state.log.replication.factor': 1,
            'transaction.state.log.min.isr': 1,
            'default.replication.factor': 1,
            'min.insync.replicas': 1,
          },
        },
        entityOperator: { topicOperator: {}, userOperator: {} },
      },
    });
  }
}

/** Every manifest of a file, for tests and tools. */
export function readManifests(file: string): unknown[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS());
}
