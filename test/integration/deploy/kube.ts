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
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';

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
};

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
