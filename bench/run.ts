// `npm run bench` (node dist/bench/run.js [suite...] [--quick] [--router-cpu-prof DIR]): runs the
// suites (default: pod, router, router-secure, rest, latency, placement and density) on 127.0.0.1, prints each table and writes it to
// bench/results/<suite>.md. Every measured point is a warm-up and then a fixed window.
import { ROOT } from '../cli/local-mesh/service-process';
import { grpcFrame } from './h2-unary';
import { LoadGenerator } from './load';
import { machineLine, writeResult } from './markdown';
import { batchOneRequests, MODEL_INFER_PATH } from './mnist-requests';
import { podSuite } from './pod-suite';
import { podTuningSuite } from './pod-tuning-suite';
import { procAvailable } from './proc-cpu';
import { routerSecureSuite } from './router-secure-suite';
import { routerSuite } from './router-suite';
import { restSuite } from './rest-suite';
import { latencySuite } from './latency-suite';
import { placementSuite } from './placement-suite';
import { densitySuite } from './density-suite';
import type { SuiteOptions } from './suite-options';

/** The suites, by name; `pod-tuning` runs only when asked for. */
const SUITES = ['pod', 'router', 'router-secure', 'rest', 'latency', 'placement', 'density', 'pod-tuning'] as const;
type SuiteName = (typeof SUITES)[number];
const DEFAULT_SUITES: SuiteName[] = ['pod', 'router', 'router-secure', 'rest', 'latency', 'placement', 'density'];

interface Args {
  suites: SuiteName[];
  quick: boolean;
  routerCpuProfDir?: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { suites: [], quick: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') args.quick = true;
    else if (a === '--router-cpu-prof') args.routerCpuProfDir = argv[++i];
    else if ((SUITES as readonly string[]).includes(a)) args.suites.push(a as SuiteName);
    else throw new Error(`unknown argument '${a}'; usage: run.js [${SUITES.join('|')}]... [--quick] [--router-cpu-prof DIR]`);
  }
  if (args.suites.length === 0) args.suites = DEFAULT_SUITES;
  return args;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (!procAvailable()) throw new Error('the benchmarks read CPU times from /proc: run them on Linux');
  const progress = (line: string) => process.stderr.write(`bench: ${line}\n`);
  progress('encoding held-out MNIST digits');
  const { digits, encoded } = batchOneRequests(200);
  const load = await LoadGenerator.start(MODEL_INFER_PATH, encoded.map(grpcFrame));
  const opts: SuiteOptions = {
    root: ROOT,
    warmupMs: args.quick ? 500 : 1_000,
    durationMs: args.quick ? 1_500 : 2_500,
    rounds: args.quick ? 1 : 3,
    primeMs: args.quick ? 1_000 : 3_000,
    concurrencies: [1, 16, 64],
    maxConnections: 4,
    digits,
    load,
    progress,
  };
  const header = `Measured on ${machineLine()}.`;
  try {
    for (const suite of args.suites) {
      const started = Date.now();
      const body = suite === 'pod' ? await podSuite(opts)
        : suite === 'router' ? await routerSuite(opts, { routerProfileDir: args.routerCpuProfDir })
        : suite === 'router-secure' ? await routerSecureSuite(opts)
        : suite === 'rest' ? await restSuite(opts)
        : suite === 'latency' ? await latencySuite(opts)
        : suite === 'placement' ? await placementSuite(opts)
        : suite === 'density' ? await densitySuite(opts)
        : await podTuningSuite(opts);
      const markdown = `${body}\n\n${header} Suite time ${((Date.now() - started) / 1000).toFixed(0)} s.\n`;
      const file = writeResult(ROOT, suite, markdown);
      process.stdout.write(`\n${markdown}\n`);
      progress(`wrote ${file}`);
    }
  } finally {
    load.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
