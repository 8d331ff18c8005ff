// `npm run fuzz [-- target... --seconds N --seed S --hang-ms N --heap-mb N]`: runs each fuzz target
// (fuzz/targets.ts) for N seconds (default 600) in a worker thread, with fast-check generating
// random and mutated inputs. The main thread watches the worker: an input that runs past --hang-ms
// (a hang), pushes the worker's heap past --heap-mb (no memory bound), or throws what the parser
// must not (a crash) is written to test/fixtures/fuzz/<target>/, where npm test replays it for ever.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import fc from 'fast-check';
import { ROOT } from '../cli/local-mesh/service-process';
import { fuzzInput } from './inputs';
import { TARGETS, regressionDir } from './targets';

/** Bytes of the shared buffer that holds the input being run, so a hung one can be saved. */
const MAX_SAVED_INPUT = 1 << 20;

interface Job { target: string; seconds: number; seed: number; shared: SharedArrayBuffer }
interface Outcome { runs: number; finding?: { kind: 'crash' | 'hang' | 'memory'; message: string; input: Buffer } ; peakHeapMb: number }

function parseArgs(argv: string[]) {
  const args = { targets: [] as string[], seconds: 600, seed: Date.now() % 2 ** 31, hangMs: 10_000, heapMb: 512 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const num = () => {
      const n = Number(argv[++i]);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${a} takes a positive number`);
      return n;
    };
    if (a === '--seconds') args.seconds = num();
    else if (a === '--seed') args.seed = num();
    else if (a === '--hang-ms') args.hangMs = num();
    else if (a === '--heap-mb') args.heapMb = num();
    else if (TARGETS.some((t) => t.name === a)) args.targets.push(a);
    else throw new Error(`unknown argument '${a}'; targets: ${TARGETS.map((t) => t.name).join(', ')}`);
  }
  if (args.targets.length === 0) args.targets = TARGETS.map((t) => t.name);
  return args;
}

/** Worker side: run the property until the time is up or a finding; report back. */
async function fuzzInWorker(job: Job): Promise<void> {
  const target = TARGETS.find((t) => t.name === job.target)!;
  const header = new Int32Array(job.shared, 0, 2);
  const input = new Uint8Array(job.shared, 8);
  let peak = 0;
  const result = await fc.check(fc.asyncProperty(fuzzInput(target.seeds()), async (data) => {
    const n = Math.min(data.length, MAX_SAVED_INPUT);
    input.set(data.subarray(0, n));
    Atomics.store(header, 1, n);
    Atomics.add(header, 0, 1);
    await target.run(data);
    if ((Atomics.load(header, 0) & 1023) === 0) peak = Math.max(peak, process.memoryUsage().heapUsed);
  }), { seed: job.seed, numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: job.seconds * 1000, markInterruptAsFailure: false, endOnFailure: false });
  const outcome: Outcome = { runs: Atomics.load(header, 0), peakHeapMb: peak / 2 ** 20 };
  if (result.failed && result.counterexample) {
    const err = result.errorInstance;
    outcome.finding = { kind: 'crash', message: err instanceof Error ? `${err.name}: ${err.message}` : String(err), input: Buffer.from(result.counterexample[0] as Buffer) };
  }
  parentPort!.postMessage(outcome);
}

/** Main side: one worker per target, watched for hangs and memory. */
function fuzzTarget(target: string, seconds: number, seed: number, hangMs: number, heapMb: number): Promise<Outcome> {
  const shared = new SharedArrayBuffer(8 + MAX_SAVED_INPUT);
  const header = new Int32Array(shared, 0, 2);
  const current = () => Buffer.from(new Uint8Array(shared, 8, Atomics.load(header, 1)));
  const worker = new Worker(__filename, { workerData: { target, seconds, seed, shared } satisfies Job, resourceLimits: { maxOldGenerationSizeMb: heapMb } });
  return new Promise((resolve) => {
    let lastRuns = -1;
    let lastChange = Date.now();
    let done = false;
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      clearInterval(watch);
      void worker.terminate();
      resolve(o);
    };
    const watch = setInterval(() => {
      const runs = Atomics.load(header, 0);
      if (runs !== lastRuns) {
        lastRuns = runs;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > hangMs) {
        finish({ runs, peakHeapMb: NaN, finding: { kind: 'hang', message: `one input ran longer than ${hangMs} ms`, input: current() } });
      }
    }, 250);
    worker.on('message', (o: Outcome) => finish({ ...o, finding: o.finding && { ...o.finding, input: Buffer.from(o.finding.input) } }));
    worker.on('error', (err: Error & { code?: string }) => finish({
      runs: Atomics.load(header, 0), peakHeapMb: NaN,
      finding: { kind: err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'memory' : 'crash', message: err.message, input: current() },
    }));
    worker.on('exit', (code) => finish({ runs: Atomics.load(header, 0), peakHeapMb: NaN, finding: { kind: 'crash', message: `worker exited (${code})`, input: current() } }));
  });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const rows: string[] = [];
  let findings = 0;
  for (const name of args.targets) {
    process.stderr.write(`fuzz: ${name} for ${args.seconds} s (seed ${args.seed})\n`);
    const started = Date.now();
    const o = await fuzzTarget(name, args.seconds, args.seed, args.hangMs, args.heapMb);
    const took = ((Date.now() - started) / 1000).toFixed(0);
    let result = 'no finding';
    if (o.finding) {
      findings++;
      const dir = regressionDir(ROOT, name);
      fs.mkdirSync(dir, { recursive: true });
      const file = path.join(dir, `${o.finding.kind}-${crypto.createHash('sha256').update(o.finding.input).digest('hex').slice(0, 16)}.bin`);
      fs.writeFileSync(file, o.finding.input);
      result = `**${o.finding.kind}**: ${o.finding.message} (kept as ${path.relative(ROOT, file)})`;
    }
    const heap = Number.isNaN(o.peakHeapMb) ? '—' : o.peakHeapMb.toFixed(0);
    rows.push(`| ${name} | ${took} | ${o.runs.toLocaleString('en-US')} | ${heap} | ${result} |`);
  }
  process.stdout.write([
    `Fuzz run of ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, seed ${args.seed}, ${args.seconds} s a target, hang at ${args.hangMs} ms, heap limit ${args.heapMb} MB:`,
    '',
    '| target | seconds | inputs | peak heap MB | result |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n'));
  process.exitCode = findings ? 1 : 0;
}

if (isMainThread) {
  main().catch((err: unknown) => {
    process.stderr.write(`fuzz: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(2);
  });
} else {
  void fuzzInWorker(workerData as Job);
}
