// The processes a benchmark measures, started exactly as `infermesh up` starts them: nats-server,
// the registry, inference pods (each with its own settings) and optionally the router, all on
// 127.0.0.1; then `mnist` is pushed and every pod (and the router) is waited on until it serves it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InferenceApi, RegistryApi, type ConnectOptions } from '../client';
import { newApiKey } from '../lib/auth';
import { createCa, issueCertificate, writePem, type CertificateAuthority, type PemFiles } from '../lib/pki';
import type { ServiceKind } from '../lib/tls';
import { startNatsServer, type NatsServerProcess } from '../cli/local-mesh/nats-server';
import { ROOT, startService, type ServiceName, type ServiceProcess } from '../cli/local-mesh/service-process';
import { MODEL } from './mnist-requests';

/** Settings every benchmark service shares: CPU only, on loopback. */
const COMMON_ENV: Record<string, string> = {
  INFERMESH_LISTEN_HOST: '127.0.0.1',
  INFERMESH_ADVERTISE_HOST: '127.0.0.1',
  INFERMESH_EXECUTION_PROVIDERS: 'cpu',
};

/** The secured mesh's trust: its CA, an admin token, and certificates for peers such as nginx. */
export interface BenchSecurity {
  caPem: string;
  token: string;
  /** Issues a certificate of `kind`/`name` for 127.0.0.1 and localhost, written as PEM files. */
  issue(kind: ServiceKind, name: string): Promise<PemFiles>;
}

/** A running set of benchmark processes. */
export interface BenchMesh {
  /** Set when the mesh runs secured (TLS with client certificates between services, tokens at the doors). */
  security?: BenchSecurity;
  registryAddress: string;
  /** Starts a pod with `env` on top of the common settings and waits until it serves mnist. */
  addPod(label: string, env?: Record<string, string>): Promise<ServiceProcess>;
  /** Starts a router with `env` and waits until it routes mnist to a pod. */
  startRouter(env?: Record<string, string>): Promise<ServiceProcess>;
  /** Where the processes write their logs. */
  logDir: string;
  /** Stops every process, newest first, and removes the data folder. */
  stop(): Promise<void>;
}

/** Polls `check` every 100 ms until it resolves true, for at most `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`benchmark: ${what} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Resolves once `address` answers ModelReady for mnist and one inference succeeds. */
export async function waitServing(what: string, address: string, connect: ConnectOptions = {}): Promise<void> {
  const api = new InferenceApi(address, connect);
  try {
    await waitFor(what, async () => (await api.modelReady(MODEL)) && (await api.infer(MODEL, [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: new Float32Array(784) }])).outputs.length > 0);
  } finally {
    api.close();
  }
}

/** A CA and an admin token in `dir`, as a secured mesh is given them. */
async function benchSecurity(dir: string): Promise<BenchSecurity & { ca: CertificateAuthority; tokenFile: string }> {
  const ca = await createCa({ commonName: 'infermesh bench CA' });
  const { token } = newApiKey();
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tokenFile = path.join(dir, 'admin.token');
  fs.writeFileSync(tokenFile, token, { mode: 0o600 });
  return {
    ca,
    caPem: ca.cert,
    token,
    tokenFile,
    issue: async (kind, name) => writePem(dir, `${kind}-${name}`, await issueCertificate(ca, { kind, name }), ca),
  };
}

/**
 * The environment of a secured service of `kind` with `files`: TLS on every hop, tokens at the
 * registry and the router (whose callers are people and programs with tokens, not certificates),
 * client certificates required by the pods (whose callers are the mesh's routers).
 */
function secureEnv(kind: ServiceKind, files: PemFiles): Record<string, string> {
  return {
    INFERMESH_TLS_CERT_FILE: files.certFile,
    INFERMESH_TLS_KEY_FILE: files.keyFile,
    INFERMESH_TLS_CA_FILE: files.caFile,
    INFERMESH_TLS_CLIENT_AUTH: String(kind === 'pod'),
    INFERMESH_AUTH: 'true',
  };
}

/**
 * Starts NATS and the registry, and pushes models/mnist.onnx as `mnist`. `secure`: every service
 * and NATS on TLS with client certificates, the registry and the router checking tokens (the
 * registry is given an admin token at start, which the benchmark's clients use).
 */
export async function startBenchMesh(opts: { secure?: boolean } = {}): Promise<BenchMesh> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-bench-'));
  const logDir = path.join(dataDir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const started: { stop(): Promise<unknown> }[] = [];
  const stop = async () => {
    for (const s of started.splice(0).reverse()) await s.stop().catch(() => undefined);
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const security = opts.secure ? await benchSecurity(path.join(dataDir, 'pki')) : undefined;
    const connect: ConnectOptions = security ? { ca: security.caPem, token: security.token } : {};
    let natsTls: string[] = [];
    if (security) {
      const f = await security.issue('nats', 'nats');
      natsTls = ['--tls', '--tlscert', f.certFile, '--tlskey', f.keyFile, '--tlscacert', f.caFile, '--tlsverify'];
    }
    const nats: NatsServerProcess = await startNatsServer({ storeDir: path.join(dataDir, 'nats'), logFile: path.join(logDir, 'nats.log'), extraArgs: natsTls });
    started.push(nats);
    // tls://: the services connect to NATS with their TLS files only at a tls:// URL (lib/tls.ts natsTlsOptions).
    const base: Record<string, string> = { ...COMMON_ENV, INFERMESH_NATS_URL: security ? nats.url.replace(/^nats:/, 'tls:') : nats.url };
    const start = async (name: ServiceName, label: string, env: Record<string, string>, kind?: ServiceKind) => {
      const secured = security && kind ? secureEnv(kind, await security.issue(kind, label)) : {};
      const p = await startService(name, { label, env: { ...base, ...secured, ...env }, logFile: path.join(logDir, `${label}.log`) });
      started.push(p);
      return p;
    };
    // Every pod a suite starts holds every model: the suites call pods and measure them, not
    // placement (whose default of two copies left the third pod of suite pod-tuning with none;
    // suite density measures placement with meshes of its own).
    const registry = await start('registry', 'registry', { INFERMESH_REGISTRY_PORT: '0', INFERMESH_CONSOLE_PORT: '0', INFERMESH_PLACEMENT_MIN_COPIES: String(1_000_000), ...(security && { INFERMESH_AUTH_BOOTSTRAP_TOKEN_FILE: security.tokenFile }) }, 'registry');
    const registryAddress = `127.0.0.1:${registry.port}`;
    base.INFERMESH_REGISTRY_URL = registryAddress;
    const registryApi = new RegistryApi(registryAddress, connect);
    await registryApi.push(MODEL, path.join(ROOT, 'models', 'mnist.onnx')).finally(() => registryApi.close());
    return {
      ...(security && { security: { caPem: security.caPem, token: security.token, issue: security.issue } }),
      registryAddress,
      logDir,
      async addPod(label, env = {}) {
        const pod = await start('inference', label, {
          INFERMESH_POD_NAME: label,
          INFERMESH_INFERENCE_PORT: '0',
          INFERMESH_MODEL_DIR: path.join(dataDir, 'models', label),
          ...env,
        }, 'pod');
        // A secured pod takes callers with a mesh certificate only: asked through the router in that case.
        if (!security) await waitServing(`pod ${label}`, `127.0.0.1:${pod.port}`);
        return pod;
      },
      async startRouter(env = {}) {
        const router = await start('router', 'router', { INFERMESH_ROUTER_PORT: '0', INFERMESH_ROUTER_HTTP_PORT: '0', ...env }, 'router');
        await waitServing('router', `127.0.0.1:${router.port}`, connect).catch((err: Error) => {
          // What the services said is the only clue left once stop() removes the data folder.
          const tail = (label: string) => fs.readFileSync(path.join(logDir, `${label}.log`), 'utf8').split('\n').slice(-15).join('\n');
          throw new Error(`${err.message}\nrouter log:\n${tail('router')}\npod logs:\n${fs.readdirSync(logDir).filter((f) => f.startsWith('pod')).map((f) => tail(f.replace(/\.log$/, ''))).join('\n')}`);
        });
        return router;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
