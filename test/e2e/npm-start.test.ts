// What `npm start` runs (`infermesh up`), checked the way a newcomer would: a plain gRPC client
// built only from the KServe v2 proto file (no infermesh code) gets the right digit for real MNIST
// images; Ctrl-C leaves no process behind; a second start still serves the model pushed before.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { heldOutDigits } from '../../tools/models/mnist-data';
import { freePort } from '../../cli/local-mesh/free-port';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

const root = path.resolve(__dirname, '../..');

/** Pids of processes whose environment holds `marker` (everything `up` started inherits it). */
function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(marker)) pids.push(Number(entry));
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

describe('npm start (infermesh up)', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-up-'));
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('serves mnist to a plain KServe v2 client, stops cleanly, and keeps its models across restarts', async () => {
    const routerPort = await freePort();
    const env = { INFERMESH_ROUTER_PORT: String(routerPort), INFERMESH_REGISTRY_PORT: String(await freePort()) };
    const marker = `INFERMESH_ROUTER_PORT=${routerPort}`;
    const digits = heldOutDigits(30);

    for (const run of [1, 2]) {
      const { child, output } = await up(dataDir, env);
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

      child.kill('SIGINT');
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code).toBe(0);
      expect(output()).toContain('infermesh: stopped');
      await waitFor('every process of the mesh to exit', () => processesWith(marker).length === 0, 10_000);
    }
  });
});
