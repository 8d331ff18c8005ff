// Suite `router` (issue 5): the same pod and the same client load, called directly, through the
// infermesh router, through nginx (grpc_pass, one worker process) when nginx is installed, and
// through a bare node:http2 pass-through (bench/h2-reference-proxy.ts) as the floor of a router built on node:http2.
import { freePort } from '../cli/local-mesh/free-port';
import { startBenchMesh, waitServing } from './bench-mesh';
import { profileEnv, toggleProfile } from './cpu-profile';
import { startReferenceProxy, type ReferenceProxy } from './h2-reference-proxy';
import type { CallerCredentials } from './h2-unary';
import type { LoadResult } from './load';
import { num, ratio, table } from './markdown';
import { findNginx, startNginx, type NginxProcess } from './nginx';
import { combineRounds, type PointSummary } from './rounds';
import { loadSpec, prime, type SuiteOptions } from './suite-options';

/** One way to reach the pod. */
export interface Path {
  label: string;
  address: string;
  /** The proxy's processes (none for the direct path). */
  proxyPids: number[];
  /** TLS and token of a secured path. */
  credentials?: CallerCredentials;
}

/** One row. */
export interface RouterPoint {
  path: Path;
  concurrency: number;
  summary: PointSummary;
}

/** Options of the router suite beyond the shared ones. */
export interface RouterSuiteOptions {
  /** Write a CPU profile of the router's main thread over the measured points into this folder. */
  routerProfileDir?: string;
}

const DIRECT = 'direct';
const ROUTER = 'infermesh router';
const NGINX = 'nginx';
const REFERENCE = 'node:http2 pass-through (reference)';

/** The router table. */
export function routerTable(points: RouterPoint[]): string {
  const direct = (c: number) => points.find((p) => p.path.label === DIRECT && p.concurrency === c)?.summary;
  return table(
    ['path', 'concurrency', 'requests/s', 'rounds min–max', 'p50 ms', 'p99 ms', 'added p50 ms', 'errors', 'proxy CPU µs/req', 'pod CPU µs/req', 'client CPU µs/req'],
    points.map(({ path, concurrency, summary: s }) => {
      const d = direct(concurrency);
      const proxied = path.label !== DIRECT;
      return [
        path.label,
        String(concurrency),
        num(s.perSecond),
        `${num(s.perSecondMin)}–${num(s.perSecondMax)}`,
        num(s.p50Ms, 3),
        num(s.p99Ms, 3),
        proxied && d ? num(s.p50Ms - d.p50Ms, 3) : '–',
        s.errors ? `${s.errors} (${s.firstError ?? ''})` : '0',
        proxied ? num(s.cpuUsPerCall.proxy ?? Number.NaN) : '–',
        num(s.cpuUsPerCall.pod ?? Number.NaN),
        num(s.clientCpuUsPerCall),
      ];
    }),
  );
}

/** The verdicts on issue 5's two targets. */
function targets(points: RouterPoint[], nginxNote: string | undefined): string[] {
  const find = (label: string, c: number) => points.find((p) => p.path.label === label && p.concurrency === c)?.summary;
  const concurrencies = [...new Set(points.map((p) => p.concurrency))];
  const lines: string[] = [];
  if (nginxNote) lines.push(`CPU target (router ≤ 1.5× nginx per request): not measured — ${nginxNote}.`);
  else {
    const parts = concurrencies.map((c) => {
      const r = (find(ROUTER, c)?.cpuUsPerCall.proxy ?? Number.NaN) / (find(NGINX, c)?.cpuUsPerCall.proxy ?? Number.NaN);
      return `${ratio(r)} at concurrency ${c} (**${r <= 1.5 ? 'met' : 'missed'}**)`;
    });
    lines.push(`CPU target (router ≤ 1.5× nginx per request): ${parts.join(', ')}.`);
  }
  const lowest = Math.min(...concurrencies);
  const routed = find(ROUTER, lowest);
  const direct = find(DIRECT, lowest);
  if (routed && direct) {
    const added = routed.p50Ms - direct.p50Ms;
    lines.push(`Latency target (router adds < 0.5 ms to p50 at concurrency ${lowest}): +${num(added, 3)} ms (**${added < 0.5 ? 'met' : 'missed'}**).`);
  }
  return lines;
}

/** A row for a path that could not run. */
function skippedRow(label: string, concurrency: number): RouterPoint {
  const nan = Number.NaN;
  return {
    path: { label, address: '', proxyPids: [] },
    concurrency,
    summary: { rounds: 0, perSecond: nan, perSecondMin: nan, perSecondMax: nan, p50Ms: nan, p99Ms: nan, errors: 0, cpuUsPerCall: {}, clientCpuUsPerCall: nan },
  };
}

/** Measures every path at every concurrency, the paths taking turns in each round. */
export async function measurePaths(opts: SuiteOptions, paths: Path[], podPid: number, toggleProfiler?: () => void): Promise<RouterPoint[]> {
  for (const p of paths) {
    opts.progress(`router: priming ${p.label}`);
    await prime(opts, p.address, p.credentials);
  }
  // The profile covers the measured points only (the router writes it when profiling stops).
  toggleProfiler?.();
  const points: RouterPoint[] = [];
  for (const c of opts.concurrencies) {
    const results: LoadResult[][] = paths.map(() => []);
    for (let round = 1; round <= opts.rounds; round++) {
      for (const [i, p] of paths.entries()) {
        opts.progress(`router: ${p.label}, concurrency ${c}, round ${round}/${opts.rounds}`);
        results[i]!.push(await opts.load.run(loadSpec(opts, p.address, c, { pod: [podPid], proxy: p.proxyPids }, p.credentials)));
      }
    }
    paths.forEach((path, i) => points.push({ path, concurrency: c, summary: combineRounds(results[i]!) }));
  }
  toggleProfiler?.();
  return points;
}

/** Runs the router suite and returns its Markdown. */
export async function routerSuite(opts: SuiteOptions, extra: RouterSuiteOptions = {}): Promise<string> {
  const mesh = await startBenchMesh();
  let nginx: NginxProcess | undefined;
  let reference: ReferenceProxy | undefined;
  let nginxNote: string | undefined;
  let points: RouterPoint[];
  try {
    opts.progress('router: starting one pod and the router');
    const pod = await mesh.addPod('pod-1');
    const podAddress = `127.0.0.1:${pod.port}`;
    const router = await mesh.startRouter(extra.routerProfileDir ? profileEnv(extra.routerProfileDir) : {});
    const paths: Path[] = [
      { label: DIRECT, address: podAddress, proxyPids: [] },
      { label: ROUTER, address: `127.0.0.1:${router.port}`, proxyPids: [router.pid] },
    ];
    const binary = findNginx();
    if (!binary) nginxNote = 'nginx is not on PATH (Debian: apt-get install nginx-light)';
    else {
      nginx = await startNginx(binary, await freePort(), podAddress);
      await waitServing('nginx', nginx.address);
      paths.push({ label: NGINX, address: nginx.address, proxyPids: nginx.pids });
      opts.progress(`router: ${nginx.version} started (1 worker process)`);
    }
    reference = await startReferenceProxy(await freePort(), podAddress);
    await waitServing('reference proxy', reference.address);
    paths.push({ label: REFERENCE, address: reference.address, proxyPids: [reference.pid] });
    points = await measurePaths(opts, paths, pod.pid, extra.routerProfileDir ? () => toggleProfile(router.pid) : undefined);
    if (nginxNote) for (const c of opts.concurrencies) points.push(skippedRow(`${NGINX} (skipped: ${nginxNote})`, c));
  } finally {
    await reference?.stop();
    await nginx?.stop();
    await mesh.stop();
  }
  return [
    '## Suite `router`: direct, through the infermesh router, and through nginx (issue 5)',
    '',
    routerTable(points),
    '',
    ...targets(points, nginxNote),
    '',
    'One pod with default settings (batching on) behind every path; the router with its defaults',
    `(\`INFERMESH_ROUTER_CONNECTIONS_PER_POD\`=2); ${nginx?.version ?? 'nginx'} with \`grpc_pass\`, **1 worker process** (to compare with`,
    'the single-threaded router) and keep-alive upstream connections; the reference is bench/h2-reference-proxy.ts, a bare',
    'node:http2 pass-through (peeks the model name, 2 upstream connections, no routing, retries or limits).',
    `${opts.rounds} rounds of ${opts.durationMs / 1000} s per row, the paths taking turns: requests/s is the median round, p50/p99 pool every`,
    'round\'s latencies, CPU columns are the median round\'s process CPU time per request (nginx: master + worker);',
    '`added p50` is the path\'s p50 minus the direct p50 at the same concurrency.',
  ].join('\n');
}
