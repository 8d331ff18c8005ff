// Pushes stage their bytes on the registry's disk until they are stored; against a real nats-server
// and real registries, with keys: one caller has at most INFERMESH_REGISTRY_MAX_UPLOADS_PER_CALLER
// pushes in progress and all callers INFERMESH_REGISTRY_MAX_UPLOADS (RESOURCE_EXHAUSTED naming the
// setting, before a byte is staged); a push that goes quiet, before or after its header, ends with
// DEADLINE_EXCEEDED after INFERMESH_REGISTRY_UPLOAD_IDLE_TIMEOUT_MS and its staged bytes go; a push
// is refused as soon as more than its announced size arrives, not at its end; and upload folders a
// registry that stopped mid-push left are removed at start-up, and nothing else.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { RegistryApi } from '../../client/index';
import { newApiKey } from '../../lib/auth/api-keys';
import { registryClient } from '../../lib/grpc/client';
import type { RegistryClient } from '../../lib/grpc/types';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { bootstrapAuthEnv, recentLogger, startTestRegistry } from '../helpers/services';
import { modelPath } from '../helpers/models';
import { waitFor } from '../helpers/wait';
import type { RegistryService } from '../../services/registry/registry-service';

jest.setTimeout(120_000);

const DEADLINE_EXCEEDED = 4;
const INVALID_ARGUMENT = 3;
const RESOURCE_EXHAUSTED = 8;
/** Long enough that an answer not come by then is an answer the registry never gives. */
const HANG_MS = 20_000;
const MODEL = fs.readFileSync(modelPath('fixtures/add_sub_fp32.onnx'));

/** A push in progress over a raw stream: its answer (status or version), and how to end it. */
interface OpenPush {
  answer: Promise<ServiceError | undefined>;
  cancel(): void;
}

/** The upload folders in `dir`. */
const folders = (dir: string) => fs.readdirSync(dir).filter((n) => n.startsWith('infermesh-upload-'));

/** `p`'s value, or a failure saying the registry never answered. */
async function answered<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(new Error(`the registry never answered ${what}`)), HANG_MS);
  });
  try {
    return await Promise.race([p, hang]);
  } finally {
    clearTimeout(timer);
  }
}

describe('registry uploads', () => {
  let nats: NatsServerProcess & { cleanup(): Promise<void> };
  let root: string;
  const registries: RegistryService[] = [];
  const clients: { close(): void }[] = [];
  const pushes: OpenPush[] = [];
  const admin = newApiKey();

  /** Opens a PushVersion as `token` and sends `messages`, leaving the stream open. */
  const openPush = (raw: RegistryClient, token: string, messages: object[]): OpenPush => {
    const md = new Metadata();
    md.set('authorization', `Bearer ${token}`);
    let resolve!: (v: ServiceError | undefined) => void;
    const answer = new Promise<ServiceError | undefined>((r) => (resolve = r));
    const call = raw.PushVersion(md, (err) => resolve(err ?? undefined));
    for (const m of messages) call.write(m);
    const push = { answer, cancel: () => call.cancel() };
    pushes.push(push);
    return push;
  };

  /** A registry on its own upload folder, with authentication on and `env`. */
  const start = async (name: string, env: Record<string, string>) => {
    const dir = path.join(root, name);
    fs.mkdirSync(dir, { recursive: true });
    const log = recentLogger(name, 100, 'warn');
    const service = await startTestRegistry(nats.url, { ...bootstrapAuthEnv(root, admin.token), INFERMESH_REGISTRY_UPLOAD_DIR: dir, ...env }, log.logger);
    registries.push(service);
    const address = `127.0.0.1:${service.port}`;
    const raw = registryClient(address);
    const api = new RegistryApi(address, { token: admin.token });
    clients.push(raw, api);
    const as = (token: string) => {
      const c = new RegistryApi(address, { token });
      clients.push(c);
      return c;
    };
    return { dir, raw, api, as, log };
  };

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-uploads-test-'));
    nats = await startTestNats();
  });

  afterAll(async () => {
    for (const p of pushes) p.cancel();
    for (const c of clients) c.close();
    for (const r of registries) await r.shutdown(5_000);
    await nats?.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
  });

  // A size is required; 1 MiB is more than any of these pushes sends before it is held, cancelled or refused.
  const header = (model: string, sizeBytes: number | string = 1024 * 1024) => ({ header: { model, expected_sha256: '', size_bytes: sizeBytes } });
  const chunk = (bytes: number) => ({ chunk: Buffer.alloc(bytes, 7) });

  describe('admission and announced sizes', () => {
    let reg: Awaited<ReturnType<typeof start>>;

    beforeAll(async () => {
      reg = await start('admission', { INFERMESH_REGISTRY_MAX_UPLOADS_PER_CALLER: '2', INFERMESH_REGISTRY_MAX_UPLOADS: '3' });
    });

    it('holds one key to INFERMESH_REGISTRY_MAX_UPLOADS_PER_CALLER pushes and all to INFERMESH_REGISTRY_MAX_UPLOADS, and frees a slot when its push ends', async () => {
      const grants = ['push:up-*', 'read:up-*'];
      const a = (await reg.api.createKey('uploader-a', grants)).token;
      const b = (await reg.api.createKey('uploader-b', grants)).token;
      const c = (await reg.api.createKey('uploader-c', grants)).token;
      // Two pushes of a's that send a header and 64 KiB, then nothing more.
      const held = [openPush(reg.raw, a, [header('up-a1'), chunk(65_536)]), openPush(reg.raw, a, [header('up-a2'), chunk(65_536)])];
      await waitFor('both of a\'s pushes staged', () => folders(reg.dir).length === 2);

      const third = await answered(openPush(reg.raw, a, [header('up-a3'), chunk(65_536)]).answer, 'a third push of one key');
      expect(third?.code).toBe(RESOURCE_EXHAUSTED);
      expect(third?.details).toBe('this caller has 2 pushes in progress, the most it may (INFERMESH_REGISTRY_MAX_UPLOADS_PER_CALLER): let one finish first');
      expect(folders(reg.dir)).toHaveLength(2);

      // Another key still pushes, up to the registry's total.
      held.push(openPush(reg.raw, b, [header('up-b1'), chunk(65_536)]));
      await waitFor('b\'s push staged', () => folders(reg.dir).length === 3);
      const fourth = await answered(openPush(reg.raw, c, [header('up-c1'), chunk(65_536)]).answer, 'a push past the total');
      expect(fourth?.code).toBe(RESOURCE_EXHAUSTED);
      expect(fourth?.details).toBe('the registry has 3 pushes in progress, the most it serves at once (INFERMESH_REGISTRY_MAX_UPLOADS); try again later');

      // Cancelled pushes give their slots and their staged bytes back.
      for (const p of held) p.cancel();
      await waitFor('every staged push removed', () => folders(reg.dir).length === 0);
      expect((await reg.as(a).push('up-a4', MODEL)).version).toBe(1);
      expect((await reg.as(c).push('up-c2', MODEL)).version).toBe(1);
      expect(folders(reg.dir)).toEqual([]);
    });

    it('refuses a push as soon as more than its announced size arrives, without waiting for its end', async () => {
      const push = openPush(reg.raw, admin.token, [header('up-announced', 5), chunk(1024 * 1024)]);
      const err = await answered(push.answer, 'a push past its announced size (the stream left open)');
      expect(err?.code).toBe(INVALID_ARGUMENT);
      expect(err?.details).toBe('artifact is more than the 5 bytes the client announced');
      await waitFor('its staged bytes removed', () => folders(reg.dir).length === 0);
      expect((await reg.api.models()).map((m) => m.name)).not.toContain('up-announced');
    });
  });

  describe('a push that goes quiet', () => {
    let reg: Awaited<ReturnType<typeof start>>;

    beforeAll(async () => {
      reg = await start('idle', { INFERMESH_REGISTRY_UPLOAD_IDLE_TIMEOUT_MS: '300' });
    });

    it.each([
      ['before its header', [] as object[]],
      ['after its header', [header('up-quiet-1')]],
      ['after some of its bytes', [header('up-quiet-2'), chunk(256 * 1024)]],
    ])('ends with DEADLINE_EXCEEDED naming the setting %s, and leaves nothing staged', async (_when, messages) => {
      const err = await answered(openPush(reg.raw, admin.token, messages).answer, 'a quiet push');
      expect(err?.code).toBe(DEADLINE_EXCEEDED);
      expect(err?.details).toBe('the push sent nothing for 300 ms (INFERMESH_REGISTRY_UPLOAD_IDLE_TIMEOUT_MS): its upload was dropped');
      await waitFor('its staged bytes removed', () => folders(reg.dir).length === 0);
      expect((await reg.api.models()).map((m) => m.name).filter((n) => n.startsWith('up-quiet'))).toEqual([]);
    });

    it('still takes a push that keeps sending', async () => {
      expect((await reg.api.push('up-whole', MODEL)).version).toBe(1);
      expect(reg.log.lines.filter((l) => l.includes('unexpected error'))).toEqual([]);
    });
  });

  it('removes, at start-up, the upload folders no push has touched for INFERMESH_REGISTRY_UPLOAD_SWEEP_MIN_AGE_MS, and nothing else', async () => {
    const dir = path.join(root, 'sweep');
    fs.mkdirSync(dir);
    const hourAgo = new Date(Date.now() - 3_600_000);
    const make = (name: string, old: boolean) => {
      const folder = path.join(dir, name);
      fs.mkdirSync(folder);
      fs.writeFileSync(path.join(folder, 'artifact.onnx'), Buffer.alloc(4096, 1));
      if (old) fs.utimesSync(folder, hourAgo, hourAgo);
    };
    make('infermesh-upload-left1', true);
    make('infermesh-upload-left2', true);
    make('infermesh-upload-live', false);
    make('not-an-upload', true);
    const reg = await start('sweep', {});
    await waitFor('the folders left behind removed', () => !folders(reg.dir).some((n) => n.startsWith('infermesh-upload-left')), 15_000);
    expect(fs.readdirSync(dir).sort()).toEqual(['infermesh-upload-live', 'not-an-upload']);
    expect(reg.log.lines.some((l) => l.includes('removed upload folders no push had touched'))).toBe(true);
  });
});
