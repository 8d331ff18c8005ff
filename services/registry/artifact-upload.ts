// Receives an artifact's bytes into a temporary file while hashing them, so memory stays flat
// whatever the artifact's size, and the bytes can be validated before anything is stored. Each
// upload has a folder of its own, touched while the upload lives, so the folders a registry that
// stopped mid-push left behind can be told from those of pushes in progress and removed.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ErrorCode, MeshError, errors } from '../../lib/errors';

/** A received artifact: its temp file, sha256 and size. remove() deletes the file. */
export interface ReceivedArtifact {
  file: string;
  sha256: string;
  sizeBytes: number;
  remove(): Promise<void>;
}

/** What an upload may be. */
export interface UploadLimits {
  /** Fails as soon as more than this arrives (INFERMESH_MAX_ARTIFACT_BYTES). */
  maxBytes: number;
  /** The size the client announced: fails as soon as more than this arrives. */
  announcedBytes?: number;
}

/** The name every upload folder starts with (what sweep() looks at, and nothing else). */
export const UPLOAD_FOLDER_PREFIX = 'infermesh-upload-';

/**
 * How often an upload in progress touches its folder. A folder untouched for far longer
 * (INFERMESH_REGISTRY_UPLOAD_SWEEP_MIN_AGE_MS, at least 30 s) belongs to no live upload, whichever
 * registry sharing the folder had it.
 */
export const UPLOAD_TOUCH_MS = 10_000;

/** Waits until `out` drains, removing the listener it did not need (a large push left one per wait). */
function drained(out: fs.WriteStream): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onDrain = () => {
      out.off('error', failed);
      resolve();
    };
    const failed = (err: Error) => {
      out.off('drain', onDrain);
      reject(err);
    };
    out.once('drain', onDrain);
    out.once('error', failed);
  });
}

/** The folder uploads are staged in, and the uploads of this process in progress there. */
export class UploadStaging {
  private readonly live = new Set<string>();

  /** `dir`: INFERMESH_REGISTRY_UPLOAD_DIR (default the OS temp folder). */
  constructor(readonly dir: string = os.tmpdir()) {}

  /** Uploads of this process whose folders exist now. */
  get size(): number {
    return this.live.size;
  }

  /**
   * Writes `chunks` to a temp file in a folder of its own, hashing as it goes and honouring the
   * file stream's backpressure; fails (removing the folder) as soon as more than the announced
   * size or the maximum arrives, or when `chunks` fails.
   */
  async receive(chunks: AsyncIterable<Uint8Array>, limits: UploadLimits): Promise<ReceivedArtifact> {
    const dir = await fs.promises.mkdtemp(path.join(this.dir, UPLOAD_FOLDER_PREFIX));
    this.live.add(dir);
    const touch = setInterval(() => {
      const now = new Date();
      fs.promises.utimes(dir, now, now).catch(() => undefined);
    }, UPLOAD_TOUCH_MS);
    touch.unref();
    let removed: Promise<void> | undefined;
    const remove = () => {
      removed ??= (async () => {
        clearInterval(touch);
        try {
          await fs.promises.rm(dir, { recursive: true, force: true });
        } finally {
          this.live.delete(dir);
        }
      })();
      return removed;
    };
    const file = path.join(dir, 'artifact.onnx');
    const out = fs.createWriteStream(file);
    const hash = createHash('sha256');
    let size = 0;
    try {
      for await (const chunk of chunks) {
        size += chunk.byteLength;
        if (size > limits.maxBytes) throw errors.invalidArgument(`artifact exceeds the registry's maximum of ${limits.maxBytes} bytes`);
        // Read no further than the client said it would send: a header of 5 bytes is not a licence for 2 GiB.
        if (limits.announcedBytes !== undefined && size > limits.announcedBytes) {
          throw errors.invalidArgument(`artifact is more than the ${limits.announcedBytes} bytes the client announced`);
        }
        hash.update(chunk);
        if (!out.write(chunk)) await drained(out);
      }
      await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    } catch (err) {
      out.destroy();
      await remove();
      throw err;
    }
    return { file, sha256: hash.digest('hex'), sizeBytes: size, remove };
  }

  /**
   * Removes the upload folders no upload of this process has and that nothing touched for
   * `minAgeMs`: what a registry that stopped mid-push (a crash, a kill) left behind. Resolves how
   * many it removed.
   */
  async sweep(minAgeMs: number, now: number = Date.now()): Promise<number> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
    let removed = 0;
    for (const name of names) {
      const folder = path.join(this.dir, name);
      if (!name.startsWith(UPLOAD_FOLDER_PREFIX) || this.live.has(folder)) continue;
      const stat = await fs.promises.lstat(folder).catch(() => undefined);
      if (!stat?.isDirectory() || now - stat.mtimeMs < minAgeMs) continue;
      await fs.promises.rm(folder, { recursive: true, force: true });
      removed++;
    }
    return removed;
  }
}

/**
 * The messages of `it`, each awaited at most `idleMs` (0: for ever): past it, the iterator fails
 * with DEADLINE_EXCEEDED naming INFERMESH_REGISTRY_UPLOAD_IDLE_TIMEOUT_MS. A push whose client
 * sends nothing more (gone quiet, its connection kept alive by pings) would otherwise hold its
 * staged bytes and its upload slot for ever.
 */
export function idleBounded<T>(it: AsyncIterator<T>, idleMs: number): AsyncIterator<T> {
  if (idleMs <= 0) return it;
  return {
    next: () => {
      const next = it.next();
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
          // The message may still come, or the call end: either is of no use now.
          next.catch(() => undefined);
          reject(new MeshError(ErrorCode.DeadlineExceeded, `the push sent nothing for ${idleMs} ms (INFERMESH_REGISTRY_UPLOAD_IDLE_TIMEOUT_MS): its upload was dropped`));
        }, idleMs);
      });
      return Promise.race([next, idle]).finally(() => clearTimeout(timer));
    },
  };
}
