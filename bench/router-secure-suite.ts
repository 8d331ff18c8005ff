// Suite `router-secure`: the router as a secured mesh runs it (TLS to its clients, mutual TLS to
// the pod, a bearer token checked on every call) against nginx doing the same TLS work (`ssl` to
// its clients, `grpcs://` with a client certificate to the same pod); nginx passes the token on
// unchecked. Same pod, same client load, the two paths taking turns.
import { freePort } from '../cli/local-mesh/free-port';
import { startBenchMesh, waitServing } from './bench-mesh';
import { ratio } from './markdown';
import { findNginx, startNginx, type NginxProcess } from './nginx';
import { measurePaths, routerTable, type Path, type RouterPoint } from './router-suite';
import type { SuiteOptions } from './suite-options';

const ROUTER = 'infermesh router (TLS, mTLS to the pod, token checked)';
const NGINX = 'nginx (ssl, grpcs with a client certificate to the pod)';
/** Issue 15's target: the secured router's CPU per request against secured nginx's. */
const TARGET = 1.2;

function verdict(points: RouterPoint[]): string {
  const cpu = (label: string, c: number) => points.find((p) => p.path.label === label && p.concurrency === c)?.summary.cpuUsPerCall.proxy ?? Number.NaN;
  const parts = [...new Set(points.map((p) => p.concurrency))].map((c) => {
    const r = cpu(ROUTER, c) / cpu(NGINX, c);
    const judged = c >= 16 ? ` (**${r <= TARGET ? 'met' : 'missed'}**)` : ' (not a target)';
    return `${ratio(r)} at concurrency ${c}${judged}`;
  });
  return `CPU target (secured router ≤ ${TARGET}× secured nginx per request at concurrency 16 and 64): ${parts.join(', ')}.`;
}

/** Runs the secured router suite and returns its Markdown (or a line saying why it could not run). */
export async function routerSecureSuite(opts: SuiteOptions): Promise<string> {
  const title = '## Suite `router-secure`: the router with TLS and token checks against nginx with TLS';
  const binary = findNginx();
  if (!binary) return `${title}\n\nNot measured: nginx is not on PATH (Debian: apt-get install nginx-light).`;
  const mesh = await startBenchMesh({ secure: true });
  let nginx: NginxProcess | undefined;
  let points: RouterPoint[];
  try {
    const security = mesh.security!;
    const credentials = { caPem: security.caPem, token: security.token };
    opts.progress('router-secure: starting one pod and the router, both on TLS');
    const pod = await mesh.addPod('pod-1');
    const router = await mesh.startRouter();
    // nginx is a client of the pod like the router: a mesh certificate (kind router) proves it.
    const nginxFiles = await security.issue('router', 'nginx');
    nginx = await startNginx(binary, await freePort(), `127.0.0.1:${pod.port}`, nginxFiles);
    await waitServing('nginx', nginx.address, { ca: security.caPem, token: security.token });
    opts.progress(`router-secure: ${nginx.version} started (1 worker process, TLS on both sides)`);
    const paths: Path[] = [
      { label: ROUTER, address: `127.0.0.1:${router.port}`, proxyPids: [router.pid], credentials },
      { label: NGINX, address: nginx.address, proxyPids: nginx.pids, credentials },
    ];
    points = await measurePaths(opts, paths, pod.pid);
  } finally {
    await nginx?.stop();
    await mesh.stop();
  }
  return [
    title,
    '',
    routerTable(points),
    '',
    verdict(points),
    '',
    'One pod with TLS and required client certificates (INFERMESH_TLS_CLIENT_AUTH), and NATS on TLS; the router with',
    'TLS (ECDSA P-256 certificates from a CA made for the run), INFERMESH_AUTH on and every call carrying an API key',
    '(checked against the keys bucket, then from the cache); nginx with `ssl` (TLS 1.2/1.3, session cache) and',
    '`grpc_pass grpcs://` with a client certificate, verifying the pod, keep-alive upstream connections, 1 worker',
    'process. The load client keeps its TLS connections open, as gRPC clients do.',
    `${opts.rounds} rounds of ${opts.durationMs / 1000} s per row, the paths taking turns; CPU columns are the median round's process CPU per request.`,
  ].join('\n');
}
