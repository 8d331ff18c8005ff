// Suite `latency` (issue 19): one pod at its defaults against the peer a team would write by hand
// (bench/peer-server.ts: grpc-js + onnxruntime-node in one process, onnxruntime's defaults), and
// against the same peer given the intra-op threads the pod chose for the model, with
// the same batch-1 MNIST requests, from the project's load client and from h2load (nghttp2's, when
// installed) so the table does not rest on one client; then the compute-bound `heavy` model at
// concurrency 1, through the pod against onnxruntime in this process with the same threads, and
// in-process again with a round trip to another process after each run (bench/echo-peer.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RegistryApi, InferenceApi } from '../client';
import { inferenceClient, unary } from '../lib/grpc/client';
import type { ModelConfigResponse__Output } from '../lib/grpc/generated/inference/ModelConfigResponse';
import { cpuBudget, intraOpThreads } from '../services/inference/cgroup-limits';
import { startBenchMesh, waitFor } from './bench-mesh';
import { grpcFrame } from './h2-unary';
import { checkCall, findH2load, h2loadSeconds, runH2load, writeDigitBody, type H2loadResult } from './h2load';
import { EchoPeer } from './echo-peer';
import { measureSession } from './in-process';
import { LoadGenerator, type LoadResult } from './load';
import { num, ratio, table } from './markdown';
import { encodeInferRequest, MODEL_INFER_PATH } from './mnist-requests';
import { combineRounds, type PointSummary } from './rounds';
import { median } from './stats';
import { loadSpec, prime, type SuiteOptions } from './suite-options';

const POD = 'infermesh pod (defaults)';
const PEER = 'hand-written grpc-js + onnxruntime-node (peer, onnxruntime\'s defaults)';
const PEER_TUNED = 'the same peer on the pod\'s threads for MNIST';
const HEAVY = 'heavy';
const HEAVY_WIDTH = 1024;

/** A started peer server. */
interface Peer {
  address: string;
  pid: number;
  stop(): Promise<void>;
}

/** Starts bench/peer-server.js on `model` with `threads` intra-op threads; resolves with its port. */
function startPeer(root: string, model: string, threads: number): Promise<Peer> {
  const child: ChildProcess = spawn(process.execPath, [path.join(root, 'dist/bench/peer-server.js'), model, String(threads)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const port = /^(\d+)\n/.exec(out)?.[1];
      if (port) resolve({
        address: `127.0.0.1:${port}`,
        pid: child.pid!,
        stop: () => new Promise((r) => {
          if (child.exitCode !== null) return r();
          child.once('exit', () => r());
          child.kill('SIGTERM');
        }),
      });
    });
    child.once('exit', (code) => reject(new Error(`peer server exited (${code}) before serving`)));
  });
}

/** Resolves once the server at `address` says `model` is ready (at most a minute). */
async function waitReady(address: string, model: string): Promise<void> {
  const api = new InferenceApi(address);
  try {
    await waitFor(`${model} at ${address}`, () => api.modelReady(model));
  } finally {
    api.close();
  }
}

/** The intra-op threads the pod at `address` runs `model` with (ModelConfig's intra_op_thread_count). */
async function threadsOf(address: string, model: string): Promise<number> {
  const client = inferenceClient(address);
  try {
    const res = await unary<ModelConfigResponse__Output>((cb) => client.ModelConfig({ name: model, version: '' }, cb));
    const threads = Number(res.config?.parameters?.intra_op_thread_count?.string_value);
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`the pod does not say how many threads it runs ${model} with`);
    return threads;
  } finally {
    client.close();
  }
}

/** Batch-1 requests for heavy.onnx: a few rows of seeded pseudo-random values in [-1, 1). */
function heavyInputs(count: number): Float32Array[] {
  let seed = 19;
  const next = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  return Array.from({ length: count }, () => Float32Array.from({ length: HEAVY_WIDTH }, next));
}

/** Runs the suite and returns its Markdown. */
export async function latencySuite(opts: SuiteOptions): Promise<string> {
  const threads = intraOpThreads(0, 1, cpuBudget());
  const mnistPath = path.join(opts.root, 'models', 'mnist.onnx');
  const heavyPath = path.join(opts.root, 'models', 'fixtures', 'heavy.onnx');
  const mesh = await startBenchMesh();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-latency-'));
  const peers: Peer[] = [];
  let heavyLoad: LoadGenerator | undefined;
  let echo: EchoPeer | undefined;
  try {
    const registry = new RegistryApi(mesh.registryAddress);
    await registry.push(HEAVY, heavyPath).finally(() => registry.close());
    opts.progress('latency: starting the pod and the peer');
    const pod = await mesh.addPod('pod-1');
    const podAddress = `127.0.0.1:${pod.port}`;
    await waitReady(podAddress, HEAVY);
    // The peer as a team would write it (onnxruntime's own threads and spinning), and the same peer
    // on the threads the pod runs MNIST with (its ModelConfig says): the two differ from the pod only
    // in what surrounds onnxruntime.
    const mnistThreads = await threadsOf(podAddress, 'mnist');
    peers.push(await startPeer(opts.root, mnistPath, 0), await startPeer(opts.root, mnistPath, mnistThreads));
    const targets = [
      { label: POD, address: podAddress, pids: [pod.pid] },
      { label: PEER, address: peers[0]!.address, pids: [peers[0]!.pid] },
      { label: PEER_TUNED, address: peers[1]!.address, pids: [peers[1]!.pid] },
    ];
    for (const t of targets) {
      opts.progress(`latency: priming ${t.label}`);
      await prime(opts, t.address);
    }

    // The project's load client, the targets taking turns in every round.
    const points: { label: string; concurrency: number; summary: PointSummary }[] = [];
    for (const c of opts.concurrencies) {
      const results: LoadResult[][] = targets.map(() => []);
      for (let round = 1; round <= opts.rounds; round++) {
        for (const [i, t] of targets.entries()) {
          opts.progress(`latency: ${t.label}, concurrency ${c}, round ${round}/${opts.rounds}`);
          results[i]!.push(await opts.load.run(loadSpec(opts, t.address, c, { server: t.pids })));
        }
      }
      targets.forEach((t, i) => points.push({ label: t.label, concurrency: c, summary: combineRounds(results[i]!) }));
    }

    // h2load, when installed: the same request (one digit) from a client of another codebase.
    const h2load = findH2load();
    const h2Rows: { label: string; concurrency: number; r: H2loadResult }[] = [];
    if (h2load) {
      const body = path.join(tmp, 'digit.bin');
      const frame = writeDigitBody(body, opts.digits[0]!);
      for (const t of targets) await checkCall(t.address, frame);
      const seconds = h2loadSeconds(opts.durationMs);
      for (const c of opts.concurrencies) {
        for (const t of targets) {
          opts.progress(`latency: h2load on ${t.label}, concurrency ${c}`);
          h2Rows.push({ label: t.label, concurrency: c, r: await runH2load(h2load, body, t.address, c, opts.maxConnections, seconds, t.pids) });
        }
      }
    }
    for (const p of peers.splice(0)) await p.stop();

    // The compute-bound model at concurrency 1: onnxruntime here, then the pod, in turns.
    const inputs = heavyInputs(8);
    heavyLoad = await LoadGenerator.start(MODEL_INFER_PATH, inputs.map((x) => grpcFrame(encodeInferRequest({
      model_name: HEAVY,
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, HEAVY_WIDTH] }],
      raw_input_contents: [Buffer.from(x.buffer)],
    }))));
    const feeds = inputs.map((x) => ({ INPUT0: { data: x, dims: [1, HEAVY_WIDTH] } }));
    // At the pod's threads, and at one thread (where the pod's main thread has a core of its own).
    // And in-process with a round trip to another process after each run: what a client of another
    // process costs on this machine whatever the server, so the pod's own share can be read apart.
    echo = await EchoPeer.start();
    const heavyRows: { threads: number; inProcessRate: number; inProcessP50: number; echoRate: number; echoP50: number; pod: PointSummary }[] = [];
    for (const t of [...new Set([threads, 1])]) {
      const target = t === threads ? pod : await mesh.addPod(`pod-${t}-thread`, { INFERMESH_INTRA_OP_THREADS: String(t) });
      const address = `127.0.0.1:${target.port}`;
      await waitReady(address, HEAVY);
      const rates: number[] = [];
      const p50s: number[] = [];
      const echoRates: number[] = [];
      const echoP50s: number[] = [];
      const viaPod: LoadResult[] = [];
      for (let round = 1; round <= opts.rounds; round++) {
        opts.progress(`latency: heavy in-process, ${t} thread(s), round ${round}/${opts.rounds}`);
        const r = await measureSession(heavyPath, feeds, ['OUTPUT0'], t, opts.warmupMs, opts.durationMs);
        rates.push(r.runsPerSecond);
        p50s.push(r.p50Ms);
        opts.progress(`latency: heavy in-process with a round trip to another process per run, ${t} thread(s), round ${round}/${opts.rounds}`);
        const e = echo;
        const withTrips = await measureSession(heavyPath, feeds, ['OUTPUT0'], t, opts.warmupMs, opts.durationMs, () => e.roundTrip());
        echoRates.push(withTrips.runsPerSecond);
        echoP50s.push(withTrips.p50Ms);
        opts.progress(`latency: heavy through the pod, ${t} thread(s), round ${round}/${opts.rounds}`);
        viaPod.push(await heavyLoad.run(loadSpec(opts, address, 1, { server: [target.pid] })));
      }
      heavyRows.push({ threads: t, inProcessRate: median(rates), inProcessP50: median(p50s), echoRate: median(echoRates), echoP50: median(echoP50s), pod: combineRounds(viaPod) });
    }

    const at = (label: string, c: number) => points.find((p) => p.label === label && p.concurrency === c)!.summary;
    const lines: string[] = [
      `## Suite \`latency\`: one pod against a hand-written server, and against onnxruntime in-process (issue 19)`,
      '',
      `MNIST, batch-1 requests of real held-out digits, the project's load client (${opts.rounds} rounds of ${opts.durationMs / 1000} s per row, the servers taking turns). The pod runs MNIST on ${mnistThreads} intra-op thread(s) (its threads for a compute-bound model: ${threads}); the peer on onnxruntime's defaults (threads: the machine's cores, spinning), and again on ${mnistThreads}:`,
      '',
      table(
        ['server', 'concurrency', 'requests/s', 'rounds min–max', 'p50 ms', 'p99 ms', 'errors', 'server CPU µs/req', 'pod / this, requests/s', 'pod / this, CPU/req'],
        points.map(({ label, concurrency, summary: s }) => [
          label,
          String(concurrency),
          num(s.perSecond),
          `${num(s.perSecondMin)}–${num(s.perSecondMax)}`,
          num(s.p50Ms, 3),
          num(s.p99Ms, 3),
          s.errors ? `${s.errors} (${s.firstError ?? ''})` : '0',
          num(s.cpuUsPerCall.server ?? Number.NaN),
          label === POD ? '' : ratio(at(POD, concurrency).perSecond / s.perSecond),
          label === POD ? '' : ratio((at(POD, concurrency).cpuUsPerCall.server ?? Number.NaN) / (s.cpuUsPerCall.server ?? Number.NaN)),
        ]),
      ),
      '',
    ];
    if (h2Rows.length) {
      lines.push(`The same, one round each from h2load (nghttp2; one digit repeated, ${opts.maxConnections} connections at most):`, '');
      lines.push(table(
        ['server', 'concurrency', 'requests/s', 'mean ms', 'failed', 'server CPU µs/req', 'pod / this, requests/s'],
        h2Rows.map(({ label, concurrency, r }) => [
          label, String(concurrency), num(r.perSecond), num(r.meanMs, 3), String(r.failed), num(r.cpuUsPerCall),
          label === POD ? '' : ratio(h2Rows.find((x) => x.label === POD && x.concurrency === concurrency)!.r.perSecond / r.perSecond),
        ]),
      ), '');
    } else lines.push('h2load is not installed (Debian: nghttp2-client): its table is left out.', '');
    lines.push(
      `The compute-bound \`heavy\` model (${HEAVY_WIDTH}-wide, 128 MatMul+Tanh layers), batch 1, concurrency 1, at the pod's ${threads} intra-op thread(s) and at 1, onnxruntime's other settings at their defaults in-process:`,
      '',
      table(
        ['path', 'intra-op threads', 'runs/s', 'p50 ms', 'of in-process'],
        heavyRows.flatMap((h) => [
          ['onnxruntime in this process, session.run back to back', String(h.threads), num(h.inProcessRate, 1), num(h.inProcessP50, 2), '1.00×'],
          ['the same, a 1-byte TCP round trip to another process after each run (about the least a client over TCP adds; p50 of the runs alone)', String(h.threads), num(h.echoRate, 1), num(h.echoP50, 2), ratio(h.echoRate / h.inProcessRate)],
          ['one pod over gRPC, closed loop', String(h.threads), num(h.pod.perSecond, 1), num(h.pod.p50Ms, 2), ratio(h.pod.perSecond / h.inProcessRate)],
        ]),
      ),
      '',
    );
    const verdict = (ok: boolean) => `**${ok ? 'met' : 'missed'}**`;
    const top = opts.concurrencies.filter((c) => c > 1);
    const c1 = at(POD, 1);
    const p1 = at(PEER, 1);
    const c1Rate = c1.perSecond / p1.perSecond;
    const c1Cpu = (c1.cpuUsPerCall.server ?? Number.NaN) / (p1.cpuUsPerCall.server ?? Number.NaN);
    const heavyRatios = heavyRows.map((h) => `${ratio(h.pod.perSecond / h.inProcessRate)} at ${h.threads} thread(s) (≥ 0.9×: ${verdict(h.pod.perSecond / h.inProcessRate >= 0.9)})`).join(', ');
    lines.push(
      `Targets, against the peer on onnxruntime's defaults: at concurrency 1 the pod serves ${ratio(c1Rate)} its requests per second (≥ 1.0×: ${verdict(c1Rate >= 1)}) at ${ratio(c1Cpu)} its CPU per request (≤ 1.0×: ${verdict(c1Cpu <= 1)});`
      + ` ${top.map((c) => { const r = at(POD, c).perSecond / at(PEER, c).perSecond; return `${ratio(r)} at concurrency ${c} (≥ 2×: ${verdict(r >= 2)})`; }).join(', ')};`
      + ` heavy through the pod ${heavyRatios} of in-process`
      + ` (in-process with a round trip to another process after each run: ${heavyRows.map((h) => `${ratio(h.echoRate / h.inProcessRate)} at ${h.threads} thread(s)`).join(', ')}).`,
    );
    return lines.join('\n');
  } finally {
    heavyLoad?.close();
    await echo?.close();
    for (const p of peers) await p.stop();
    await mesh.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
