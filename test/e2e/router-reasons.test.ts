// Why a version is not ready reaches a client through the router, not only a pod: ModelReady's
// trailing metadata, RepositoryIndex's reason, and `infermesh models` (the built CLI) all carry the
// failed load the pods report (load_fails.onnx never loads), while a healthy model reads READY.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { InferenceApi } from '../../client/index';
import { READY_REASON_KEY } from '../../lib/grpc/ready-reason';
import { startTestMesh, inferenceClient, type TestMesh } from '../helpers/mesh';
import { startTestRouter } from '../helpers/services';
import { waitFor } from '../helpers/wait';
import type { RouterService } from '../../services/router/router-service';

jest.setTimeout(120_000);

const cli = path.resolve(__dirname, '../../dist/cli/main.js');
const run = promisify(execFile);

describe('a failed load, seen through the router', () => {
  let mesh: TestMesh;
  let router: RouterService;
  let api: InferenceApi;

  beforeAll(async () => {
    mesh = await startTestMesh();
    await mesh.startPod({ INFERMESH_LOAD_RETRY_BASE_MS: '200', INFERMESH_LOAD_RETRY_MAX_MS: '400' });
    await mesh.push('add_sub', 'fixtures/add_sub_fp32.onnx');
    await mesh.push('broken', 'fixtures/load_fails.onnx');
    router = await startTestRouter(mesh.nats.url, mesh.registry.port);
    api = new InferenceApi(`127.0.0.1:${router.port}`);
    await waitFor('the router to see add_sub ready and broken failed', async () => {
      const index = await api.repositoryIndex();
      return index.some((m) => m.name === 'add_sub' && m.state === 'READY') && index.some((m) => m.name === 'broken' && m.reason !== '');
    }, 60_000);
  });

  afterAll(async () => {
    api?.close();
    await router?.shutdown(5_000);
    await mesh?.close();
  });

  it('RepositoryIndex lists every version with its state and the pod\'s reason', async () => {
    const index = await api.repositoryIndex();
    expect(index.find((m) => m.name === 'add_sub')).toEqual({ name: 'add_sub', version: '1', state: 'READY', reason: '' });
    const broken = index.find((m) => m.name === 'broken')!;
    expect(broken.state).not.toBe('READY');
    expect(broken.reason).toMatch(/^pod-[^:]+: .*failed \d+ times? in a row; next try in \d+ ms\)$/);
    expect((await api.repositoryIndex({ readyOnly: true })).map((m) => m.name)).toEqual(['add_sub']);
  });

  it('ModelReady says false and why in its trailing metadata; true for a ready model, with no reason', async () => {
    const client = inferenceClient(`127.0.0.1:${router.port}`);
    const ready = (name: string) => new Promise<{ ready: boolean; reason: string | undefined }>((resolve, reject) => {
      let reason: string | undefined;
      const call = client.ModelReady({ name, version: '' }, (err, res) => (err ? reject(err) : setImmediate(() => resolve({ ready: res!.ready, reason }))));
      call.on('status', (s: grpc.StatusObject) => { reason = s.metadata.get(READY_REASON_KEY)[0]?.toString(); });
    });
    try {
      expect(await ready('add_sub')).toEqual({ ready: true, reason: undefined });
      const broken = await ready('broken');
      expect(broken.ready).toBe(false);
      expect(broken.reason).toMatch(/^version 1 (LOADING|UNAVAILABLE): pod-[^:]+: .*failed \d+ times? in a row/);
      expect(await ready('nobody')).toEqual({ ready: false, reason: "no pod has model 'nobody'" });
    } finally {
      client.close();
    }
  });

  it('`infermesh models` shows each version\'s state on the pods and the reason', async () => {
    const { stdout } = await run(process.execPath, [cli, 'models', '--json', '--registry', `127.0.0.1:${mesh.registry.port}`, '--router', `127.0.0.1:${router.port}`]);
    const models = JSON.parse(stdout) as { name: string; pods: { version: number; state: string; reason?: string }[] }[];
    expect(models.find((m) => m.name === 'add_sub')!.pods).toEqual([{ version: 1, state: 'READY' }]);
    const broken = models.find((m) => m.name === 'broken')!.pods;
    expect(broken).toHaveLength(1);
    expect(broken[0]!.reason).toMatch(/failed \d+ times? in a row/);
  });

  it('`infermesh models` still lists the registry\'s models when no router answers, and says so', async () => {
    const { stdout, stderr } = await run(process.execPath, [cli, 'models', '--json', '--registry', `127.0.0.1:${mesh.registry.port}`, '--router', '127.0.0.1:1']);
    expect((JSON.parse(stdout) as { name: string; pods?: unknown }[]).map((m) => [m.name, m.pods])).toEqual([['add_sub', undefined], ['broken', undefined]]);
    expect(stderr).toMatch(/the router at 127\.0\.0\.1:1 did not answer .*pod states are left out/);
  });
});
