// h2load (nghttp2's load client, Debian: nghttp2-client) as a second client beside the project's
// own, so that a table does not rest on one client: the same framed ModelInfer request sent over
// and over, and the server's CPU per request read from /proc around the run.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { grpcFrame, H2UnaryConnection } from './h2-unary';
import { encodeInferRequest, MODEL_INFER_PATH } from './mnist-requests';
import type { Digit } from '../tools/models/mnist-data';
import { totalCpuMs } from './proc-cpu';

/** One h2load run: requests per second, mean latency, and the server's CPU per request. */
export interface H2loadResult {
  perSecond: number;
  meanMs: number;
  succeeded: number;
  failed: number;
  cpuUsPerCall: number;
}

/** The h2load binary, or undefined. */
export function findH2load(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v h2load'], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() || undefined : undefined;
}

/** h2load's run length in whole seconds for a point of `durationMs` (at least one). */
export function h2loadSeconds(durationMs: number): number {
  return Math.max(1, Math.round(durationMs / 1000));
}

/** Writes the framed batch-1 MNIST request for `digit` to `file`; returns its bytes. */
export function writeDigitBody(file: string, digit: Digit): Buffer {
  const body = grpcFrame(encodeInferRequest({
    model_name: 'mnist',
    inputs: [{ name: 'input', datatype: 'FP32', shape: [1, digit.pixels.length] }],
    outputs: [{ name: 'probabilities' }],
    raw_input_contents: [Buffer.from(Float32Array.from(digit.pixels).buffer)],
  }));
  fs.writeFileSync(file, body);
  return body;
}

/**
 * One call of the framed request `frame` to `address`: throws unless it is answered with
 * grpc-status 0. h2load counts HTTP statuses, and a gRPC error is an HTTP 200: a target answers
 * the body once this way before h2load is pointed at it.
 */
export async function checkCall(address: string, frame: Buffer): Promise<void> {
  const conn = new H2UnaryConnection(address);
  try {
    await conn.call(MODEL_INFER_PATH, frame);
  } finally {
    conn.close();
  }
}

/** Runs h2load with `concurrency` streams over `connections` connections on `address` for `seconds`. */
export function runH2load(bin: string, bodyFile: string, address: string, concurrency: number, connections: number, seconds: number, serverPids: number[]): Promise<H2loadResult> {
  const c = Math.min(concurrency, connections);
  const args = ['-D', String(seconds), '-c', String(c), '-m', String(Math.ceil(concurrency / c)), '-d', bodyFile,
    '-H', 'content-type: application/grpc', '-H', 'te: trailers', `http://${address}${MODEL_INFER_PATH}`];
  const cpuBefore = totalCpuMs(serverPids);
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => {
      const cpu = totalCpuMs(serverPids) - cpuBefore;
      const rate = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out);
      const reqs = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(out);
      const mean = /time for request:\s+\S+\s+\S+\s+(\S+)/.exec(out);
      if (code !== 0 || !rate || !reqs || !mean) return reject(new Error(`h2load failed (${code}): ${out.slice(-500)}`));
      const meanText = mean[1]!;
      const meanMs = meanText.endsWith('us') ? Number.parseFloat(meanText) / 1000 : meanText.endsWith('ms') ? Number.parseFloat(meanText) : Number.parseFloat(meanText) * 1000;
      const succeeded = Number(reqs[1]);
      resolve({ perSecond: Number(rate[1]), meanMs, succeeded, failed: Number(reqs[2]), cpuUsPerCall: (cpu * 1000) / Math.max(1, succeeded) });
    });
  });
}
