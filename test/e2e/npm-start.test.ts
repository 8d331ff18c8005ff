// What `npm start` runs (`infermesh up`), checked the way a newcomer would: a plain gRPC client
// built only from the KServe v2 proto file (no infermesh code) gets the right digit for real MNIST
// images; Ctrl-C leaves no process behind; a second start still serves the model pushed before;
// a pod killed under steady load costs no failed request and is back within seconds, and so are a
// killed registry and a killed nats-server.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { heldOutDigits } from '../../tools/models/mnist-data';
import { freePort } from '../../cli/local-mesh/free-port';
import { InferenceApi, RegistryApi } from '../../client/index';
import { inferenceClient, unary } from '../../lib/grpc/client';
import type { ModelStatistics__Output } from '../../lib/grpc/generated/inference/ModelStatistics';
import { runLoad, sleep } from '../helpers/load';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

const root = path.resolve(__dirname, '../..');

/** Pids of processes whose environment holds every one of `markers` (everything `up` started inherits the first). */
function processesWith(...markers: string[]): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = fs.readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (markers.every((m) => environ.includes(m))) pids.push(Number(entry));
    } catch {
      // gone, or not ours
    }
  }
  return pids;
}

/** Runs `infermesh up` until it says it is serving; resolves with the process and its output. */
async function up(dataDir: string, env: Record<string, string>): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [path.join(root, 'dist/cli/main.js'), 'up', '--data-dir', dataDir], {
    cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor('infermesh up to serve mnist', () => {
    if (child.exitCode !== null) throw new Error(`up exited ${child.exitCode}:\n${out}`);
    return out.includes('Press Ctrl-C to stop.');
  }, 120_000, 100);
  return { child, output: () => out };
}

/** A client from nothing but the protocol's .proto file. */
function plainClient(address: string) {
  const def = protoLoader.loadSync(path.join(root, 'proto/inference/grpc_service.proto'), { keepCase: true, longs: String, enums: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { inference: { GRPCInferenceService: grpc.ServiceClientConstructor } };
  return new pkg.inference.GRPCInferenceService(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, (...args: unknown[]) => unknown>;
}

function classify(client: ReturnType<typeof plainClient>, pixels: Float32Array): Promise<{ label: number; version: string }> {
  const request = {
    model_name: 'mnist',
    inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784] }],
    outputs: [{ name: 'probabilities' }],
    raw_input_contents: [Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength)],
  };
  return new Promise((resolve, reject) => {
    client.ModelInfer!(request, (err: grpc.ServiceError | null, res: { model_version: string; raw_output_contents: Buffer[] }) => {
      if (err) return reject(err);
      const raw = res.raw_output_contents[0]!;
      const p = Array.from({ length: 10 }, (_, i) => raw.readFloatLE(i * 4));
      resolve({ label: p.indexOf(Math.max(...p)), version: res.model_version });
    });
  });
}

/** A running `infermesh up`, the ports it was given, and the marker its processes' environments hold. */
interface Mesh {
  child: ChildProcess;
  output: () => string;
  env: Record<string, string>;
  routerPort: number;
  registryPort: number;
  marker: string;
}

/** `infermesh up` on free ports, or on those of `env` (a start again). */
async function startMesh(dataDir: string, env?: Record<string, string>): Promise<Mesh> {
  env ??= { INFERMESH_ROUTER_PORT: String(await freePort()), INFERMESH_REGISTRY_PORT: String(await freePort()), INFERMESH_ROUTER_HTTP_PORT: String(await freePort()), INFERMESH_CONSOLE_PORT: String(await freePort()) };
  const routerPort = Number(env.INFERMESH_ROUTER_PORT);
  return { ...(await up(dataDir, env)), env, routerPort, registryPort: Number(env.INFERMESH_REGISTRY_PORT), marker: `INFERMESH_ROUTER_PORT=${routerPort}` };
}

/** Ctrl-C: `up` exits 0 and every process of its mesh with it. */
async function stopMesh({ child, output, marker }: Mesh): Promise<void> {
  child.kill('SIGINT');
  const code = await new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve)));
  expect(code).toBe(0);
  expect(output()).toContain('infermesh: stopped');
  await waitFor('every process of the mesh to exit', () => processesWith(marker).length === 0, 10_000);
}

describe('npm start (infermesh up)', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-up-'));
  // The first test's second start, left running for the second test: each start of the whole mesh
  // took a quarter of this file's time, and what the second test does to a mesh needs no fresh one.
  let running: Mesh | undefined;
  const started: Mesh[] = [];
  const start = async (env?: Record<string, string>) => {
    const mesh = await startMesh(dataDir, env);
    started.push(mesh);
    return mesh;
  };
  afterAll(() => {
    // What a failed test left running.
    for (const { child, marker } of started) {
      if (child.exitCode === null) child.kill('SIGKILL');
      for (const pid of processesWith(marker)) process.kill(pid, 'SIGKILL');
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves mnist to a plain KServe v2 client, stops cleanly, and keeps its models across restarts', async () => {
    const digits = heldOutDigits(30);
    let mesh!: Mesh;

    for (const run of [1, 2]) {
      // The second time on the same ports and data.
      mesh = await start(run === 1 ? undefined : mesh.env);
      const { output, routerPort, marker, env } = mesh;
      expect(output()).toContain(run === 1 ? "pushed models/mnist.onnx as 'mnist' version 1" : "'mnist' version 1 is already in the registry");
      expect(processesWith(marker).length).toBeGreaterThanOrEqual(6); // up, nats, registry, router, 2 pods
      const client = plainClient(`127.0.0.1:${routerPort}`);
      const answers = await Promise.all(digits.map((d) => classify(client, d.pixels)));
      // Triton's ModelConfig, as perf_analyzer reads it, from the same two .proto files.
      const config = await new Promise<{ config: { max_batch_size: number; input: { name: string; data_type: string; dims: string[] }[] } }>((resolve, reject) =>
        client.ModelConfig!({ name: 'mnist' }, (err: grpc.ServiceError | null, res: never) => (err ? reject(err) : resolve(res))));
      client.close();
      expect(config.config.max_batch_size).toBeGreaterThan(0);
      expect(config.config.input).toEqual([expect.objectContaining({ name: 'input', data_type: 'TYPE_FP32', dims: ['784'] })]);
      expect(answers.every((a) => a.version === '1')).toBe(true);
      const correct = answers.filter((a, i) => a.label === digits[i]!.label).length;
      expect(correct).toBeGreaterThanOrEqual(27);
      // The curl call it prints, made as printed: the example file holds a held-out 7.
      const printed = /curl -s (\S+)(\/v2\/models\/mnist\/infer) -d @(\S+)/.exec(output());
      expect(printed).not.toBeNull();
      const rest = await fetch(`http://${printed![1]}${printed![2]}`, { method: 'POST', body: fs.readFileSync(path.resolve(root, printed![3]!)) });
      const probs = ((await rest.json()) as { outputs: { name: string; data: number[] }[] }).outputs.find((o) => o.name === 'probabilities')!.data;
      expect(probs.indexOf(Math.max(...probs))).toBe(7);
      // The console's URL it prints serves the console, which knows mnist.
      const consoleUrl = /Console: +(http:\/\/\S+)/.exec(output())?.[1];
      expect(consoleUrl).toBe(`http://127.0.0.1:${env.INFERMESH_CONSOLE_PORT}/`);
      expect(await (await fetch(consoleUrl!)).text()).toContain('<title>infermesh console</title>');
      const listed = (await (await fetch(`${consoleUrl!}api/models`)).json()) as { models: { model: { name: string } }[] };
      expect(listed.models.map((m) => m.model.name)).toEqual(['mnist']);

      if (run === 1) await stopMesh(mesh);
      else running = mesh;
    }
  });

  it('restarts a pod killed under steady load without a failed request, then a killed registry and NATS', async () => {
    // The mesh the first test started again (a fresh one where that test did not get so far).
    const mesh = running ?? (await start());
    const { output, routerPort, registryPort, marker } = mesh;
    const api = new InferenceApi(`127.0.0.1:${routerPort}`);
    const registry = new RegistryApi(`127.0.0.1:${registryPort}`);
    const input = [{ name: 'input', datatype: 'FP32' as const, shape: [1, 784], data: heldOutDigits(1)[0]!.pixels }];
    let stopLoad!: () => void;
    const load = runLoad(api, 'mnist', input, { concurrency: 4, until: new Promise<void>((r) => (stopLoad = r)) });
    try {
      await sleep(1_000);

      const [victim, ...others] = processesWith(marker, 'INFERMESH_POD_NAME=pod-1');
      expect(others).toEqual([]);
      process.kill(victim!, 'SIGKILL');
      const restarted = await waitFor('pod-1 restarted', () => /pod-1 restarted \(pid (\d+), port (\d+)/.exec(output()), 30_000, 50);
      expect(output()).toMatch(/pod-1 exited \(signal SIGKILL\); restarting in \d+ ms/);
      expect(Number(restarted[1])).not.toBe(victim);
      expect(processesWith(marker, 'INFERMESH_POD_NAME=pod-1')).toEqual([Number(restarted[1])]);
      // The new pod-1 loads mnist again and the router sends it traffic.
      await waitFor('the restarted pod-1 serves requests', async () => (await successes(`127.0.0.1:${restarted[2]}`)) > 0, 60_000);
      await sleep(500);
      stopLoad();
      const result = await load;
      expect([...result.errors]).toEqual([]);
      expect(result.failed).toBe(0);
      expect(result.ok).toBeGreaterThan(50);

      // The registry too: killed, restarted on its port, and it still knows the model.
      const [registryPid] = processesWith(marker).filter((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('services/registry/main.js'));
      process.kill(registryPid!, 'SIGKILL');
      await waitFor('registry restarted', () => /registry restarted \(pid \d+, port \d+/.test(output()), 30_000, 50);
      expect((await registry.models()).map((m) => m.name)).toEqual(['mnist']);
      expect((await api.infer('mnist', input)).modelVersion).toBe('1');

      // And NATS: restarted on its port and store; the registry reads its KV again.
      const [natsPid] = processesWith(marker).filter((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('nats-server'));
      process.kill(natsPid!, 'SIGKILL');
      await waitFor('nats restarted', () => /nats restarted \(pid \d+, port \d+/.test(output()), 30_000, 50);
      await waitFor('the registry reads its store again', async () => (await registry.models()).length === 1, 30_000);
      expect((await api.infer('mnist', input)).modelVersion).toBe('1');
    } finally {
      stopLoad();
      await load;
      api.close();
      registry.close();
      await stopMesh(mesh);
    }
  });
});

/** Successful inferences of mnist a pod served, from its own ModelStatistics. */
async function successes(address: string): Promise<number> {
  const c = inferenceClient(address);
  try {
    const res = await unary<{ model_stats: ModelStatistics__Output[] }>((cb) => c.ModelStatistics({ name: 'mnist', version: '' }, cb));
    return res.model_stats.reduce((n, st) => n + Number(st.inference_stats?.success?.count ?? 0), 0);
  } finally {
    c.close();
  }
}
