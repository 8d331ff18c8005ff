// deploy/k8s run for real, without a cluster: overlays/cert-manager rendered with `kubectl kustomize`,
// then its three NATS servers (nats.conf and nats-auth.conf as rendered, with the nkeys of
// tools/k8s/nats-auth.ts and certificates made with the Certificates' names) and its registry,
// router and inference pod run from dist/ with each container's environment as Kubernetes builds
// it. Only what a cluster gives is stood in for: each volume becomes a folder (a Secret's the
// files cert-manager would write), each Service name localhost, each container port a free port.
// The probes the manifests give pass, a pushed model is served through the router, no one is
// refused on NATS what its code does, and NATS serves a renewed certificate without a restart.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { InferenceApi, RegistryApi } from '../../../client/index';
import { freePort } from '../../../cli/local-mesh/free-port';
import { ROOT, startService, type ServiceName, type ServiceProcess } from '../../../cli/local-mesh/service-process';
import { createCa, issueCertificate, type CertificateAuthority } from '../../../lib/pki';
import { newApiKey } from '../../../lib/auth';
import type { ServiceKind } from '../../../lib/tls';
import { natsSecrets, PUBLIC_KEYS_SECRET } from '../../../tools/k8s/nats-auth';
import { heldOutDigits } from '../../../tools/models/mnist-data';
import { modelPath } from '../../helpers/models';
import { waitFor } from '../../helpers/wait';
import { containerEnv, kubectlVersion, Rendered, render, type EnvSource, type Workload } from './kube';
import type { IContainer } from 'kubernetes-models/v1/Container';

jest.setTimeout(240_000);

const k8s = path.resolve(__dirname, '../../../deploy/k8s');
// Without kubectl, as in manifests.test.ts: a warning, and a failure in CI, which installs it.
const suite: (name: string, fn: () => void) => void = kubectlVersion()
  ? describe
  : (name) => {
    test(name, () => {
      if (process.env.CI) throw new Error('kubectl is not on PATH: .ci/run must install it before the tests');
      console.warn(`kubectl not found: "${name}" is not checked (install kubectl 1.27 or newer to check it)`);
    });
  };

/** A pod of the rendered manifests, run here: its container, and where its volumes are. */
interface LocalPod {
  name: string;
  workload: Workload;
  container: IContainer;
  /** mountPath → local folder. */
  mounts: Map<string, string>;
  /** containerPort → the port it listens on here. */
  ports: Map<number, number>;
  env: Record<string, string>;
}

suite('deploy/k8s run as rendered', () => {
  let dir: string;
  let r: Rendered;
  let ca: CertificateAuthority;
  const token = newApiKey().token;
  const nats: { pod: LocalPod; child: ChildProcess; log: string[] }[] = [];
  const services = new Map<string, { pod: LocalPod; proc: ServiceProcess; log: string[] }>();
  /** Service name → host:port here, per Service port. */
  const serviceAddress = new Map<string, string>();

  /** The folder holding Secret `name`'s files (tls.crt, tls.key, ca.crt; seed; token). */
  const secretDir = (name: string) => path.join(dir, 'secrets', name);

  function writeSecret(name: string, files: Record<string, string>): void {
    fs.mkdirSync(secretDir(name), { recursive: true });
    for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(secretDir(name), file), text, { mode: 0o600 });
  }

  /** Issues a certificate as cert-manager would from a Certificate's spec (or a CSI volume's attributes). */
  async function issue(uris: string[], hosts: string[]): Promise<Record<string, string>> {
    const m = /^spiffe:\/\/infermesh\/([^/]+)\/(.+)$/.exec(uris[0] ?? '');
    // lib/pki always writes a SPIFFE ID; NATS's certificate names none in the manifests, and no one checks one there.
    const [kind, name] = m ? [m[1] as ServiceKind, decodeURIComponent(m[2] ?? '')] : ['nats' as ServiceKind, 'nats'];
    const issued = await issueCertificate(ca, { kind, name, hosts });
    return { 'tls.crt': issued.cert, 'tls.key': issued.key, 'ca.crt': ca.cert };
  }

  /** Replaces mount paths in `value` with their local folders. */
  function localPath(pod: LocalPod, value: string): string {
    for (const [mountPath, local] of [...pod.mounts].sort((a, b) => b[0].length - a[0].length)) {
      if (value === mountPath || value.startsWith(`${mountPath}/`)) return local + value.slice(mountPath.length);
    }
    return value;
  }

  async function localPod(workload: Workload, index: number): Promise<LocalPod> {
    const container = workload.pod.containers[0] as IContainer;
    const name = `${workload.name}-${index}`;
    const pod: LocalPod = { name, workload, container, mounts: new Map(), ports: new Map(), env: {} };
    for (const p of container.ports ?? []) pod.ports.set(p.containerPort, await freePort());
    for (const m of container.volumeMounts ?? []) {
      const v = (workload.pod.volumes ?? []).find((x) => x.name === m.name);
      let local = path.join(dir, 'pods', name, m.name);
      if (v?.secret?.secretName) local = secretDir(v.secret.secretName);
      else if (v?.configMap?.name) {
        fs.mkdirSync(local, { recursive: true });
        for (const [file, text] of Object.entries(r.configMap(v.configMap.name).data ?? {})) fs.writeFileSync(path.join(local, file), text);
      } else if (v?.csi) {
        const attrs = Object.fromEntries(Object.entries(v.csi.volumeAttributes ?? {}).map(([k, val]) => [k, val.replace(/\$\{POD_NAME\}/g, name).replace(/\$\{POD_NAMESPACE\}/g, 'infermesh')]));
        const split = (s: string | undefined) => (s ?? '').split(',').map((x) => x.trim()).filter(Boolean);
        fs.mkdirSync(local, { recursive: true });
        for (const [file, text] of Object.entries(await issue(split(attrs['csi.cert-manager.io/uri-sans']), split(attrs['csi.cert-manager.io/dns-names'])))) fs.writeFileSync(path.join(local, file), text, { mode: 0o600 });
      } else fs.mkdirSync(local, { recursive: true });
      pod.mounts.set(m.mountPath, local);
    }
    for (const claim of workload.statefulSet?.spec?.volumeClaimTemplates ?? []) {
      const m = (container.volumeMounts ?? []).find((x) => x.name === claim.metadata?.name);
      if (m) fs.mkdirSync(pod.mounts.get(m.mountPath) ?? '', { recursive: true });
    }
    return pod;
  }

  /** The environment Kubernetes gives the container, its paths, ports and Service names made local. */
  function podEnv(pod: LocalPod): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [key, source] of containerEnv(pod.container, r) as Map<string, EnvSource>) {
      if (source.from === 'field') out[key] = source.fieldPath === 'status.podIP' ? '127.0.0.1' : pod.name;
      else if (source.from === 'secret') out[key] = fs.readFileSync(path.join(secretDir(source.secret), source.key), 'utf8');
      else if (source.from === 'value' || source.from === 'configMap') {
        let value = localPath(pod, source.value);
        // A port setting: the container port it names, here.
        if (/_PORT$/.test(key) && /^\d+$/.test(value)) value = String(pod.ports.get(Number(value)) ?? value);
        // A Service's address (nats:4222, tls://nats:4222, registry:8003): where it is here.
        value = value.replace(/\b([a-z][a-z0-9-]*):(\d+)\b/g, (whole, host: string, port: string) => serviceAddress.get(`${host}:${port}`) ?? whole);
        out[key] = value;
      }
    }
    return out;
  }

  /** `text` (a command, a script) with every mount path in it made local. */
  function localPaths(pod: LocalPod, text: string): string {
    let out = text;
    for (const [mountPath, local] of [...pod.mounts].sort((a, b) => b[0].length - a[0].length)) out = out.split(`${mountPath}/`).join(`${local}/`);
    return out;
  }

  function natsConfig(pod: LocalPod, routePorts: number[]): string {
    const confDir = pod.mounts.get('/etc/nats') ?? '';
    for (const file of fs.readdirSync(confDir)) {
      let text = fs.readFileSync(path.join(confDir, file), 'utf8');
      text = text.replace(/"(\/[^"]+)"/g, (_w, p: string) => JSON.stringify(localPath(pod, p)));
      text = text.replace(/(^\s*store_dir:\s*)"?([^"\s]+)"?/m, (_w, k: string, p: string) => `${k}${JSON.stringify(localPath(pod, p))}`);
      text = text.replace(/^(\s*(?:port|http_port)\s*:\s*)(\d+)/gm, (_w, k: string, p: string) => `${k}${pod.ports.get(Number(p)) ?? p}`);
      text = text.replace(/nats:\/\/nats-(\d+)\.nats-headless:\d+/g, (_w, i: string) => `nats://localhost:${routePorts[Number(i)]}`);
      fs.writeFileSync(path.join(confDir, file), text);
    }
    return path.join(confDir, 'nats.conf');
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-kube-'));
    r = new Rendered(render(path.join(k8s, 'overlays/cert-manager')));
    ca = await createCa({ commonName: 'infermesh CA' });
    // What cert-manager writes: each Certificate's Secret. Service names stand for localhost here,
    // so NATS's and the registry's certificates also name it (the registry's already does).
    for (const cert of r.certificates) {
      const spec = cert.spec as { secretName: string; isCA?: boolean; uris?: string[]; dnsNames?: string[]; ipAddresses?: string[] };
      if (spec.isCA) continue;
      const hosts = [...(spec.dnsNames ?? []), ...(spec.ipAddresses ?? [])];
      if (spec.secretName === 'nats-tls') hosts.push('localhost');
      writeSecret(spec.secretName, await issue(spec.uris ?? [], hosts));
    }
    // What the operator makes (docs/deploy.md): the nkeys and the first admin token.
    for (const item of (natsSecrets('infermesh') as { items: { metadata: { name: string }; stringData: Record<string, string> }[] }).items) writeSecret(item.metadata.name, item.stringData);
    writeSecret('infermesh-bootstrap-token', { token });
    expect(fs.existsSync(secretDir(PUBLIC_KEYS_SECRET))).toBe(true);

    // NATS: the StatefulSet's three servers, routes to each other.
    const natsSet = r.workloads.find((w) => w.kind === 'StatefulSet') as Workload;
    const natsPods = await Promise.all([0, 1, 2].map((i) => localPod(natsSet, i)));
    const routePorts = natsPods.map((p) => p.ports.get(6222) ?? 0);
    for (const pod of natsPods) {
      pod.env = podEnv(pod);
      natsConfig(pod, routePorts);
      const [bin = '', ...args] = (pod.container.command ?? []).map((a) => localPaths(pod, a));
      const child = spawn(bin, args, { env: { PATH: process.env.PATH ?? '', ...pod.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      const log: string[] = [];
      for (const out of [child.stdout, child.stderr]) out?.setEncoding('utf8').on('data', (d: string) => log.push(...d.split('\n').filter(Boolean)));
      nats.push({ pod, child, log });
    }
    for (const svc of r.services) {
      const target = svc.metadata?.name === 'nats' ? natsPods[0] : undefined;
      for (const p of svc.spec?.ports ?? []) if (target) serviceAddress.set(`${svc.metadata?.name}:${p.port}`, `localhost:${target.ports.get(p.port) ?? p.port}`);
    }
    await waitFor('the NATS servers ready', () => nats.every((n) => n.log.some((l) => /Server is ready/.test(l))), 60_000);

    // The services, in the order they need each other.
    for (const name of ['registry', 'router', 'inference'] as ServiceName[]) {
      const workload = r.workloads.find((w) => w.name === name) as Workload;
      const pod = await localPod(workload, 0);
      pod.env = podEnv(pod);
      const log: string[] = [];
      const proc = await startService(name, { env: pod.env, onLine: (l) => log.push(l), timeoutMs: 60_000 });
      services.set(name, { pod, proc, log });
      for (const svc of r.services.filter((s) => s.metadata?.name === name)) {
        for (const p of svc.spec?.ports ?? []) {
          const target = typeof p.targetPort === 'string' ? pod.container.ports?.find((c) => c.name === p.targetPort)?.containerPort : (p.targetPort ?? p.port);
          serviceAddress.set(`${name}:${p.port}`, `localhost:${pod.ports.get(target ?? p.port) ?? p.port}`);
        }
      }
    }
  });

  afterAll(async () => {
    for (const s of [...services.values()].reverse()) await s.proc.stop(10_000);
    // Each server with what its container runs beside it: the whole process group.
    const signalGroup = (child: ChildProcess, signal: NodeJS.Signals) => {
      try {
        process.kill(-(child.pid ?? 0), signal);
      } catch {
        // the group is gone
      }
    };
    for (const n of nats) signalGroup(n.child, 'SIGTERM');
    await Promise.all(nats.map((n) => new Promise((resolve) => (n.child.exitCode !== null || n.child.signalCode !== null ? resolve(null) : n.child.once('exit', resolve)))));
    for (const n of nats) signalGroup(n.child, 'SIGKILL');
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Runs a probe's exec command as the kubelet does: in the container, with its environment. */
  const runProbe = (pod: LocalPod, command: string[]) => new Promise<{ status: number | null; stderr: string }>((resolve) => {
    const [bin = '', ...args] = command;
    const local = args.map((a) => (/^\d+$/.test(a) ? String(pod.ports.get(Number(a)) ?? a) : a));
    execFile(bin === 'node' ? process.execPath : bin, local, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...pod.env }, timeout: 20_000 }, (err, _out, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr: String(stderr) });
    });
  });

  it('passes every exec probe of every service', async () => {
    for (const [name, { pod }] of services) {
      for (const probe of [pod.container.startupProbe, pod.container.readinessProbe]) {
        const command = probe?.exec?.command;
        if (!command) continue;
        const ok = await waitFor(`${name}'s probe`, async () => ((await runProbe(pod, command)).status === 0 ? true : undefined), 60_000, 500).catch(() => false);
        const last = ok ? { status: 0, stderr: '' } : await runProbe(pod, command);
        expect({ name, status: last.status, stderr: last.stderr }).toEqual({ name, status: 0, stderr: '' });
      }
    }
  });

  it('serves a pushed model through the router, with the pod in the registry\'s view', async () => {
    const caPem = ca.cert;
    const registry = new RegistryApi(serviceAddress.get('registry:8003') ?? '', { ca: caPem, token });
    const router = new InferenceApi(serviceAddress.get('router:8001') ?? '', { ca: caPem, token });
    try {
      await registry.push('mnist', modelPath('mnist.onnx'));
      await waitFor('mnist through the router', () => router.modelReady('mnist').catch(() => false), 120_000, 500);
      const digit = heldOutDigits(1)[0]!;
      const res = await router.infer('mnist', [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: digit.pixels }]);
      const p = Array.from(res.outputs[0]!.data as Float32Array);
      expect(p.indexOf(Math.max(...p))).toBe(digit.label);
      const pods = await registry.pods();
      expect(pods.map((x) => x.name)).toContain('inference-0');
      // The REST door, on the router Service's other port (its health needs a token, docs/rest.md).
      const rest = await new Promise<number | undefined>((resolve, reject) => {
        https.get(new URL('/v2/health/ready', `https://${serviceAddress.get('router:8000')}`), { ca: caPem, headers: { authorization: `Bearer ${token}` } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode));
        }).on('error', reject);
      });
      expect(rest).toBe(200);
    } finally {
      registry.close();
      router.close();
    }
  });

  it('serves NATS clients the certificate cert-manager renewed, without a restart', async () => {
    const caPem = ca.cert;
    const client = { cert: fs.readFileSync(path.join(secretDir('registry-tls'), 'tls.crt')), key: fs.readFileSync(path.join(secretDir('registry-tls'), 'tls.key')) };
    /** The serial of the certificate a NATS server shows a new client (INFO in the clear, then TLS, as NATS clients do). */
    const servedSerial = (port: number) => new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('error', reject);
      socket.once('data', () => {
        const t = tls.connect({ socket, servername: 'localhost', ca: caPem, ...client }, () => {
          resolve(t.getPeerCertificate().serialNumber);
          t.destroy();
        });
        t.once('error', reject);
      });
    });
    const spec = r.certificates.find((c) => (c.spec as { secretName: string }).secretName === 'nats-tls')?.spec as { dnsNames: string[] };
    const renewed = await issue([], [...spec.dnsNames, 'localhost']);
    // As the kubelet updates a Secret's volume: every file replaced at once.
    const next = `${secretDir('nats-tls')}.next`;
    fs.mkdirSync(next);
    for (const [file, text] of Object.entries(renewed)) fs.writeFileSync(path.join(next, file), text, { mode: 0o600 });
    for (const file of Object.keys(renewed)) fs.renameSync(path.join(next, file), path.join(secretDir('nats-tls'), file));
    const serial = new X509Certificate(renewed['tls.crt'] ?? '').serialNumber;
    for (const n of nats) {
      const port = n.pod.ports.get(4222) ?? 0;
      await waitFor(`${n.pod.name} to serve the renewed certificate`, async () => ((await servedSerial(port)) === serial ? true : undefined), 60_000, 500);
    }
  });

  it('refuses no service on NATS what its code does', () => {
    const violations = nats.flatMap((n) => n.log.filter((l) => /Permissions Violation|Authorization Violation/i.test(l)));
    const refused = [...services.values()].flatMap((s) => s.log.filter((l) => /permission|authorization violation/i.test(l)).map((l) => `${s.pod.name}: ${l}`));
    expect({ violations, refused }).toEqual({ violations: [], refused: [] });
  });
});
