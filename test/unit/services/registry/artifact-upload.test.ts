// Staging of pushed bytes (UploadStaging) on a real folder: bytes hashed and kept until remove();
// refused at the first byte past the announced size or the maximum, with nothing left; the sweep
// removes old upload folders but never one of an upload in progress here, whatever its age; the
// idle bound on a push's messages (idleBounded); and the settings that size pushes.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { idleBounded, UploadStaging, UPLOAD_FOLDER_PREFIX, type UploadLimits } from '../../../../services/registry/artifact-upload';
import { uploadLimitsOf } from '../../../../services/registry/grpc-handlers';
import { ErrorCode, MeshError } from '../../../../lib/errors';
import { loadConfig } from '../../../../lib/config';
import { waitFor } from '../../../helpers/wait';

describe('UploadStaging', () => {
  let dir: string;
  const entries = () => fs.readdirSync(dir).sort();

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-staging-test-'));
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function* chunksOf(...sizes: number[]): AsyncGenerator<Uint8Array> {
    for (const n of sizes) yield Buffer.alloc(n, 3);
  }

  it('keeps the bytes, hashed, in a folder of their own until remove()', async () => {
    const staging = new UploadStaging(dir);
    const got = await staging.receive(chunksOf(10, 20), { maxBytes: 100, announcedBytes: 30 });
    expect(got.sizeBytes).toBe(30);
    expect(got.sha256).toBe(createHash('sha256').update(Buffer.alloc(30, 3)).digest('hex'));
    expect(path.dirname(path.dirname(got.file))).toBe(dir);
    expect(staging.size).toBe(1);
    await got.remove();
    expect(entries()).toEqual([]);
    expect(staging.size).toBe(0);
  });

  it.each<[string, UploadLimits, string, number]>([
    ['more than announced', { maxBytes: 100, announcedBytes: 5 }, 'artifact is more than the 5 bytes the client announced', 1],
    ['more than the maximum', { maxBytes: 15 }, "artifact exceeds the registry's maximum of 15 bytes", 2],
  ])('refuses %s at the first chunk past it, reading no further and leaving nothing', async (_what, limits, message, chunksRead) => {
    let read = 0;
    async function* endless(): AsyncGenerator<Uint8Array> {
      for (;;) {
        read++;
        yield Buffer.alloc(10, 1);
      }
    }
    const err = await new UploadStaging(dir).receive(endless(), limits).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeshError);
    expect((err as MeshError).code).toBe(ErrorCode.InvalidArgument);
    expect((err as MeshError).message).toBe(message);
    expect(read).toBe(chunksRead);
    expect(entries()).toEqual([]);
  });

  it('sweeps old upload folders, never one of an upload in progress here, nor anything else', async () => {
    const staging = new UploadStaging(dir);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    async function* slow(): AsyncGenerator<Uint8Array> {
      yield Buffer.alloc(8, 1);
      await gate;
    }
    const inProgress = staging.receive(slow(), { maxBytes: 100 });
    const hourAgo = new Date(Date.now() - 3_600_000);
    // Its file written, so nothing changes the folder's time after it is set.
    await waitFor('the upload\'s first bytes', () => entries().length === 1 && fs.existsSync(path.join(dir, entries()[0]!, 'artifact.onnx')));
    const [live] = entries();
    expect(live).toMatch(new RegExp(`^${UPLOAD_FOLDER_PREFIX}`));
    fs.utimesSync(path.join(dir, live!), hourAgo, hourAgo);
    fs.mkdirSync(path.join(dir, `${UPLOAD_FOLDER_PREFIX}left`));
    fs.utimesSync(path.join(dir, `${UPLOAD_FOLDER_PREFIX}left`), hourAgo, hourAgo);
    fs.mkdirSync(path.join(dir, `${UPLOAD_FOLDER_PREFIX}recent`));
    fs.writeFileSync(path.join(dir, `${UPLOAD_FOLDER_PREFIX}a-file`), 'x');
    fs.utimesSync(path.join(dir, `${UPLOAD_FOLDER_PREFIX}a-file`), hourAgo, hourAgo);
    fs.mkdirSync(path.join(dir, 'other'));
    fs.utimesSync(path.join(dir, 'other'), hourAgo, hourAgo);

    expect(await staging.sweep(60_000)).toBe(1);
    expect(entries()).toEqual([live, `${UPLOAD_FOLDER_PREFIX}a-file`, `${UPLOAD_FOLDER_PREFIX}recent`, 'other'].sort());
    // Another process's sweep sees the upload in progress as old: this process's own does not.
    expect(await new UploadStaging(dir).sweep(60_000)).toBe(1);
    release();
    await inProgress.catch(() => undefined);
  });

  it('answers nothing for a folder that does not exist', async () => {
    expect(await new UploadStaging(path.join(dir, 'missing')).sweep(1)).toBe(0);
  });
});

describe('idleBounded', () => {
  it('fails a wait past the bound with DEADLINE_EXCEEDED naming the setting, and passes messages that come', async () => {
    async function* twoThenQuiet(): AsyncGenerator<number> {
      yield 1;
      yield 2;
      await new Promise(() => undefined);
    }
    const it = idleBounded(twoThenQuiet(), 50);
    expect(await it.next()).toEqual({ value: 1, done: false });
    expect(await it.next()).toEqual({ value: 2, done: false });
    const err = await it.next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeshError);
    expect((err as MeshError).code).toBe(ErrorCode.DeadlineExceeded);
    expect((err as MeshError).message).toBe('the push sent nothing for 50 ms (INFERMESH_REGISTRY_UPLOAD_IDLE_TIMEOUT_MS): its upload was dropped');
  });
});

describe('upload settings', () => {
  it('default to 5 pushes a caller (dockerd\'s max-concurrent-uploads), 16 in all and 60 s of quiet (nginx client_body_timeout)', () => {
    expect(uploadLimitsOf(loadConfig({}))).toEqual({ perCaller: 5, total: 16, idleTimeoutMs: 60_000 });
    expect(loadConfig({}).registryUploadSweepMinAgeMs).toBe(300_000);
    expect(() => loadConfig({ INFERMESH_REGISTRY_UPLOAD_SWEEP_MIN_AGE_MS: '1000' })).toThrow(/INFERMESH_REGISTRY_UPLOAD_SWEEP_MIN_AGE_MS/);
  });
});
