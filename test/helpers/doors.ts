// The mesh's two front doors for the HTTP/2 suites: a router and a pod, each its own process
// started the way a container runs it (serviceCommand's V8 flags) but from the TypeScript sources
// (test/helpers/ts-register.js), so they run the code in the tree. They share a real nats-server
// and a registry in this process; the pod serves models pushed through the registry, the router
// routes to it. Separate processes keep an attack from taking the test runner down, and make a
// door's memory its own: resident size and high-water mark from /proc/<pid>/status.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { InferenceApi, RegistryApi } from '../../client/index';
import { serviceCommand } from '../../cli/local-mesh/service-process';
import { heldOutDigits } from '../../tools/models/mnist-data';
import { modelPath } from './models';
import { startTestNats, type NatsServerProcess } from './nats';
import { startTestRegistry } from './services';
import { waitFor } from './wait';
import type { RegistryService } from '../../services/registry/registry-service';

const ROOT = path.resolve(__dirname, '../..');
const TS_REGISTER = path.join(__dirname, 'ts-register.js');

export type DoorName = 'router' | 'pod';

/** Peak resident memory of a door while something ran, against its size just before. */
export interface MemoryUse {
  baselineBytes: number;
  peakBytes: number;
  /** peakBytes − baselineBytes. */
  growthBytes: number;
}

/** One front door: a service process listening on 127.0.0.1. */
export interface Door {
  name: DoorName;
  address: string;
  port: number;
  /** Every port the service advertises: its gRPC door's, and the router's HTTP/REST door's. */
  advertisedPorts: number[];
  pid: number;
  /** Resident set size once started and warmed up, in bytes. */
  startRssBytes: number;
  /** Resident set size now (VmRSS), in bytes; throws once the process is gone. */
  rssBytes(): number;
  /**
   * Starts measuring: the resident size now is the baseline, and the peak is the kernel's
   * high-water mark from here (reset through /proc/<pid>/clear_refs) and samples every 20 ms.
   * Call the returned function to stop and read it.
   */
  watchMemory(): () => MemoryUse;
  /** Whether the process still runs. */
  alive(): boolean;
  /** Its last log lines, for failure messages. */
  recentLog(): string;
  /** A client of its own, closed with the door. */
  api: InferenceApi;
  /** A well-formed ModelInfer (mnist, one held-out digit) from a client of its own; throws unless the answer is right. */
  goodCall(timeoutMs?: number): Promise<void>;
}

export interface Doors {
  router: Door;
  pod: Door;
  natsUrl: string;
  /**
   * Replaces a door's process with a fresh one (a new port; for the pod, a new name the router
   * learns from its heartbeats), warmed up as at the start. For a suite whose previous case left
   * a door's memory larger than a fair baseline.
   */
  restart(name: DoorName): Promise<void>;
  close(): Promise<void>;
}

export interface DoorsOptions {
  /** INFERMESH_* settings of both doors (timeouts made short for tests, say). */
  env?: Record<string, string>;
  /** Models to push and serve besides mnist, as [name, file under models/]. */
  models?: readonly (readonly [string, string])[];
  /**
   * Well-formed calls through each door after it starts (4 at a time) before its baseline is taken
   * (default 0): V8's young generation grows to its working size under the first load.
   */
  warmupCalls?: number;
}

interface Service {
  child: ChildProcess;
  port: number;
  /** The router's HTTP/REST port, as its 'listening' line names it. */
  httpPort?: number;
  log: string[];
  exited: Promise<void>;
}

/** Starts services/<service>/main.ts as its own process and resolves once it listens. */
function startService(service: 'router' | 'inference', env: Record<string, string>, timeoutMs = 60_000): Promise<Service> {
  // The production command's V8 flags, with the sources instead of dist/ (no telemetry preload:
  // the doors export nothing).
  const flags = serviceCommand(service).filter((a) => a.startsWith('--') && a !== '--require');
  const child = spawn(process.execPath, [...flags, '--require', TS_REGISTER, path.join(ROOT, 'services', service, 'main.ts')], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    let port = -1;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${service} did not listen within ${timeoutMs} ms:\n${log.join('\n')}`));
    }, timeoutMs);
    const onLine = (line: string) => {
      log.push(line);
      if (log.length > 40) log.shift();
      if (port >= 0 || !line.startsWith('{')) return;
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number; httpPort?: number };
        if (entry.msg === 'listening' && typeof entry.port === 'number') {
          port = entry.port;
          clearTimeout(timer);
          resolve({ child, port, httpPort: entry.httpPort, log, exited });
        }
      } catch {
        // not a log line
      }
    };
    readline.createInterface({ input: child.stdout! }).on('line', onLine);
    readline.createInterface({ input: child.stderr! }).on('line', onLine);
    void exited.then(() => {
      if (port < 0) {
        clearTimeout(timer);
        reject(new Error(`${service} exited (${child.exitCode ?? child.signalCode}) before listening:\n${log.join('\n')}`));
      }
    });
  });
}

/** VmRSS or VmHWM of `pid`, in bytes. */
function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

const digit = heldOutDigits(1)[0]!;
const mnistInput = [{ name: 'input', datatype: 'FP32' as const, shape: [1, 784], data: digit.pixels }];

function door(name: DoorName, svc: Service): Door & { svc: Service } {
  const pid = svc.child.pid!;
  const address = `127.0.0.1:${svc.port}`;
  const api = new InferenceApi(address);
  return {
    name,
    address,
    port: svc.port,
    advertisedPorts: svc.httpPort === undefined ? [svc.port] : [svc.port, svc.httpPort],
    pid,
    startRssBytes: 0,
    api,
    rssBytes: () => procStatus(pid, 'VmRSS'),
    watchMemory() {
      const baselineBytes = procStatus(pid, 'VmRSS');
      let peakBytes = baselineBytes;
      let hwm = false;
      try {
        // 5: reset the peak resident size to the current one (Linux 4.0+).
        fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
        hwm = true;
      } catch {
        // Sampling alone.
      }
      const sample = () => {
        try {
          peakBytes = Math.max(peakBytes, procStatus(pid, 'VmRSS'));
        } catch {
          // The process is gone: alive() tells.
        }
      };
      const timer = setInterval(sample, 20).unref();
      return () => {
        clearInterval(timer);
        sample();
        if (hwm) {
          try {
            peakBytes = Math.max(peakBytes, procStatus(pid, 'VmHWM'));
          } catch {
            // gone
          }
        }
        return { baselineBytes, peakBytes, growthBytes: peakBytes - baselineBytes };
      };
    },
    svc,
    alive: () => svc.child.exitCode === null && svc.child.signalCode === null,
    recentLog: () => svc.log.join('\n'),
    async goodCall(timeoutMs = 10_000) {
      const res = await api.infer('mnist', mnistInput, { timeoutMs });
      const probs = res.outputs.find((o) => o.name === 'probabilities')!.data as Float32Array;
      const guess = probs.indexOf(Math.max(...probs));
      if (guess !== digit.label) throw new Error(`${name}: mnist answered ${guess} for a ${digit.label}`);
    },
  };
}

/** Stops a service: SIGTERM (its graceful drain), SIGKILL after `timeoutMs`. */
async function stop(svc: Service | undefined, timeoutMs = 5_000): Promise<void> {
  if (!svc || svc.child.exitCode !== null || svc.child.signalCode !== null) return;
  svc.child.kill('SIGTERM');
  const t = setTimeout(() => svc.child.kill('SIGKILL'), timeoutMs);
  await svc.exited;
  clearTimeout(t);
}

/**
 * NATS, a registry with mnist (and `models`) pushed, a pod serving them and a router that routes
 * to it; resolves once a ModelInfer through each door has the right answer.
 */
export async function startDoors(opts: DoorsOptions = {}): Promise<Doors> {
  type Running = Door & { svc: Service };
  let nats: (NatsServerProcess & { cleanup(): Promise<void> }) | undefined;
  let registry: RegistryService | undefined;
  let registryApi: RegistryApi | undefined;
  let pod: Running | undefined;
  let router: Running | undefined;
  const modelDirs: string[] = [];
  const models = ['mnist', ...(opts.models ?? []).map(([name]) => name)];
  const close = async () => {
    router?.api.close();
    pod?.api.close();
    registryApi?.close();
    await stop(router?.svc);
    await stop(pod?.svc);
    await registry?.shutdown(5_000).catch(() => undefined);
    await nats?.cleanup();
    for (const dir of modelDirs) fs.rmSync(dir, { recursive: true, force: true });
  };
  const warm = async (d: Running) => {
    const each = Math.ceil((opts.warmupCalls ?? 0) / 4);
    await Promise.all(Array.from({ length: 4 }, async () => {
      for (let i = 0; i < each; i++) await d.goodCall();
    }));
    d.startRssBytes = d.rssBytes();
  };
  try {
    nats = await startTestNats();
    registry = await startTestRegistry(nats.url);
    registryApi = new RegistryApi(`127.0.0.1:${registry.port}`);
    for (const [name, file] of [['mnist', 'mnist.onnx'] as const, ...(opts.models ?? [])]) await registryApi.push(name, modelPath(file));
    const base: Record<string, string> = {
      INFERMESH_NATS_URL: nats.url,
      INFERMESH_REGISTRY_URL: `127.0.0.1:${registry.port}`,
      INFERMESH_LISTEN_HOST: '127.0.0.1',
      INFERMESH_ADVERTISE_HOST: '127.0.0.1',
      INFERMESH_EXECUTION_PROVIDERS: 'cpu',
      INFERMESH_INTRA_OP_THREADS: '1',
      INFERMESH_HEARTBEAT_INTERVAL_MS: '200',
      INFERMESH_POD_TTL_MS: '3000',
      INFERMESH_SHUTDOWN_TIMEOUT_MS: '2000',
      INFERMESH_LOG_LEVEL: 'info',
      ...opts.env,
    };
    const startPod = async (): Promise<Running> => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-doors-'));
      modelDirs.push(dir);
      const d = door('pod', await startService('inference', { ...base, INFERMESH_INFERENCE_PORT: '0', INFERMESH_MODEL_DIR: dir, INFERMESH_POD_NAME: `pod-${path.basename(dir)}` }));
      await waitFor(`the pod to serve ${models.join(', ')}`, async () => (await Promise.all(models.map((m) => d.api.modelReady(m)))).every(Boolean), 60_000, 200);
      return d;
    };
    const startRouter = async (): Promise<Running> => door('router', await startService('router', { ...base, INFERMESH_ROUTER_PORT: '0', INFERMESH_ROUTER_HTTP_PORT: '0' }));
    // Through the router, a call reaches the pod of the moment only once the router knows it.
    const routed = () => waitFor('a call through the router', () => router!.goodCall(5_000).then(() => true), 30_000, 200);
    pod = await startPod();
    router = await startRouter();
    await routed();
    await warm(pod);
    await warm(router);
    const doors: Doors = {
      router,
      pod,
      natsUrl: nats.url,
      async restart(name) {
        if (name === 'pod') {
          const old = pod!;
          old.api.close();
          await stop(old.svc);
          pod = doors.pod = await startPod();
          await routed();
          await warm(pod);
        } else {
          const old = router!;
          old.api.close();
          await stop(old.svc);
          router = doors.router = await startRouter();
          await routed();
          await warm(router);
        }
      },
      close,
    };
    return doors;
  } catch (err) {
    await close();
    throw err;
  }
}
