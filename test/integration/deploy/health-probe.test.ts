// tools/health-probe.ts, the Kubernetes probe of a service whose port speaks TLS (kubelet's gRPC
// probe speaks none): against a real grpc.health.v1 server with mutual TLS and a CA made here, it
// exits 0 while the server is SERVING, 1 when it is not, and 1 when it cannot prove itself (another
// CA's certificate) or speaks no TLS.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { createServer, listen, shutdownServer } from '../../../lib/grpc/server';
import { loadTls, type TlsFiles } from '../../../lib/tls';
import { silentLogger } from '../../../lib/log';
import { startTestPki, type TestPki } from '../../helpers/pki';
import type * as grpc from '@grpc/grpc-js';
import type { HealthService } from '../../../lib/grpc/health';

const root = path.resolve(__dirname, '../../..');

describe('health probe', () => {
  let pki: TestPki;
  let other: TestPki;
  let files: TlsFiles;
  let server: grpc.Server;
  let health: HealthService;
  let port: number;
  let probeEnv: Record<string, string>;

  /** Runs the probe as kubelet does (a child process; this process keeps serving meanwhile). */
  const probe = (env: Record<string, string>) => new Promise<{ status: number | null; stderr: string }>((resolve) => {
    execFile(process.execPath, [path.join(root, 'dist/tools/health-probe.js'), String(port)], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 20_000 }, (err, _stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr: String(stderr) });
    });
  });

  beforeAll(async () => {
    pki = await startTestPki();
    other = await startTestPki();
    const served = await pki.issue('registry', { kind: 'registry', name: 'registry', hosts: ['registry'] });
    const prober = await pki.issue('prober', { kind: 'registry', name: 'registry-0' });
    files = loadTls({ tlsCertFile: served.certFile, tlsKeyFile: served.keyFile, tlsCaFile: served.caFile, tlsClientAuth: true, tlsReloadIntervalMs: 60_000 }, silentLogger)!;
    ({ server, health } = createServer({ maxMessageBytes: 1024 * 1024 }));
    port = await listen(server, '127.0.0.1', 0, { files, clientAuth: true });
    probeEnv = pki.env(prober, { INFERMESH_TLS_CLIENT_AUTH: 'true' });
  });

  afterAll(async () => {
    await shutdownServer(server, 1_000);
    files?.close();
    pki?.cleanup();
    other?.cleanup();
  });

  it('passes while the server is SERVING and fails once it is not', async () => {
    health.set('', 'SERVING');
    const ok = await probe(probeEnv);
    expect({ status: ok.status, stderr: ok.stderr }).toEqual({ status: 0, stderr: '' });
    health.set('', 'NOT_SERVING');
    const draining = await probe(probeEnv);
    expect(draining.status).toBe(1);
    expect(draining.stderr).toMatch(/NOT_SERVING/);
    health.set('', 'SERVING');
  });

  it('fails against a server it cannot verify, and without TLS', async () => {
    health.set('', 'SERVING');
    const stranger = await other.issue('stranger', { kind: 'registry', name: 'registry-0' });
    expect((await probe(other.env(stranger))).status).toBe(1);
    expect((await probe({})).status).toBe(1);
  });
});
