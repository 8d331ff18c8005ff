// Renders the kustomize directories under deploy/k8s with `kubectl kustomize` (offline) and reads
// what they produce: objects validated against the Kubernetes schemas (kubernetes-models), pod
// templates, and the environment each container gets.
import { spawnSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { ConfigMap, type IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service, type IService } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet, type IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { PodDisruptionBudget, type IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { HorizontalPodAutoscaler, type IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { NetworkPolicy, type INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { INetworkPolicyPeer } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicyPeer';

/** Any rendered object, before its kind is known. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** `kubectl version --client` as printed, or undefined when kubectl is not on PATH. */
export function kubectlVersion(): string | undefined {
  const r = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Renders the kustomization in `dir` with `kubectl kustomize` (no cluster, no network). */
export function render(dir: string): KubeObject[] {
  const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) {
    throw new Error(`kubectl kustomize ${dir} failed (needs kustomize v5, i.e. kubectl 1.27 or newer):\n${r.stderr}\n${kubectlVersion() ?? ''}`);
  }
  return parseAllDocuments(r.stdout).map((doc, i) => {
    if (doc.errors.length > 0) throw new Error(`document ${i} of ${dir}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const obj = doc.toJS() as KubeObject | null;
    if (!obj || typeof obj.kind !== 'string' || typeof obj.metadata?.name !== 'string') {
      throw new Error(`document ${i} of ${dir} is not a Kubernetes object`);
    }
    return obj;
  });
}

type Validator = (obj: KubeObject) => void;

// One schema per kind the manifests use; a new kind fails the test until it is listed here.
// kubernetes-models' schemas check types, enums and required fields, not unknown field names.
const SCHEMAS: Record<string, Validator> = {
  'v1/Namespace': (o) => new Namespace(o as never).validate(),
  'v1/ConfigMap': (o) => new ConfigMap(o as never).validate(),
  'v1/Secret': (o) => new Secret(o as never).validate(),
  'v1/Service': (o) => new Service(o as never).validate(),
  'v1/ServiceAccount': (o) => new ServiceAccount(o as never).validate(),
  'apps/v1/Deployment': (o) => new Deployment(o as never).validate(),
  'apps/v1/StatefulSet': (o) => new StatefulSet(o as never).validate(),
  'policy/v1/PodDisruptionBudget': (o) => new PodDisruptionBudget(o as never).validate(),
  'autoscaling/v2/HorizontalPodAutoscaler': (o) => new HorizontalPodAutoscaler(o as never).validate(),
  'networking.k8s.io/v1/NetworkPolicy': (o) => new NetworkPolicy(o as never).validate(),
  'cert-manager.io/v1/Issuer': validateIssuer,
  'cert-manager.io/v1/Certificate': validateCertificate,
};

// cert-manager's kinds, which kubernetes-models does not ship: the fields the manifests use,
// checked against cert-manager.io/v1's API reference (required fields, enums, formats).
const ISSUER_TYPES = ['acme', 'ca', 'vault', 'selfSigned', 'venafi'];
const KEY_USAGES = new Set(['signing', 'digital signature', 'content commitment', 'key encipherment', 'key agreement', 'data encipherment', 'cert sign', 'crl sign', 'encipher only', 'decipher only', 'any', 'server auth', 'client auth', 'code signing', 'email protection', 's/mime', 'ipsec end system', 'ipsec tunnel', 'ipsec user', 'timestamping', 'ocsp signing', 'microsoft sgc', 'netscape sgc']);
const GO_DURATION = /^(\d+(\.\d+)?(h|m|s|ms))+$/;

function fail(what: string): never {
  throw new Error(what);
}

function validateIssuer(o: KubeObject): void {
  const spec = (o.spec ?? fail('spec is required')) as Record<string, unknown>;
  const types = Object.keys(spec).filter((k) => ISSUER_TYPES.includes(k));
  if (types.length !== 1) fail(`spec must name exactly one issuer type of ${ISSUER_TYPES.join(', ')}, not ${JSON.stringify(Object.keys(spec))}`);
  const ca = spec.ca as { secretName?: unknown } | undefined;
  if (ca && typeof ca.secretName !== 'string') fail('spec.ca.secretName is required');
}

function validateCertificate(o: KubeObject): void {
  const spec = (o.spec ?? fail('spec is required')) as Record<string, unknown>;
  if (typeof spec.secretName !== 'string' || !spec.secretName) fail('spec.secretName is required');
  const ref = spec.issuerRef as { name?: unknown; kind?: unknown; group?: unknown } | undefined;
  if (typeof ref?.name !== 'string') fail('spec.issuerRef.name is required');
  if (ref.kind !== undefined && ref.kind !== 'Issuer' && ref.kind !== 'ClusterIssuer' && ref.group === 'cert-manager.io') fail(`spec.issuerRef.kind ${String(ref.kind)}`);
  const names = ['commonName', 'dnsNames', 'uris', 'ipAddresses', 'emailAddresses', 'literalSubject'].filter((k) => spec[k] !== undefined);
  if (names.length === 0) fail('a certificate needs at least one of commonName, dnsNames, uris, ipAddresses');
  for (const k of ['dnsNames', 'uris', 'ipAddresses', 'usages']) {
    if (spec[k] !== undefined && (!Array.isArray(spec[k]) || !(spec[k] as unknown[]).every((v) => typeof v === 'string'))) fail(`spec.${k} must be a list of strings`);
  }
  for (const u of (spec.usages as string[] | undefined) ?? []) if (!KEY_USAGES.has(u)) fail(`spec.usages: unknown usage ${u}`);
  for (const k of ['duration', 'renewBefore']) if (spec[k] !== undefined && !GO_DURATION.test(String(spec[k]))) fail(`spec.${k} ${String(spec[k])} is not a duration`);
  const key = spec.privateKey as { algorithm?: unknown; rotationPolicy?: unknown } | undefined;
  if (key?.algorithm !== undefined && !['RSA', 'ECDSA', 'Ed25519'].includes(String(key.algorithm))) fail(`spec.privateKey.algorithm ${String(key.algorithm)}`);
  if (key?.rotationPolicy !== undefined && !['Never', 'Always'].includes(String(key.rotationPolicy))) fail(`spec.privateKey.rotationPolicy ${String(key.rotationPolicy)}`);
  if (spec.isCA !== undefined && typeof spec.isCA !== 'boolean') fail('spec.isCA must be a boolean');
}

/** Validates `obj` against its kind's schema; throws naming the object and the violations. */
export function validate(obj: KubeObject): void {
  const schema = SCHEMAS[`${obj.apiVersion}/${obj.kind}`];
  if (!schema) throw new Error(`${describeObject(obj)}: no schema for ${obj.apiVersion} ${obj.kind} (add it to SCHEMAS)`);
  try {
    schema(obj);
  } catch (err: unknown) {
    throw new Error(`${describeObject(obj)}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** "Kind name", for messages. */
export function describeObject(obj: KubeObject): string {
  return `${obj.kind} ${obj.metadata.name}`;
}

/** The rendered objects by kind, typed once they have passed validate(). */
export class Rendered {
  constructor(readonly objects: KubeObject[]) {}

  private ofKind<T>(kind: string): T[] {
    return this.objects.filter((o) => o.kind === kind) as unknown as T[];
  }

  get configMaps(): IConfigMap[] { return this.ofKind<IConfigMap>('ConfigMap'); }
  get services(): IService[] { return this.ofKind<IService>('Service'); }
  get deployments(): IDeployment[] { return this.ofKind<IDeployment>('Deployment'); }
  get statefulSets(): IStatefulSet[] { return this.ofKind<IStatefulSet>('StatefulSet'); }
  get pdbs(): IPodDisruptionBudget[] { return this.ofKind<IPodDisruptionBudget>('PodDisruptionBudget'); }
  get hpas(): IHorizontalPodAutoscaler[] { return this.ofKind<IHorizontalPodAutoscaler>('HorizontalPodAutoscaler'); }
  get networkPolicies(): INetworkPolicy[] { return this.ofKind<INetworkPolicy>('NetworkPolicy'); }
  get certificates(): KubeObject[] { return this.objects.filter((o) => o.apiVersion === 'cert-manager.io/v1' && o.kind === 'Certificate'); }
  get issuers(): KubeObject[] { return this.objects.filter((o) => o.apiVersion === 'cert-manager.io/v1' && o.kind === 'Issuer'); }

  configMap(name: string): IConfigMap {
    const cm = this.configMaps.find((c) => c.metadata?.name === name);
    if (!cm) throw new Error(`ConfigMap ${name} is referenced but not rendered`);
    return cm;
  }

  /** Every Deployment and StatefulSet with its pod template. */
  get workloads(): Workload[] {
    const all: (IDeployment | IStatefulSet)[] = [...this.deployments, ...this.statefulSets];
    return all.map((w) => {
      const template = w.spec?.template;
      if (!w.spec || !template?.spec) throw new Error(`${w.kind} ${w.metadata?.name}: no pod template`);
      return {
        kind: w.kind,
        name: w.metadata?.name ?? '',
        replicas: w.spec.replicas,
        labels: template.metadata?.labels ?? {},
        annotations: template.metadata?.annotations ?? {},
        pod: template.spec,
        statefulSet: w.kind === 'StatefulSet' ? (w as IStatefulSet) : undefined,
      };
    });
  }
}

/** A Deployment or StatefulSet, seen through its pod template. */
export interface Workload {
  kind: string;
  name: string;
  replicas: number | undefined;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  pod: IPodSpec;
  statefulSet: IStatefulSet | undefined;
}

/** Whether `selector` (matchLabels only, as the manifests use) selects pods labelled `labels`. */
export function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  const entries = Object.entries(selector ?? {});
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

/** A label selector of the API (matchLabels and matchExpressions), as a NetworkPolicy holds it. */
export type LabelSelector = INetworkPolicyPeer['podSelector'];

/**
 * Whether a LabelSelector selects an object labelled `labels`, as the API server reads one: the
 * empty selector selects everything (unlike a Service's selector, for which see selects()).
 */
export function labelSelectorMatches(selector: LabelSelector, labels: Record<string, string>): boolean {
  if (!selector) return true;
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  return byLabels && (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) => {
    const value = labels[key];
    switch (operator) {
      case 'In': return value !== undefined && values.includes(value);
      case 'NotIn': return value === undefined || !values.includes(value);
      case 'Exists': return value !== undefined;
      case 'DoesNotExist': return value === undefined;
      default: throw new Error(`unknown label selector operator ${operator}`);
    }
  });
}

/** Whether `policy` restricts ingress: policyTypes names Ingress, or, without policyTypes, always. */
export function restrictsIngress(policy: INetworkPolicy): boolean {
  const types = policy.spec?.policyTypes;
  return types === undefined || types.includes('Ingress');
}

/** The NetworkPolicies that isolate `workload`'s pods for ingress (all objects are in one namespace). */
export function ingressPoliciesOf(r: Rendered, workload: Workload): INetworkPolicy[] {
  return r.networkPolicies.filter((p) => restrictsIngress(p) && labelSelectorMatches(p.spec?.podSelector, workload.labels));
}

/**
 * Who may open a connection to `port` of `container` in `workload`'s pods, by the rendered
 * NetworkPolicies, sorted: 'anyone' (no policy isolates the pods, or a rule names no peers),
 * 'pod:<workload>' for each workload of the namespace a pod selector picks, 'namespaces:<k>=<v>,...'
 * (with ' pods:<selector>' when it also picks pods) for other namespaces, 'ip:<cidr>'. Nodes are
 * left out: NetworkPolicy always admits a pod's own node, and the kubelet's probes come from there.
 */
export function ingressPeers(r: Rendered, workload: Workload, container: IContainer, port: number): string[] {
  const declared = container.ports?.find((p) => p.containerPort === port);
  const protocol = declared?.protocol ?? 'TCP';
  const policies = ingressPoliciesOf(r, workload);
  if (policies.length === 0) return ['anyone'];
  const peers = new Set<string>();
  for (const rule of policies.flatMap((p) => p.spec?.ingress ?? [])) {
    const ports = rule.ports ?? [];
    const covers = ports.length === 0 || ports.some((p) => (p.protocol ?? 'TCP') === protocol && (
      p.port === undefined
      || (typeof p.port === 'number' ? port >= p.port && port <= (p.endPort ?? p.port) : p.port === declared?.name)));
    if (!covers) continue;
    const from = rule.from ?? [];
    if (from.length === 0) peers.add('anyone');
    for (const peer of from) for (const p of describePeer(r, peer)) peers.add(p);
  }
  return [...peers].sort();
}

/** The labels of the namespace the objects are in, with the name label the API server adds. */
export function namespaceLabels(r: Rendered): Record<string, string> {
  const ns = r.objects.find((o) => o.kind === 'Namespace');
  if (!ns) throw new Error('no Namespace is rendered');
  return { ...(ns.metadata.labels ?? {}), 'kubernetes.io/metadata.name': ns.metadata.name };
}

function describePeer(r: Rendered, peer: INetworkPolicyPeer): string[] {
  if (peer.ipBlock) return [`ip:${peer.ipBlock.cidr}${peer.ipBlock.except?.length ? ` except ${peer.ipBlock.except.join(',')}` : ''}`];
  const ns = peer.namespaceSelector;
  const inOwnNamespace = ns === undefined;
  if (inOwnNamespace) {
    const picked = r.workloads.filter((w) => labelSelectorMatches(peer.podSelector, w.labels)).map((w) => `pod:${w.name}`);
    return picked.length > 0 ? picked : [`pod:none of ${JSON.stringify(peer.podSelector)}`];
  }
  const nsText = Object.keys(ns.matchLabels ?? {}).length + (ns.matchExpressions?.length ?? 0) === 0
    ? 'any'
    : [...Object.entries(ns.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`), ...(ns.matchExpressions ?? []).map((e) => `${e.key}:${e.operator}(${(e.values ?? []).join('|')})`)].join(',');
  const podText = peer.podSelector && (Object.keys(peer.podSelector.matchLabels ?? {}).length > 0 || (peer.podSelector.matchExpressions?.length ?? 0) > 0)
    ? ` pods:${JSON.stringify(peer.podSelector)}`
    : '';
  // A namespace selector that picks this namespace also admits the pods it picks here.
  const here = labelSelectorMatches(ns, namespaceLabels(r))
    ? r.workloads.filter((w) => labelSelectorMatches(peer.podSelector, w.labels)).map((w) => `pod:${w.name}`)
    : [];
  return [`namespaces:${nsText}${podText}`, ...here];
}

/** Where a container's environment variable comes from. */
export type EnvSource =
  | { from: 'value'; value: string }
  | { from: 'configMap'; configMap: string; value: string }
  | { from: 'secret'; secret: string; key: string }
  | { from: 'field'; fieldPath: string }
  | { from: 'other' };

/**
 * The variables `container` gets, as Kubernetes builds them: envFrom ConfigMaps in order, then env
 * (which wins). Secret envFrom is not used by the manifests and fails here.
 */
export function containerEnv(container: IContainer, rendered: Rendered): Map<string, EnvSource> {
  const env = new Map<string, EnvSource>();
  for (const source of container.envFrom ?? []) {
    const name = source.configMapRef?.name;
    if (!name || source.prefix) throw new Error(`container ${container.name}: only envFrom configMapRef without a prefix is expected`);
    for (const [key, value] of Object.entries(rendered.configMap(name).data ?? {})) env.set(key, { from: 'configMap', configMap: name, value });
  }
  for (const e of container.env ?? []) {
    const secret = e.valueFrom?.secretKeyRef;
    const field = e.valueFrom?.fieldRef;
    const cmKey = e.valueFrom?.configMapKeyRef;
    if (e.value !== undefined) env.set(e.name, { from: 'value', value: e.value });
    else if (secret?.name) env.set(e.name, { from: 'secret', secret: secret.name, key: secret.key });
    else if (field) env.set(e.name, { from: 'field', fieldPath: field.fieldPath });
    else if (cmKey?.name) env.set(e.name, { from: 'configMap', configMap: cmKey.name, value: rendered.configMap(cmKey.name).data?.[cmKey.key] ?? '' });
    else env.set(e.name, { from: 'other' });
  }
  return env;
}

const BINARY_SUFFIX: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
const DECIMAL_SUFFIX: Record<string, number> = { m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };

/** A resource quantity ("250m", "2", "512Mi", 1) as a number of units (cores, bytes, devices). */
export function quantity(q: string | number): number {
  if (typeof q === 'number') return q;
  const m = /^([0-9.]+)([a-zA-Z]*)$/.exec(q);
  const suffix = m?.[2] ?? '';
  const scale = BINARY_SUFFIX[suffix] ?? DECIMAL_SUFFIX[suffix];
  if (!m || scale === undefined) throw new Error(`unreadable quantity ${q}`);
  return Number(m[1]) * scale;
}
