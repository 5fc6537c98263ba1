/**
 * What Kubernetes NetworkPolicies allow, evaluated as the API documents them
 * (https://kubernetes.io/docs/concepts/services-networking/network-policies/), so that a test can
 * ask "may this pod open a connection to that address and port" instead of checking that a rule
 * exists:
 *
 * - a pod selected by no policy of a direction (policyTypes) is open in that direction;
 * - once selected, a connection is allowed if any rule of any selecting policy allows it (union);
 * - a rule with no `to`/`from` matches every peer; with no `ports`, every port; a port entry
 *   without `port` matches every port of its protocol (TCP by default);
 * - a peer is an ipBlock (cidr minus except), or pods by podSelector within the policy's own
 *   namespace, or namespaces by namespaceSelector (and pods within them when both are given);
 *   an empty selector selects everything.
 * - a selector's matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist) must all hold.
 * Only what the chart uses is supported: IPv4, numeric ports.
 */
export interface LabelRequirement {
  readonly key: string;
  readonly operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  readonly values?: readonly string[];
}

export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly LabelRequirement[];
}

export interface Peer {
  readonly podSelector?: LabelSelector;
  readonly namespaceSelector?: LabelSelector;
  readonly ipBlock?: { readonly cidr: string; readonly except?: readonly string[] };
}

export interface PortEntry {
  readonly protocol?: 'TCP' | 'UDP' | 'SCTP';
  readonly port?: number | string;
  readonly endPort?: number;
}

export interface NetworkPolicy {
  readonly metadata: { readonly name: string; readonly namespace?: string };
  readonly spec: {
    readonly podSelector: LabelSelector;
    readonly policyTypes?: ReadonlyArray<'Ingress' | 'Egress'>;
    readonly ingress?: ReadonlyArray<{ readonly from?: readonly Peer[]; readonly ports?: readonly PortEntry[] }>;
    readonly egress?: ReadonlyArray<{ readonly to?: readonly Peer[]; readonly ports?: readonly PortEntry[] }>;
  };
}

/** One end of a connection: a pod (labels, namespace and its labels) or an address outside the cluster. */
export type Endpoint =
  | {
      readonly pod: Readonly<Record<string, string>>;
      readonly namespace: string;
      readonly namespaceLabels?: Readonly<Record<string, string>>;
      readonly ip?: string;
    }
  | { readonly ip: string };

export interface Connection {
  readonly from: Endpoint;
  readonly to: Endpoint;
  readonly port: number;
  readonly protocol?: 'TCP' | 'UDP' | 'SCTP';
}

function holds({ key, operator, values = [] }: LabelRequirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, key);
  switch (operator) {
    case 'In':
      return has && values.includes(labels[key]!);
    case 'NotIn':
      return !has || !values.includes(labels[key]!);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
  }
}

export function selects(
  selector: LabelSelector | undefined,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  if (!selector) return true;
  const present = labels ?? {};
  return (
    Object.entries(selector.matchLabels ?? {}).every(([key, value]) => present[key] === value) &&
    (selector.matchExpressions ?? []).every((requirement) => holds(requirement, present))
  );
}

function ipv4(address: string): number {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255))
    throw new Error(`not an IPv4 address: ${address}`);
  return parts.reduce((n, p) => n * 256 + p, 0);
}

export function inCidr(address: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const size = Number(bits ?? 32);
  const block = 2 ** (32 - size);
  return Math.floor(ipv4(address) / block) === Math.floor(ipv4(base!) / block);
}

/** Whether `peer`, written in a policy of `policyNamespace`, matches the endpoint. */
function peerMatches(peer: Peer, endpoint: Endpoint, policyNamespace: string): boolean {
  if (peer.ipBlock) {
    // ipBlock is meant for addresses outside the cluster; a pod matches by its IP only.
    if (!endpoint.ip) return false;
    const { cidr, except = [] } = peer.ipBlock;
    return inCidr(endpoint.ip, cidr) && !except.some((range) => inCidr(endpoint.ip!, range));
  }
  if (!('pod' in endpoint)) return false;
  if (peer.namespaceSelector) {
    if (!selects(peer.namespaceSelector, endpoint.namespaceLabels)) return false;
    return selects(peer.podSelector, endpoint.pod);
  }
  return endpoint.namespace === policyNamespace && selects(peer.podSelector, endpoint.pod);
}

function portMatches(entries: readonly PortEntry[] | undefined, port: number, protocol: string): boolean {
  if (!entries || entries.length === 0) return true;
  return entries.some((entry) => {
    if ((entry.protocol ?? 'TCP') !== protocol) return false;
    if (entry.port === undefined) return true;
    if (typeof entry.port === 'string') throw new Error(`named port ${entry.port} is not supported`);
    return entry.endPort === undefined ? entry.port === port : port >= entry.port && port <= entry.endPort;
  });
}

const typesOf = (policy: NetworkPolicy) =>
  policy.spec.policyTypes ?? (policy.spec.egress ? ['Ingress', 'Egress'] : ['Ingress']);

/** Whether the policies (all of one namespace, `namespace`) let the connection through both ends. */
export function allowed(policies: readonly NetworkPolicy[], connection: Connection, namespace: string): boolean {
  const protocol = connection.protocol ?? 'TCP';
  const direction = (
    end: Endpoint,
    other: Endpoint,
    type: 'Ingress' | 'Egress',
    rulesOf: (p: NetworkPolicy) => ReadonlyArray<{ peers?: readonly Peer[]; ports?: readonly PortEntry[] }>,
  ) => {
    if (!('pod' in end) || end.namespace !== namespace) return true; // not governed by these policies
    const selecting = policies.filter((p) => typesOf(p).includes(type) && selects(p.spec.podSelector, end.pod));
    if (selecting.length === 0) return true;
    return selecting.some((policy) =>
      rulesOf(policy).some(
        (rule) =>
          (!rule.peers || rule.peers.length === 0 || rule.peers.some((peer) => peerMatches(peer, other, namespace))) &&
          portMatches(rule.ports, connection.port, protocol),
      ),
    );
  };
  const egressOk = direction(connection.from, connection.to, 'Egress', (p) =>
    (p.spec.egress ?? []).map((r) => ({ peers: r.to, ports: r.ports })),
  );
  const ingressOk = direction(connection.to, connection.from, 'Ingress', (p) =>
    (p.spec.ingress ?? []).map((r) => ({ peers: r.from, ports: r.ports })),
  );
  return egressOk && ingressOk;
}
