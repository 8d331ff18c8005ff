// nginx as a reference gRPC proxy (grpc_pass), started by the router benchmark from a generated
// config in a temp folder when an `nginx` binary is on PATH. One worker process, so it compares
// with the single-threaded router; upstream connections are kept alive as a tuned setup would.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { childPids } from './proc-cpu';

/** A running nginx. */
export interface NginxProcess {
  address: string;
  /** Master and workers, whose CPU times are summed. */
  pids: number[];
  /** nginx -v, e.g. "nginx/1.22.1". */
  version: string;
  stop(): Promise<void>;
}

/** The nginx binary on PATH, or undefined. */
export function findNginx(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() || undefined : undefined;
}

/**
 * TLS for nginx, as the secured router runs it: its own certificate for clients (`ssl`), and
 * grpcs:// to the pods with a client certificate verified by them (mutual TLS), checking theirs.
 */
export interface NginxTls {
  certFile: string;
  keyFile: string;
  caFile: string;
}

/** An nginx.conf proxying gRPC on 127.0.0.1:`port` to `upstream` (host:port), over TLS when `tls` is given. */
export function nginxConfig(dir: string, port: number, upstream: string, tls?: NginxTls): string {
  const temp = (name: string) => path.join(dir, name);
  // Sessions are resumed and upstream connections kept alive, as a tuned edge would run it.
  const serverTls = tls
    ? `
    ssl_certificate ${tls.certFile};
    ssl_certificate_key ${tls.keyFile};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:1m;`
    : '';
  const upstreamTls = tls
    ? `
      grpc_ssl_certificate ${tls.certFile};
      grpc_ssl_certificate_key ${tls.keyFile};
      grpc_ssl_trusted_certificate ${tls.caFile};
      grpc_ssl_verify on;
      grpc_ssl_name localhost;
      grpc_ssl_session_reuse on;`
    : '';
  return `worker_processes 1;
daemon off;
master_process on;
pid ${temp('nginx.pid')};
error_log ${temp('error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${temp('body')};
  proxy_temp_path ${temp('proxy')};
  fastcgi_temp_path ${temp('fastcgi')};
  uwsgi_temp_path ${temp('uwsgi')};
  scgi_temp_path ${temp('scgi')};
  upstream pods {
    server ${upstream};
    keepalive 256;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port}${tls ? ' ssl' : ''} http2;
    keepalive_requests 1000000;
    http2_max_concurrent_streams 1024;${serverTls}
    location / {
      grpc_pass ${tls ? 'grpcs' : 'grpc'}://pods;${upstreamTls}
    }
  }
}
`;
}

function waitListening(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > until) reject(new Error(`nginx did not listen on ${port} within ${timeoutMs} ms`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Starts `binary` as a gRPC proxy on `port` in front of `upstream` (over TLS on both sides with `tls`). */
export async function startNginx(binary: string, port: number, upstream: string, tls?: NginxTls): Promise<NginxProcess> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-bench-nginx-'));
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(conf, nginxConfig(dir, port, upstream, tls));
  const version = spawnSync(binary, ['-v'], { encoding: 'utf8' }).stderr.trim().replace(/^nginx version: /, '');
  const child = spawn(binary, ['-p', dir, '-c', conf, '-e', path.join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await waitExit(child);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.race([
      waitListening(port, 10_000),
      waitExit(child).then(() => Promise.reject(new Error(`nginx exited: ${stderr}`))),
    ]);
    // The master forks its worker right after binding; give it a moment to appear.
    let workers: number[] = [];
    for (let i = 0; i < 50 && workers.length === 0; i++) {
      workers = childPids(child.pid!);
      if (workers.length === 0) await new Promise((r) => setTimeout(r, 20));
    }
    return { address: `127.0.0.1:${port}`, pids: [child.pid!, ...workers], version, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
