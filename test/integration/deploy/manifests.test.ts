// deploy/k8s: every overlay renders with `kubectl kustomize` (offline), every object matches the
// Kubernetes schemas, and the manifests have what operators expect: probes, resources, GPUs only
// where asked, a three-server NATS on persistent volumes, no secret values, disruption budgets,
// autoscalers, drain time, metrics annotations, and only variables the services read.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IService } from 'kubernetes-models/v1/Service';
import { ROOT, serviceCommand, type ServiceName } from '../../../cli/local-mesh/service-process';
import { knownVariables, loadConfig, type Config } from '../../../lib/config';
import { execForm, inheritedInstructions, parseDockerfile, stage, workdir } from './dockerfile';
import { containerEnv, describeObject, ingressPeers, ingressPoliciesOf, kubectlVersion, labelSelectorMatches, quantity, Rendered, render, restrictsIngress, selects, validate, type EnvSource, type Workload } from './kube';
import { NATS_AUTH_CONF, natsAuthConf, natsSecrets, PUBLIC_KEYS_SECRET, seedSecretOf } from '../../../tools/k8s/nats-auth';
import { fromSeed } from '@nats-io/nkeys';
import { nkeyVariableOf, type NatsIdentityKind } from '../../../lib/nats-permissions';
import { spiffeId } from '../../../lib/tls';
import { podDoorLimitsOf } from '../../../services/inference/inference-service';

const repo = path.resolve(__dirname, '../../..');
const k8s = path.join(repo, 'deploy/k8s');
const overlays = fs.readdirSync(path.join(k8s, 'overlays'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
const services = fs.readdirSync(path.join(repo, 'services')).filter((d) => fs.existsSync(path.join(repo, 'services', d, 'main.ts')));
const NAMESPACE = 'infermesh';
/** The services that must keep serving through node drains and scale with load. */
const WITH_PDB = ['router', 'registry', 'inference'];
const WITH_HPA = ['router', 'inference'];
/** What the router's process takes besides its doors' budgets, V8's young generation included (config/router.env). */
const ROUTER_PROCESS_BYTES = 200 * 2 ** 20;
/**
 * What a pod's process takes besides its models and its door's budgets: Node, onnxruntime's
 * libraries and environment (primed at start) and the session workers' isolates (about 160 MiB
 * resident with one small model loaded).
 */
const POD_PROCESS_BYTES = 200 * 2 ** 20;
/** lib/lifecycle.ts forces the exit this long after the drain budget runs out. */
const FORCE_EXIT_MARGIN_S = 2;

// The OpenTelemetry SDK's standard variables (the specification's "SDK environment variables" and
// the OTLP and Prometheus exporters'), which the services honour besides INFERMESH_*.
const OTEL_VARIABLES = [
  'OTEL_SDK_DISABLED', 'OTEL_SERVICE_NAME', 'OTEL_RESOURCE_ATTRIBUTES', 'OTEL_LOG_LEVEL', 'OTEL_PROPAGATORS',
  'OTEL_TRACES_SAMPLER', 'OTEL_TRACES_SAMPLER_ARG', 'OTEL_TRACES_EXPORTER', 'OTEL_METRICS_EXPORTER', 'OTEL_LOGS_EXPORTER',
  'OTEL_BSP_SCHEDULE_DELAY', 'OTEL_BSP_EXPORT_TIMEOUT', 'OTEL_BSP_MAX_QUEUE_SIZE', 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE',
  'OTEL_METRIC_EXPORT_INTERVAL', 'OTEL_METRIC_EXPORT_TIMEOUT', 'OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT', 'OTEL_ATTRIBUTE_COUNT_LIMIT',
  'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT', 'OTEL_EXPORTER_OTLP_LOGS_ENDPOINT',
  'OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL', 'OTEL_EXPORTER_OTLP_LOGS_PROTOCOL',
  'OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TIMEOUT', 'OTEL_EXPORTER_OTLP_COMPRESSION', 'OTEL_EXPORTER_OTLP_CERTIFICATE',
  'OTEL_EXPORTER_PROMETHEUS_HOST', 'OTEL_EXPORTER_PROMETHEUS_PORT', 'OTEL_NODE_RESOURCE_DETECTORS',
];
/** Names whose values are secrets: they must come from a Secret. */
const SECRET_NAME = /PASSWORD|PASSWD|TOKEN|SECRET|CREDENTIAL|PRIVATE_KEY|NKEY|SEED/i;
/** Credentials in a server config file: the value must be a $VARIABLE from the environment. */
const CONFIG_CREDENTIAL = /^\s*(user|username|password|pass|token|auth_token|nkey|seed)\s*[:=]\s*(\S+)/gim;

const dockerfile = parseDockerfile(fs.readFileSync(path.join(repo, 'Dockerfile'), 'utf8'));
const imageInstructions = inheritedInstructions(dockerfile, stage(dockerfile));
const imageUser = Number(imageInstructions.filter((i) => i.keyword === 'USER').pop()?.args.split(':')[0]);

const kubectl = kubectlVersion();
// Without kubectl the suite is one test that says so; in CI (CI=true) that is a failure, since
// .ci/run provides kubectl there.
const suite: (name: string, fn: () => void) => void = kubectl
  ? describe
  : (name) => {
    test(name, () => {
      if (process.env.CI) throw new Error('kubectl is not on PATH: .ci/run must install it before the tests');
      console.warn(`kubectl not found: "${name}" is not checked (install kubectl 1.27 or newer to check it)`);
    });
  };

const cache = new Map<string, Rendered>();
/** `dir` (relative to deploy/k8s) rendered once, every object validated against its schema. */
function rendered(dir: string): Rendered {
  let r = cache.get(dir);
  if (!r) {
    const objects = render(path.join(k8s, dir));
    objects.forEach(validate);
    r = new Rendered(objects);
    cache.set(dir, r);
  }
  return r;
}

/** The image's repository name without registry, tag or digest: "infermesh", "nats". */
function imageName(image: string | undefined): string {
  const noDigest = (image ?? '').split('@')[0] ?? '';
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return (colon > slash ? noDigest.slice(0, colon) : noDigest).slice(slash + 1);
}

function imageTag(image: string | undefined): string {
  const noDigest = (image ?? '').split('@')[0] ?? '';
  const colon = noDigest.lastIndexOf(':');
  return colon > noDigest.lastIndexOf('/') ? noDigest.slice(colon + 1) : '';
}

/** A container of a workload, with what it is: an infermesh service (which one) or NATS. */
interface Running {
  workload: Workload;
  container: IContainer;
  role: { kind: 'service'; service: string } | { kind: 'nats' };
}

function containers(r: Rendered): Running[] {
  return r.workloads.flatMap((workload) => [...(workload.pod.initContainers ?? []), ...workload.pod.containers].map((container): Running => {
    const where = `${workload.kind} ${workload.name}, container ${container.name}`;
    const image = imageName(container.image);
    if (image === 'nats') return { workload, container, role: { kind: 'nats' } };
    if (image !== 'infermesh') throw new Error(`${where}: image ${container.image} is neither infermesh nor nats`);
    // The image's entrypoint with node flags of the service's own, then its main module (serviceArgs).
    const args = container.args ?? [];
    const main = /^dist\/services\/([^/]+)\/main\.js$/.exec(args[args.length - 1] ?? '');
    if (!main || container.command || !args.slice(0, -1).every((a) => a.startsWith('--'))) {
      throw new Error(`${where}: runs ${JSON.stringify([...(container.command ?? []), ...args])}, not the image's entrypoint with node flags and dist/services/<name>/main.js`);
    }
    return { workload, container, role: { kind: 'service', service: main[1] ?? '' } };
  }));
}

const serviceContainers = (r: Rendered) => containers(r).filter((c): c is Running & { role: { kind: 'service'; service: string } } => c.role.kind === 'service');
const natsContainers = (r: Rendered) => containers(r).filter((c) => c.role.kind === 'nats');

function runningService(r: Rendered, service: string): Running {
  const found = serviceContainers(r).filter((c) => c.role.service === service);
  if (found.length !== 1) throw new Error(`${found.length} containers run ${service}, expected one`);
  return found[0] as Running;
}

/** The environment a container gets, downward-API and Secret values replaced by stand-ins. */
function processEnv(env: Map<string, EnvSource>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [name, source] of env) {
    if (source.from === 'value' || source.from === 'configMap') out[name] = source.value;
    else if (source.from === 'field') out[name] = source.fieldPath === 'status.podIP' ? '10.0.0.1' : 'pod-0';
    else if (source.from === 'secret') out[name] = 'from-a-secret';
  }
  return out;
}

function configOf(r: Rendered, running: Running): Config {
  return loadConfig(processEnv(containerEnv(running.container, r)));
}

function servicePort(config: Config, service: string): number {
  const port = (config as unknown as Record<string, unknown>)[`${service}Port`];
  if (typeof port !== 'number') throw new Error(`lib/config.ts has no ${service}Port`);
  return port;
}

/** The container port a Service port or probe port (number or name) lands on. */
function containerPort(container: IContainer, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return container.ports?.some((p) => p.containerPort === port) ? port : undefined;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/** The Services that select `workload`'s pods. */
function servicesFor(r: Rendered, workload: Workload): IService[] {
  return r.services.filter((s) => selects(s.spec?.selector, workload.labels));
}

/** The text of the ConfigMaps mounted as volumes in `workload`'s pods, comments left out. */
function mountedConfig(r: Rendered, workload: Workload): string {
  return (workload.pod.volumes ?? [])
    .flatMap((v) => (v.configMap?.name ? Object.values(r.configMap(v.configMap.name).data ?? {}) : []))
    .join('\n')
    .replace(/#.*$|^\s*\/\/.*$/gm, '');
}

/** A duration of nats.conf ("30s", "2m"), in seconds. */
function natsDuration(conf: string, key: string): number {
  const m = new RegExp(`^\\s*${key}\\s*[:=]\\s*"?(\\d+)(s|m)"?`, 'm').exec(conf);
  if (!m) return 0;
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
}

function preStopSleepS(container: IContainer): number {
  const command = container.lifecycle?.preStop?.exec?.command ?? [];
  const sleep = container.lifecycle?.preStop?.sleep?.seconds;
  if (sleep !== undefined) return sleep;
  return command[0] === 'sleep' ? Number(command[1] ?? 0) : 0;
}

/** The NATS identity each service runs as. */
const NATS_KIND: Record<string, NatsIdentityKind> = { registry: 'registry', router: 'router', inference: 'pod' };
/** What a private key or an nkey seed looks like, wherever it is written. */
const SECRET_MATERIAL = /-----BEGIN [A-Z ]*PRIVATE KEY-----|\bS[UOAC][A-Z2-7]{50,}\b|imk_[0-9a-f]{16}_/;
/** The kubelet cannot probe a TLS port over gRPC: the services' probes run this instead. */
const HEALTH_PROBE = ['node', 'dist/tools/health-probe.js'];

/** The volume mounted at the folder holding `file` in `container`, or undefined. */
function volumeOf(workload: Workload, container: IContainer, file: string | undefined) {
  const mount = (container.volumeMounts ?? []).find((m) => file !== undefined && file.startsWith(`${m.mountPath.replace(/\/$/, '')}/`));
  return mount && { mount, volume: (workload.pod.volumes ?? []).find((v) => v.name === mount.name) };
}

/** Where a file of a container comes from: 'secret:<name>', 'csi:<driver>', or what else. */
function fileSource(workload: Workload, container: IContainer, file: string | undefined): string {
  const v = volumeOf(workload, container, file)?.volume;
  if (v?.secret?.secretName) return `secret:${v.secret.secretName}`;
  if (v?.csi?.driver) return `csi:${v.csi.driver}`;
  return v ? `other:${v.name}` : 'not mounted';
}

/**
 * Who dials each service's own port, by its code: the router takes clients from anywhere (its
 * Service's ports); the routers (router-service.ts) and the pods (inference-service.ts) call the
 * registry; the routers and the registry's placement (placement-pods.ts) call the pods. The
 * services' own probes run inside their pods, so no service calls its own kind.
 */
const CALLERS: Record<string, readonly string[]> = { registry: ['router', 'inference'], inference: ['router', 'registry'] };

/** The port a Service address ("name:port", "name.ns:port") reaches in `target`'s container. */
function dialedPort(r: Rendered, address: string, target: Running): number {
  const [host = '', port] = address.split(':');
  const svc = r.services.find((s) => s.metadata?.name === host.split('.')[0]);
  const p = svc && selects(svc.spec?.selector, target.workload.labels) ? svc.spec?.ports?.find((x) => x.port === Number(port)) : undefined;
  const reached = containerPort(target.container, p?.targetPort ?? p?.port);
  if (reached === undefined) throw new Error(`${address} reaches no port of ${target.workload.name}`);
  return reached;
}

/** nats.conf's monitoring port (http_port). */
function natsMonitorPort(conf: string): number {
  return Number(/^\s*http_port\s*[:=]\s*(\d+)/m.exec(conf)?.[1] ?? NaN);
}

const hasGpu = (resources: Record<string, unknown> | undefined) => Object.keys(resources ?? {}).some((k) => /gpu/i.test(k));

suite('deploy/k8s', () => {
  it('has a cpu and a gpu overlay', () => {
    expect(overlays).toEqual(expect.arrayContaining(['cpu', 'gpu']));
  });

  it('holds the NATS permissions of lib/nats-permissions.ts, as rendered by tools/k8s/nats-auth.ts', () => {
    // After a change of the permissions: npm run build && node dist/tools/k8s/nats-auth.js render
    expect(fs.readFileSync(path.join(repo, NATS_AUTH_CONF), 'utf8')).toBe(natsAuthConf());
  });

  it('makes NATS Secrets whose public keys nats-server takes in nats-auth.conf, and seeds that match them', () => {
    const list = natsSecrets(NAMESPACE) as { items: { metadata: { name: string; namespace: string }; stringData: Record<string, string> }[] };
    const byName = new Map(list.items.map((i) => [i.metadata.name, i]));
    const publicKeys = byName.get(PUBLIC_KEYS_SECRET)?.stringData ?? {};
    for (const kind of ['registry', 'router', 'pod', 'admin'] as const) {
      const seed = byName.get(seedSecretOf(kind))?.stringData.seed ?? '';
      expect(fromSeed(new TextEncoder().encode(seed)).getPublicKey()).toBe(publicKeys[kind]);
    }
    expect(list.items.every((i) => i.metadata.namespace === NAMESPACE)).toBe(true);
    // nats-server 2.9 reads the generated config with those keys from its environment.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-nats-conf-'));
    try {
      fs.copyFileSync(path.join(repo, NATS_AUTH_CONF), path.join(dir, 'nats-auth.conf'));
      fs.writeFileSync(path.join(dir, 'nats.conf'), 'port: 4222\ninclude nats-auth.conf\n');
      const env = Object.fromEntries(Object.entries(publicKeys).map(([kind, key]) => [nkeyVariableOf(kind as NatsIdentityKind), key]));
      const check = spawnSync('nats-server', ['-c', path.join(dir, 'nats.conf'), '-t'], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8' });
      expect({ status: check.status, out: `${check.stdout}${check.stderr}`.trim() }).toEqual({ status: 0, out: expect.stringMatching(/is valid/) });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each(['base', ...overlays.map((o) => `overlays/${o}`)])('%s renders objects that match the Kubernetes schemas', (dir) => {
    expect(rendered(dir).objects.length).toBeGreaterThan(0);
  });

  describe.each(overlays)('overlay %s', (overlay) => {
    const r = () => rendered(`overlays/${overlay}`);
    /** Whether each inference pod gets a certificate naming it (components/cert-manager-csi) instead of the shared one. */
    const perPodCertificates = overlay === 'cert-manager-csi';

    it('puts every object in the infermesh namespace, which it creates', () => {
      const objects = r().objects;
      expect(objects.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name)).toEqual([NAMESPACE]);
      for (const o of objects.filter((x) => x.kind !== 'Namespace')) expect({ object: describeObject(o), namespace: o.metadata.namespace }).toEqual({ object: describeObject(o), namespace: NAMESPACE });
    });

    it.each(services)('runs %s once, from the image\'s entrypoint, as npm start does', (service) => {
      const running = runningService(r(), service);
      expect(running.container.workingDir).toBeUndefined();
      const entry = imageInstructions.filter((i) => i.keyword === 'ENTRYPOINT').pop();
      expect(entry).toBeDefined();
      const [node = '', ...args] = execForm(entry as NonNullable<typeof entry>);
      const dir = workdir(imageInstructions);
      const command = [...args, ...(running.container.args ?? [])].map((a) => (a.startsWith('-') ? a : path.posix.relative(dir, path.posix.resolve(dir, a))));
      const expected = serviceCommand(service as ServiceName).map((a) => (a.startsWith('-') ? a : path.relative(ROOT, a)));
      expect(path.posix.basename(node)).toBe('node');
      expect(command).toEqual(expected);
      expect(imageName(running.container.image)).toBe('infermesh');
    });

    it('gives every container liveness and readiness probes on its serving port', () => {
      for (const running of containers(r())) {
        const { container } = running;
        const where = `${running.workload.name}/${container.name}`;
        expect({ where, liveness: !!container.livenessProbe, readiness: !!container.readinessProbe }).toEqual({ where, liveness: true, readiness: true });
        if (running.role.kind === 'service') expect({ where, readiness: container.readinessProbe?.exec?.command?.slice(0, 2) }).toEqual({ where, readiness: HEALTH_PROBE });
        for (const probe of [container.livenessProbe, container.readinessProbe, container.startupProbe]) {
          if (!probe) continue;
          if (running.role.kind === 'service') {
            // The standard grpc.health.v1 service on the port the service listens on, asked over
            // TLS by tools/health-probe.ts (kubelet's gRPC probe speaks no TLS); liveness may
            // only check that the port takes connections.
            const port = servicePort(configOf(r(), running), running.role.service);
            const healthCheck = JSON.stringify(probe.exec?.command) === JSON.stringify([...HEALTH_PROBE, String(port)]);
            const portOpen = probe === container.livenessProbe && probe.tcpSocket?.port === port;
            expect({ where, probe: healthCheck || portOpen }).toEqual({ where, probe: true });
            expect(container.ports?.find((p) => p.name === 'grpc')?.containerPort).toBe(port);
          } else {
            expect({ where, path: probe.httpGet?.path }).toEqual({ where, path: expect.stringMatching(/^\/healthz/) });
            expect(containerPort(container, probe.httpGet?.port)).toBe(8222);
          }
        }
      }
    });

    it('sets CPU and memory requests and limits on every container, limits no lower than requests', () => {
      for (const { workload, container } of containers(r())) {
        const { requests = {}, limits = {} } = container.resources ?? {};
        const where = `${workload.name}/${container.name}`;
        for (const resource of ['cpu', 'memory']) {
          expect({ where, resource, request: requests[resource] !== undefined, limit: limits[resource] !== undefined })
            .toEqual({ where, resource, request: true, limit: true });
        }
        for (const [resource, limit] of Object.entries(limits)) {
          const request = requests[resource];
          if (request !== undefined) expect({ where, resource, ok: quantity(limit) >= quantity(request) }).toEqual({ where, resource, ok: true });
        }
      }
    });

    if (overlay === 'gpu') {
      it('runs the inference pods on GPU nodes with a GPU each, the CUDA image and provider', () => {
        for (const running of containers(r())) {
          const { workload, container } = running;
          const isInference = running.role.kind === 'service' && running.role.service === 'inference';
          const gpuTolerated = (workload.pod.tolerations ?? []).some((t) => t.key === 'nvidia.com/gpu');
          const gpuNodes = Object.keys(workload.pod.nodeSelector ?? {}).some((k) => k.startsWith('nvidia.com/gpu'));
          expect({ container: container.name, gpu: hasGpu(container.resources?.limits), gpuTolerated, gpuNodes })
            .toEqual({ container: container.name, gpu: isInference, gpuTolerated: isInference, gpuNodes: isInference });
          if (!isInference) continue;
          expect(quantity(container.resources?.limits?.['nvidia.com/gpu'] ?? 0)).toBeGreaterThanOrEqual(1);
          expect(imageTag(container.image)).toMatch(/gpu/);
          const providers = configOf(r(), running).executionProviders;
          expect(providers[0]).toBe('cuda');
          expect(providers).toContain('cpu');
        }
      });
    } else {
      it('requests no GPUs, tolerates no GPU taint and runs the CPU provider', () => {
        for (const running of containers(r())) {
          const { workload, container } = running;
          expect({ container: container.name, requests: hasGpu(container.resources?.requests), limits: hasGpu(container.resources?.limits) })
            .toEqual({ container: container.name, requests: false, limits: false });
          expect((workload.pod.tolerations ?? []).filter((t) => /gpu/i.test(t.key ?? ''))).toEqual([]);
          expect(Object.keys(workload.pod.nodeSelector ?? {}).filter((k) => /gpu/i.test(k))).toEqual([]);
          expect(imageTag(container.image)).not.toMatch(/gpu/);
          if (running.role.kind === 'service' && running.role.service === 'inference') expect(configOf(r(), running).executionProviders).toEqual(['cpu']);
        }
      });
    }

    it('sets only variables the services read, with values they accept', () => {
      const known = new Set([...knownVariables, ...OTEL_VARIABLES]);
      for (const running of serviceContainers(r())) {
        const env = containerEnv(running.container, r());
        expect({ service: running.role.service, unknown: [...env.keys()].filter((name) => !known.has(name)) }).toEqual({ service: running.role.service, unknown: [] });
        // lib/config.ts parses them as the service will at boot, and throws on a bad value.
        expect(() => configOf(r(), running)).not.toThrow();
      }
      const inference = runningService(r(), 'inference');
      const env = containerEnv(inference.container, r());
      // Pods announce the address routers dial: their own IP, under their own name.
      expect(env.get('INFERMESH_ADVERTISE_HOST')).toEqual({ from: 'field', fieldPath: 'status.podIP' });
      expect(env.get('INFERMESH_POD_NAME')).toEqual({ from: 'field', fieldPath: 'metadata.name' });
      // Pulled artifacts go to a writable volume (the root filesystem is read-only).
      const modelDir = configOf(r(), inference).modelDir;
      const mount = (inference.container.volumeMounts ?? []).find((m) => m.mountPath === modelDir);
      expect({ modelDir, mounted: mount !== undefined && !mount.readOnly }).toEqual({ modelDir: expect.stringMatching(/^\//), mounted: true });
    });

    it('sets only variables NATS\'s config reads, and every one it reads', () => {
      for (const { workload, container } of natsContainers(r())) {
        const conf = mountedConfig(r(), workload);
        // nats-server reads $NAME from its environment where it stands unquoted ("$JS.API.>" is a subject).
        const referenced = new Set([...conf.replace(/"[^"]*"/g, '""').matchAll(/\$([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1] ?? ''));
        const set = new Set((container.env ?? []).map((e) => e.name));
        expect({ unread: [...set].filter((n) => !referenced.has(n)), missing: [...referenced].filter((n) => !set.has(n)) }).toEqual({ unread: [], missing: [] });
        expect(container.envFrom ?? []).toEqual([]);
      }
    });

    it('keeps secret values out of the manifests: credentials come from Secrets the operator or cert-manager creates', () => {
      const objects = r().objects;
      for (const secret of objects.filter((o) => o.kind === 'Secret')) {
        const values = [...Object.values((secret.data ?? {}) as object), ...Object.values((secret.stringData ?? {}) as object)];
        expect({ secret: secret.metadata.name, values: values.filter((v) => v !== '') }).toEqual({ secret: secret.metadata.name, values: [] });
      }
      // No private key, nkey seed or API key anywhere in what is applied.
      for (const o of objects) expect({ object: describeObject(o), secret: SECRET_MATERIAL.exec(JSON.stringify(o))?.[0] }).toEqual({ object: describeObject(o), secret: undefined });
      for (const cm of r().configMaps) {
        // A *_FILE setting names where a mounted Secret is, which is no secret.
        expect(Object.keys(cm.data ?? {}).filter((k) => SECRET_NAME.test(k) && !k.endsWith('_FILE'))).toEqual([]);
        for (const text of Object.values(cm.data ?? {})) {
          for (const m of text.matchAll(CONFIG_CREDENTIAL)) expect({ configMap: cm.metadata?.name, [m[1] ?? '']: m[2] }).toEqual({ configMap: cm.metadata?.name, [m[1] ?? '']: expect.stringMatching(/^\$\w+$/) });
        }
      }
      for (const { container } of containers(r())) {
        for (const [name, source] of containerEnv(container, r())) {
          if (SECRET_NAME.test(name) && !name.endsWith('_FILE')) expect({ container: container.name, name, from: source.from }).toEqual({ container: container.name, name, from: 'secret' });
        }
      }
    });

    it('gives each service its own NATS identity, and NATS the public key of each', () => {
      // NATS: one nkey user per kind (nats-auth.conf), its key from the Secret nats-nkeys.
      for (const nats of natsContainers(r())) {
        const conf = mountedConfig(r(), nats.workload);
        const env = containerEnv(nats.container, r());
        for (const kind of Object.values(NATS_KIND)) {
          expect(conf).toContain(`nkey: $${nkeyVariableOf(kind)}`);
          expect(env.get(nkeyVariableOf(kind))).toEqual({ from: 'secret', secret: PUBLIC_KEYS_SECRET, key: kind });
        }
        // No one else: no user/password or token login, no anonymous user.
        expect(conf).not.toMatch(/^\s*(user|password|token|no_auth_user)\s*[:=]/m);
      }
      // Each service's seed file is in the Secret of its own kind, mounted by it alone.
      for (const running of serviceContainers(r())) {
        const kind = NATS_KIND[running.role.service];
        const file = configOf(r(), running).natsNkeySeedFile;
        expect({ service: running.role.service, seed: fileSource(running.workload, running.container, file) }).toEqual({ service: running.role.service, seed: `secret:${seedSecretOf(kind ?? 'admin')}` });
        const others = (running.workload.pod.volumes ?? []).map((v) => v.secret?.secretName ?? '').filter((n) => n.startsWith('nats-nkey') && n !== seedSecretOf(kind ?? 'admin'));
        expect({ service: running.role.service, others }).toEqual({ service: running.role.service, others: [] });
      }
      // docs/deploy.md tells the operator how to make those Secrets.
      const docs = fs.readFileSync(path.join(repo, 'docs/deploy.md'), 'utf8');
      expect(docs).toContain('node dist/tools/k8s/nats-auth.js secrets');
      for (const name of [PUBLIC_KEYS_SECRET, ...Object.values(NATS_KIND).map(seedSecretOf)]) expect(docs).toContain(name);
    });

    it('turns on TLS, mutual TLS between services and tokens, with certificates from Secrets or cert-manager', () => {
      const docs = fs.readFileSync(path.join(repo, 'docs/deploy.md'), 'utf8');
      for (const running of serviceContainers(r())) {
        const { service } = running.role;
        const config = configOf(r(), running);
        const files = { cert: config.tlsCertFile, key: config.tlsKeyFile, ca: config.tlsCaFile };
        const sources = Object.fromEntries(Object.entries(files).map(([k, f]) => [k, fileSource(running.workload, running.container, f)]));
        // The three files from one volume: a Secret of the service's kind (the inference pods'
        // shared identity by default), or a certificate per inference pod from cert-manager's CSI
        // driver, naming the pod, where the overlay asks for one.
        const expected = service === 'inference' && perPodCertificates ? 'csi:csi.cert-manager.io' : `secret:${service}-tls`;
        expect({ service, sources }).toEqual({ service, sources: { cert: expected, key: expected, ca: expected } });
        if (service === 'inference' && perPodCertificates) {
          const attrs = volumeOf(running.workload, running.container, files.cert)?.volume?.csi?.volumeAttributes ?? {};
          expect(attrs['csi.cert-manager.io/uri-sans']).toBe(spiffeId('pod', '${POD_NAME}').replace(encodeURIComponent('${POD_NAME}'), '${POD_NAME}'));
          expect(attrs['csi.cert-manager.io/key-usages']).toMatch(/server auth.*client auth|client auth.*server auth/);
          expect(docs).toContain(`Issuer ${attrs['csi.cert-manager.io/issuer-name']}`);
          // Heartbeats claim the pod's own name, which each certificate carries.
          expect(config.podIdentity).toBe('');
        } else {
          expect(docs).toContain(`${service}-tls`);
        }
        // Pods sharing one certificate claim its identity, spiffe://infermesh/pod/inference; the
        // docs say how to issue that certificate.
        if (service === 'inference' && !perPodCertificates) {
          expect(config.podIdentity).toBe('inference');
          expect(docs).toContain(spiffeId('pod', config.podIdentity));
          expect(docs).toContain('INFERMESH_POD_IDENTITY');
        }
        // Pods demand a certificate of their callers (routers only); the registry asks for one and
        // knows pods and routers by theirs, but takes the CLI with a token; the router's public
        // port takes clients with tokens.
        expect({ service, clientAuth: config.tlsClientAuth }).toEqual({ service, clientAuth: service !== 'registry' });
        if (service === 'router') expect(config.routerTlsClientAuth).toBe(false);
        // Tokens where clients call: the router and the registry; the first admin token from a Secret.
        if (service !== 'inference') expect({ service, auth: config.authEnabled }).toEqual({ service, auth: true });
        if (service === 'registry') {
          expect(fileSource(running.workload, running.container, config.authBootstrapTokenFile)).toBe('secret:infermesh-bootstrap-token');
          expect(docs).toContain('infermesh-bootstrap-token');
        }
      }
      // Without a cert-manager overlay nothing needs cert-manager: no CSI volume, no cert-manager object.
      if (!overlay.startsWith('cert-manager')) {
        const csi = r().workloads.flatMap((w) => (w.pod.volumes ?? []).filter((v) => v.csi).map((v) => `${w.name}/${v.name}`));
        expect({ csi, certManager: r().objects.filter((o) => o.apiVersion.startsWith('cert-manager.io')).map(describeObject) }).toEqual({ csi: [], certManager: [] });
      }
      // NATS: TLS on the client port and the routes, every client with a certificate.
      for (const nats of natsContainers(r())) {
        const conf = mountedConfig(r(), nats.workload);
        const blocks = [...conf.matchAll(/tls\s*\{([^}]*)\}/g)].map((m) => m[1] ?? '');
        expect(blocks).toHaveLength(2);
        for (const block of blocks) {
          expect(block).toMatch(/verify\s*:\s*true/);
          for (const key of ['cert_file', 'key_file', 'ca_file']) {
            const file = new RegExp(`${key}\\s*:\\s*"([^"]+)"`).exec(block)?.[1];
            expect({ key, source: fileSource(nats.workload, nats.container, file) }).toEqual({ key, source: 'secret:nats-tls' });
          }
        }
      }
    });

    if (overlay.startsWith('cert-manager')) {
      it('has cert-manager issue every certificate the pods mount, with the identities routers check', () => {
        const certs = new Map(r().certificates.map((c) => [(c.spec as { secretName: string }).secretName, c.spec as { uris?: string[]; dnsNames?: string[]; usages?: string[]; issuerRef: { name: string } }]));
        const issuers = new Set(r().issuers.map((i) => i.metadata.name));
        const mounted = new Set(r().workloads.flatMap((w) => (w.pod.volumes ?? []).map((v) => v.secret?.secretName ?? '')).filter((n) => n.endsWith('-tls')));
        expect([...mounted].sort()).toEqual(perPodCertificates ? ['nats-tls', 'registry-tls', 'router-tls'] : ['inference-tls', 'nats-tls', 'registry-tls', 'router-tls']);
        // Every certificate issued is mounted: with a certificate per pod, no shared one is made.
        expect([...certs.keys()].filter((n) => n !== 'infermesh-ca').sort()).toEqual([...mounted].sort());
        for (const name of mounted) {
          const cert = certs.get(name);
          expect({ name, issued: cert !== undefined && issuers.has(cert.issuerRef.name) }).toEqual({ name, issued: true });
          expect(cert?.usages).toEqual(expect.arrayContaining(['server auth', 'client auth']));
        }
        expect(certs.get('registry-tls')?.uris).toEqual([spiffeId('registry', 'registry')]);
        expect(certs.get('router-tls')?.uris).toEqual([spiffeId('router', 'router')]);
        if (!perPodCertificates) expect(certs.get('inference-tls')?.uris).toEqual([spiffeId('pod', 'inference')]);
        // NATS's certificate names the Service the services dial and each server its route reaches.
        expect(certs.get('nats-tls')?.dnsNames).toEqual(expect.arrayContaining(['nats', '*.nats-headless']));
        for (const w of r().workloads) {
          for (const v of w.pod.volumes ?? []) {
            const issuer = v.csi?.volumeAttributes?.['csi.cert-manager.io/issuer-name'];
            if (issuer) expect(issuers).toContain(issuer);
          }
        }
      });
    }

    it('runs NATS as three JetStream servers, each with its own persistent volume, that the services reach', () => {
      const nats = r().workloads.filter((w) => w.pod.containers.some((c) => imageName(c.image) === 'nats'));
      expect(nats.map((w) => w.kind)).toEqual(['StatefulSet']);
      const sts = nats[0] as Workload;
      expect(sts.replicas).toBe(3);
      const claims = sts.statefulSet?.spec?.volumeClaimTemplates ?? [];
      expect(claims.length).toBeGreaterThan(0);
      for (const claim of claims) expect(quantity(claim.spec?.resources?.requests?.storage ?? 0)).toBeGreaterThan(0);
      const conf = mountedConfig(r(), sts);
      const storeDir = /store_dir\s*[:=]\s*"?([^"\s]+)"?/.exec(conf)?.[1] ?? '';
      const container = sts.pod.containers.find((c) => imageName(c.image) === 'nats') as IContainer;
      const storeMount = (container.volumeMounts ?? []).find((m) => storeDir === m.mountPath || storeDir.startsWith(`${m.mountPath}/`));
      expect(claims.map((c) => c.metadata?.name)).toContain(storeMount?.name);
      // Routes: one per server, by the headless Service's stable names, on the cluster port.
      const serviceName = sts.statefulSet?.spec?.serviceName ?? '';
      const headless = r().services.find((s) => s.metadata?.name === serviceName);
      expect(headless?.spec?.clusterIP).toBe('None');
      const clusterPort = container.ports?.find((p) => p.name === 'cluster')?.containerPort;
      const routes = [...conf.matchAll(/nats:\/\/([\w.-]+):(\d+)/g)].map((m) => `${m[1]}:${m[2]}`).sort();
      expect(routes).toEqual([0, 1, 2].map((i) => `${sts.name}-${i}.${serviceName}:${clusterPort}`));
      // Every service keeps three replicas of its JetStream data and reaches NATS through a Service.
      for (const running of serviceContainers(r())) {
        const config = configOf(r(), running);
        expect(config.jetstreamReplicas).toBe(3);
        for (const url of config.natsUrl.split(',')) {
          // tls://: the client port requires TLS, which the services use only at a tls:// URL.
          const m = /^tls:\/\/([^:/]+):(\d+)$/.exec(url.trim());
          const svc = r().services.find((s) => s.metadata?.name === m?.[1]?.split('.')[0]);
          expect(svc && selects(svc.spec?.selector, sts.labels)).toBe(true);
          const port = svc?.spec?.ports?.find((p) => p.port === Number(m?.[2]));
          expect(containerPort(container, port?.targetPort ?? port?.port)).toBe(4222);
        }
      }
    });

    it.each(WITH_PDB)('gives %s a PodDisruptionBudget', (service) => {
      const { workload } = runningService(r(), service);
      const pdbs = r().pdbs.filter((p) => selects(p.spec?.selector?.matchLabels, workload.labels));
      expect(pdbs).toHaveLength(1);
      expect(pdbs[0]?.spec?.maxUnavailable ?? pdbs[0]?.spec?.minAvailable).toBeDefined();
    });

    it.each(WITH_HPA)('autoscales %s with a HorizontalPodAutoscaler that owns its replica count', (service) => {
      const { workload, container } = runningService(r(), service);
      const hpas = r().hpas.filter((h) => h.spec?.scaleTargetRef.kind === workload.kind && h.spec.scaleTargetRef.name === workload.name);
      expect(hpas).toHaveLength(1);
      const spec = hpas[0]?.spec;
      expect(spec?.minReplicas).toBeGreaterThanOrEqual(1);
      expect(spec?.maxReplicas).toBeGreaterThanOrEqual(spec?.minReplicas ?? 1);
      expect(spec?.metrics?.length).toBeGreaterThan(0);
      for (const metric of spec?.metrics ?? []) {
        if (metric.resource?.target.type === 'Utilization') expect(container.resources?.requests?.[metric.resource.name]).toBeDefined();
      }
      expect(workload.replicas).toBeUndefined();
    });

    it('gives every pod more termination grace than its drain takes', () => {
      for (const running of containers(r())) {
        const grace = running.workload.pod.terminationGracePeriodSeconds;
        const where = running.workload.name;
        const needed = running.role.kind === 'service'
          ? configOf(r(), running).shutdownTimeoutMs / 1000 + FORCE_EXIT_MARGIN_S + preStopSleepS(running.container)
          : natsDuration(mountedConfig(r(), running.workload), 'lame_duck_duration') + natsDuration(mountedConfig(r(), running.workload), 'lame_duck_grace_period');
        expect({ where, more: (grace ?? 0) > needed }).toEqual({ where, more: true });
      }
    });

    it('gives the router a memory limit that holds every budget of its doors and the process', () => {
      // Each door holds up to its budgets (lib/h2, the REST door's own), so a flood ends in
      // RESOURCE_EXHAUSTED or 429, not in an OOM kill, only while they all fit under the limit.
      const router = runningService(r(), 'router');
      const config = configOf(r(), router);
      const budgets = {
        grpcRequests: config.h2MaxRequestBytes,
        grpcAnswers: config.h2MaxResponseBytes,
        restRequests: config.routerHttpEnabled ? config.httpMaxRequestBytes : 0,
        restAnswers: config.routerHttpEnabled ? config.httpMaxResponseBytes : 0,
      };
      const needed = Object.values(budgets).reduce((a, b) => a + b, ROUTER_PROCESS_BYTES);
      const limit = quantity(router.container.resources?.limits?.memory ?? 0);
      expect({ budgets, needed, fits: needed <= limit }).toEqual({ budgets, needed, fits: true });
    });

    it('keeps out of each pod\'s model budget what its door may hold and the process', () => {
      // The models fill the budget (placement packs pods to it); the door's budgets and the
      // process must fit in what is left of the container's limit, else a pod full of models that
      // is sent a flood is OOM-killed instead of answering RESOURCE_EXHAUSTED.
      const pod = runningService(r(), 'inference');
      const config = configOf(r(), pod);
      const door = podDoorLimitsOf(config);
      const limit = quantity(pod.container.resources?.limits?.memory ?? 0);
      const models = config.modelMemoryMb > 0 ? config.modelMemoryMb * 2 ** 20 : limit - config.modelMemoryHeadroomMb * 2 ** 20;
      const left = limit - models;
      const needed = door.maxRequestBytes + door.maxResponseBytes + POD_PROCESS_BYTES;
      expect({ left, needed, fits: needed <= left }).toEqual({ left, needed, fits: true });
    });

    it('gives the registry room for every push it stages at once, beyond the bytes themselves', () => {
      // The kubelet evicts a pod whose emptyDir holds more than its sizeLimit: the pushes the
      // registry takes at once, each up to the largest artifact, must fit with their folders.
      const registry = runningService(r(), 'registry');
      const config = configOf(r(), registry);
      const dir = config.registryUploadDir || processEnv(containerEnv(registry.container, r())).TMPDIR || '/tmp';
      const volume = volumeOf(registry.workload, registry.container, `${dir}/infermesh-upload-x/artifact.onnx`)?.volume;
      const staged = config.registryMaxUploads * config.maxArtifactBytes;
      const sizeLimit = quantity(volume?.emptyDir?.sizeLimit ?? 0);
      expect({ dir, emptyDir: volume?.emptyDir !== undefined, roomBeyondStaged: sizeLimit - staged >= 2 ** 20 }).toEqual({ dir, emptyDir: true, roomBeyondStaged: true });
      // And the container's own limit holds the volumes it writes.
      const volumes = (registry.workload.pod.volumes ?? []).reduce((sum, v) => sum + quantity(v.emptyDir?.sizeLimit ?? 0), 0);
      expect(quantity(registry.container.resources?.limits?.['ephemeral-storage'] ?? 0)).toBeGreaterThan(volumes);
    });

    it('exposes the router on 8001 and the registry where the services look for it', () => {
      const router = runningService(r(), 'router');
      const routerPort = servicePort(configOf(r(), router), 'router');
      expect(routerPort).toBe(8001);
      const routerServices = servicesFor(r(), router.workload).filter((s) =>
        s.spec?.ports?.some((p) => p.port === 8001 && containerPort(router.container, p.targetPort ?? p.port) === routerPort));
      expect(routerServices.map((s) => s.metadata?.name)).toContain('router');
      const registry = runningService(r(), 'registry');
      const registryPort = servicePort(configOf(r(), registry), 'registry');
      for (const running of serviceContainers(r())) {
        const [host = '', port] = configOf(r(), running).registryUrl.split(':');
        const svc = r().services.find((s) => s.metadata?.name === host.split('.')[0]);
        expect(svc && selects(svc.spec?.selector, registry.workload.labels)).toBe(true);
        const p = svc?.spec?.ports?.find((x) => x.port === Number(port));
        expect(containerPort(registry.container, p?.targetPort ?? p?.port)).toBe(registryPort);
      }
    });

    it('annotates the pods that export Prometheus metrics, and only those', () => {
      for (const running of containers(r())) {
        const env = running.role.kind === 'service' ? processEnv(containerEnv(running.container, r())) : {};
        const exports = (env.OTEL_METRICS_EXPORTER ?? '').split(',').includes('prometheus');
        const { annotations } = running.workload;
        if (!exports) {
          expect(annotations['prometheus.io/scrape']).toBeUndefined();
          continue;
        }
        const port = env.OTEL_EXPORTER_PROMETHEUS_PORT ?? '9464';
        expect(annotations).toEqual(expect.objectContaining({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': port, 'prometheus.io/path': '/metrics' }));
        expect(containerPort(running.container, Number(port))).toBe(Number(port));
      }
    });

    it('turns away, with a default-deny policy, every connection to the namespace\'s pods that no other policy admits', () => {
      // An empty pod selector: it holds pods added to the namespace later too.
      const denyAll = r().networkPolicies.filter((p) => restrictsIngress(p) && labelSelectorMatches(p.spec?.podSelector, {}) && (p.spec?.ingress ?? []).length === 0);
      expect(denyAll.map((p) => p.metadata?.name)).toHaveLength(1);
    });

    it('gives every pod a NetworkPolicy that admits its peers', () => {
      for (const w of r().workloads) {
        const admitting = ingressPoliciesOf(r(), w).filter((p) => (p.spec?.ingress ?? []).length > 0).map((p) => p.metadata?.name);
        expect({ workload: w.name, admitted: admitting.length > 0 }).toEqual({ workload: w.name, admitted: true });
      }
    });

    it('admits each container port only from the peers that call it, metrics only from a labelled monitoring namespace', () => {
      const rr = r();
      const key = (w: Workload, port: number) => `${w.name}:${port}`;
      const intended = new Map<string, Set<string>>();
      // No one reaches a port unless named below (the registry's console: kubectl port-forward).
      for (const { workload, container } of containers(rr)) for (const p of container.ports ?? []) intended.set(key(workload, p.containerPort), new Set());
      const admit = (w: Workload, port: number, peers: string[]) => {
        const set = intended.get(key(w, port));
        if (!set) throw new Error(`${w.name} has no container port ${port}`);
        for (const peer of peers) set.add(peer);
      };
      const podOf = (service: string) => `pod:${runningService(rr, service).workload.name}`;
      // Metrics: the namespaces the router's metrics port admits, which must be other namespaces
      // picked by a label that docs/deploy.md names, no infermesh pod and not everyone.
      const router = runningService(rr, 'router');
      const metricsPort = (running: Running) => Number(processEnv(containerEnv(running.container, rr)).OTEL_EXPORTER_PROMETHEUS_PORT ?? '9464');
      const monitoring = ingressPeers(rr, router.workload, router.container, metricsPort(router));
      const docs = fs.readFileSync(path.join(repo, 'docs/deploy.md'), 'utf8');
      expect(monitoring.length).toBeGreaterThan(0);
      for (const peer of monitoring) {
        const labels = /^namespaces:(\S+)$/.exec(peer)?.[1];
        expect({ peer, labelled: labels !== undefined && labels !== 'any', documented: labels !== undefined && docs.includes(labels) })
          .toEqual({ peer, labelled: true, documented: true });
      }
      // The router's Service ports: clients from anywhere, with tokens.
      for (const svc of servicesFor(rr, router.workload)) {
        for (const p of svc.spec?.ports ?? []) admit(router.workload, containerPort(router.container, p.targetPort ?? p.port) ?? -1, ['anyone']);
      }
      const registry = runningService(rr, 'registry');
      const inference = runningService(rr, 'inference');
      for (const caller of CALLERS.registry ?? []) admit(registry.workload, dialedPort(rr, configOf(rr, runningService(rr, caller)).registryUrl, registry), [podOf(caller)]);
      // Routers and the registry dial the port each pod announces in its heartbeats.
      for (const caller of CALLERS.inference ?? []) admit(inference.workload, configOf(rr, inference).inferencePort, [podOf(caller)]);
      for (const running of serviceContainers(rr)) {
        const env = processEnv(containerEnv(running.container, rr));
        if ((env.OTEL_METRICS_EXPORTER ?? '').split(',').includes('prometheus')) admit(running.workload, metricsPort(running), monitoring);
      }
      for (const nats of natsContainers(rr)) {
        const conf = mountedConfig(rr, nats.workload);
        for (const running of serviceContainers(rr)) {
          for (const url of configOf(rr, running).natsUrl.split(',')) admit(nats.workload, dialedPort(rr, url.trim().replace(/^\w+:\/\//, ''), nats), [`pod:${running.workload.name}`]);
        }
        for (const route of conf.matchAll(/nats:\/\/[\w.-]+:(\d+)/g)) admit(nats.workload, Number(route[1]), [`pod:${nats.workload.name}`]);
        admit(nats.workload, natsMonitorPort(conf), monitoring);
      }
      const actual = new Map<string, string[]>();
      for (const { workload, container } of containers(rr)) for (const p of container.ports ?? []) actual.set(key(workload, p.containerPort), ingressPeers(rr, workload, container, p.containerPort));
      const sorted = (m: Map<string, Iterable<string>>) => Object.fromEntries([...m].map(([k, v]) => [k, [...v].sort()]).sort());
      expect(sorted(actual)).toEqual(sorted(intended));
    });

    it('keeps NATS\'s monitoring port (connections, subjects, accounts) from the infermesh pods and the cluster at large', () => {
      // The kubelet's /healthz probes come from the pod's node, which NetworkPolicy always admits.
      for (const nats of natsContainers(r())) {
        const port = natsMonitorPort(mountedConfig(r(), nats.workload));
        const peers = ingressPeers(r(), nats.workload, nats.container, port);
        expect({ port, anyone: peers.includes('anyone'), pods: peers.filter((p) => p.startsWith('pod:')) }).toEqual({ port, anyone: false, pods: [] });
      }
    });

    it('runs every container as a non-root user without privilege escalation', () => {
      for (const running of containers(r())) {
        const pod = running.workload.pod.securityContext ?? {};
        const own = running.container.securityContext ?? {};
        const where = `${running.workload.name}/${running.container.name}`;
        const user = own.runAsUser ?? pod.runAsUser;
        expect({ where, nonRoot: own.runAsNonRoot ?? pod.runAsNonRoot, noEscalation: own.allowPrivilegeEscalation === false, root: user === 0 })
          .toEqual({ where, nonRoot: true, noEscalation: true, root: false });
        // The image's own user, so files it owns stay readable.
        if (running.role.kind === 'service' && user !== undefined) expect(user).toBe(imageUser);
      }
    });
  });
});
