// Suite `rest` (issue 17): MNIST batch-1 inference through the same router and pod over gRPC, over
// HTTP/REST with Triton's binary tensor data, and over HTTP/REST with the JSON tensor form, the
// three taking turns in each round.
import { startBenchMesh } from './bench-mesh';
import type { LoadResult, LoadSpec } from './load';
import { num, ratio, table } from './markdown';
import { MODEL } from './mnist-requests';
import { combineRounds, type PointSummary } from './rounds';
import { loadSpec, prime, type SuiteOptions } from './suite-options';

const GRPC = 'gRPC (router :8001)';
const BINARY = 'REST, binary tensor data (router :8000)';
const JSON_FORM = 'REST, JSON tensors (router :8000)';
/** Issue 17's target: REST with binary data at least this share of gRPC's requests per second at concurrency 16. */
const TARGET = 0.7;

interface RestPoint {
  label: string;
  concurrency: number;
  summary: PointSummary;
}

/** The REST bodies of the suite's digits: binary (JSON header, raw FP32 after it) and JSON. */
function restBodies(opts: SuiteOptions): { binary: NonNullable<LoadSpec['rest']>; json: NonNullable<LoadSpec['rest']> } {
  const path = `/v2/models/${MODEL}/infer`;
  const binary: NonNullable<LoadSpec['rest']> = { path, bodies: [], headers: [] };
  const json: NonNullable<LoadSpec['rest']> = { path, bodies: [], headers: [{ 'content-type': 'application/json' }] };
  for (const d of opts.digits) {
    const raw = Buffer.from(d.pixels.buffer, d.pixels.byteOffset, d.pixels.byteLength);
    const header = Buffer.from(JSON.stringify({
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, d.pixels.length], parameters: { binary_data_size: raw.length } }],
      outputs: [{ name: 'probabilities', parameters: { binary_data: true } }],
    }));
    binary.bodies.push(Buffer.concat([header, raw]));
    binary.headers.push({ 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) });
    json.bodies.push(Buffer.from(JSON.stringify({
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, d.pixels.length], data: Array.from(d.pixels) }],
      outputs: [{ name: 'probabilities' }],
    })));
  }
  return { binary, json };
}

function verdict(points: RestPoint[]): string {
  const rps = (label: string) => points.find((p) => p.label === label && p.concurrency === 16)?.summary.perSecond ?? Number.NaN;
  const r = rps(BINARY) / rps(GRPC);
  if (Number.isNaN(r)) return 'Target (REST with binary data ≥ 70% of gRPC\'s requests/s at concurrency 16): not measured (no concurrency 16 in this run).';
  return `Target (REST with binary data ≥ ${TARGET * 100}% of gRPC's requests/s at concurrency 16): ${ratio(r)} (**${r >= TARGET ? 'met' : 'missed'}**).`;
}

/** Runs the REST suite and returns its Markdown. */
export async function restSuite(opts: SuiteOptions): Promise<string> {
  const mesh = await startBenchMesh();
  const points: RestPoint[] = [];
  try {
    opts.progress('rest: starting one pod and the router');
    const pod = await mesh.addPod('pod-1');
    const router = await mesh.startRouter();
    if (router.httpPort === undefined) throw new Error('the router serves no HTTP/REST port');
    const grpcAddress = `127.0.0.1:${router.port}`;
    const httpAddress = `127.0.0.1:${router.httpPort}`;
    const { binary, json } = restBodies(opts);
    const paths: { label: string; spec: (c: number) => LoadSpec }[] = [
      { label: GRPC, spec: (c) => loadSpec(opts, grpcAddress, c, { pod: [pod.pid], proxy: [router.pid] }) },
      { label: BINARY, spec: (c) => ({ ...loadSpec(opts, httpAddress, c, { pod: [pod.pid], proxy: [router.pid] }), rest: binary }) },
      { label: JSON_FORM, spec: (c) => ({ ...loadSpec(opts, httpAddress, c, { pod: [pod.pid], proxy: [router.pid] }), rest: json }) },
    ];
    opts.progress('rest: priming');
    await prime(opts, grpcAddress);
    for (const p of paths) await opts.load.run({ ...p.spec(16), warmupMs: 0, durationMs: opts.primeMs });
    for (const c of opts.concurrencies) {
      const results: LoadResult[][] = paths.map(() => []);
      for (let round = 1; round <= opts.rounds; round++) {
        for (const [i, p] of paths.entries()) {
          opts.progress(`rest: ${p.label}, concurrency ${c}, round ${round}/${opts.rounds}`);
          results[i]!.push(await opts.load.run(p.spec(c)));
        }
      }
      paths.forEach((p, i) => points.push({ label: p.label, concurrency: c, summary: combineRounds(results[i]!) }));
    }
  } finally {
    await mesh.stop();
  }
  const grpcAt = (c: number) => points.find((p) => p.label === GRPC && p.concurrency === c)?.summary.perSecond ?? Number.NaN;
  return [
    '## Suite `rest`: inference over gRPC and over HTTP/REST through the same router (issue 17)',
    '',
    table(
      ['path', 'concurrency', 'requests/s', 'of gRPC', 'rounds min–max', 'p50 ms', 'p99 ms', 'errors', 'router CPU µs/req', 'pod CPU µs/req', 'client CPU µs/req'],
      points.map(({ label, concurrency, summary: s }) => [
        label,
        String(concurrency),
        num(s.perSecond),
        label === GRPC ? '–' : ratio(s.perSecond / grpcAt(concurrency)),
        `${num(s.perSecondMin)}–${num(s.perSecondMax)}`,
        num(s.p50Ms, 3),
        num(s.p99Ms, 3),
        s.errors ? `${s.errors} (${s.firstError ?? ''})` : '0',
        num(s.cpuUsPerCall.proxy ?? Number.NaN),
        num(s.cpuUsPerCall.pod ?? Number.NaN),
        num(s.clientCpuUsPerCall),
      ]),
    ),
    '',
    verdict(points),
    '',
    'One pod with default settings (batching on) and the router with its defaults; the same held-out digits on every path,',
    'batch 1, `probabilities` asked for. gRPC: the load client\'s HTTP/2 connections to the router\'s gRPC port. REST: HTTP/1.1',
    'keep-alive, one connection per caller (HTTP/1.1 carries one request at a time); binary: a JSON header and the 784 raw FP32',
    'pixels, the answer\'s probabilities as binary data too; JSON: the pixels and the answer as JSON numbers.',
    `${opts.rounds} rounds of ${opts.durationMs / 1000} s per row, the paths taking turns; CPU columns are the median round's process CPU per request.`,
  ].join('\n');
}
