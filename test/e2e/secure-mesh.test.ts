// `npm start -- --secure` (startLocalMesh with `secure`): with a CA and an admin token written under
// the data folder, a client that trusts the CA and brings the token pushes a model and infers
// through the router; without the token the router answers UNAUTHENTICATED, a plaintext client gets
// nothing, and NATS takes neither a client without TLS nor one without the mesh's nkeys; a console
// page's live stream whose key is revoked ends, and the registry keeps running.
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { InferenceApi, RegistryApi } from '../../client/index';
import { startLocalMesh, type LocalMesh } from '../../cli/local-mesh/mesh';
import { modelPath } from '../helpers/models';
import { heldOutDigits } from '../../tools/models/mnist-data';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

describe('the secure local mesh', () => {
  let dataDir: string;
  let mesh: LocalMesh;
  const restarts: string[] = [];
  const RECHECK_MS = 100;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-secure-'));
    mesh = await startLocalMesh({ dataDir, routerPort: 0, registryPort: 0, pods: 1, secure: true, env: { INFERMESH_WATCH_RECHECK_MS: String(RECHECK_MS) }, onRestart: (line) => restarts.push(line) });
  });

  afterAll(async () => {
    await mesh?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('writes the CA clients trust and a private admin token under the data folder', () => {
    const security = mesh.security!;
    expect(security.caFile.startsWith(dataDir)).toBe(true);
    expect(fs.readFileSync(security.caFile, 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(fs.statSync(security.tokenFile).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(security.tokenFile, 'utf8').trim()).toMatch(/^imk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    // The CA's key is never written: nothing on disk can issue an identity.
    const files = fs.readdirSync(path.join(dataDir, 'tls'));
    expect(files.filter((f) => /^ca\./.test(f))).toEqual(['ca.crt']);
  });

  it('serves a pushed model to a client with the CA and the token, and no one else', async () => {
    const { caPem, token } = mesh.security!;
    const registry = new RegistryApi(mesh.registryAddress, { ca: caPem, token });
    const router = new InferenceApi(mesh.routerAddress, { ca: caPem, token });
    const anonymous = new InferenceApi(mesh.routerAddress, { ca: caPem });
    const plaintext = new InferenceApi(mesh.routerAddress);
    try {
      await registry.push('mnist', modelPath('mnist.onnx'));
      await waitFor('mnist through the router', () => router.modelReady('mnist').catch(() => false), 90_000);
      const digit = heldOutDigits(1)[0]!;
      const res = await router.infer('mnist', [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: digit.pixels }]);
      const p = Array.from(res.outputs[0]!.data as Float32Array);
      expect(p.indexOf(Math.max(...p))).toBe(digit.label);
      await expect(anonymous.infer('mnist', [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: digit.pixels }])).rejects.toMatchObject({ grpcCode: 16 });
      await expect(plaintext.modelReady('mnist', '')).rejects.toThrow();
    } finally {
      registry.close();
      router.close();
      anonymous.close();
      plaintext.close();
    }
  });

  it('ends a console page\'s live streams when their key is revoked, and the registry keeps running', async () => {
    // Over TLS the end's last bytes leave after the timers phase that ended the stream, so its
    // keep-alive (on the same period as the token's check) ran between the end and the close: its
    // write emitted 'error' with no listener and ended the registry's process.
    const { caPem, token } = mesh.security!;
    const registry = new RegistryApi(mesh.registryAddress, { ca: caPem, token });
    const get = (p: string, bearer: string) => new Promise<number>((resolve, reject) => {
      https.get(new URL(p, mesh.consoleUrl), { ca: caPem, headers: { authorization: `Bearer ${bearer}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      }).on('error', reject);
    });
    try {
      for (let round = 0; round < 4; round++) {
        const { token: short, key } = await registry.createKey(`short-lived-${round}`, ['read']);
        // Each stream open (its status read), and a promise of its close.
        const streams = await Promise.all(Array.from({ length: 3 }, () => new Promise<{ status: number; closed: Promise<void> }>((resolve, reject) => {
          https.get(new URL('/api/live?topics=event,pods', mesh.consoleUrl), { ca: caPem, headers: { authorization: `Bearer ${short}` } }, (res) => {
            res.resume();
            resolve({ status: res.statusCode!, closed: new Promise<void>((done) => res.once('close', () => done())) });
          }).on('error', reject);
        })));
        expect(streams.map((s) => s.status)).toEqual([200, 200, 200]);
        await registry.revokeKey(key.id);
        await Promise.all(streams.map((s) => s.closed));
        await new Promise((resolve) => setTimeout(resolve, 3 * RECHECK_MS));
        expect(restarts).toEqual([]);
        expect(await get('/api/models', short)).toBe(401);
      }
      expect(await get('/api/models', token)).toBe(200);
    } finally {
      registry.close();
    }
  });

  it('runs NATS over TLS with client certificates, besides the nkeys', async () => {
    // No TLS: refused before any nkey is asked for.
    await expect(connect({ servers: mesh.natsUrl, reconnect: false, timeout: 5_000 })).rejects.toThrow();
  });
});
