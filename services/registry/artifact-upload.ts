// Receives an artifact's bytes into a temporary file while hashing them, so memory stays flat
// whatever the artifact's size, and the bytes can be validated before anything is stored.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { errors } from '../../lib/errors';

/** A received artifact: its temp file, sha256 and size. remove() deletes the file. */
export interface ReceivedArtifact {
  file: string;
  sha256: string;
  sizeBytes: number;
  remove(): Promise<void>;
}

/**
 * Writes `chunks` to a temp file under `tmpDir` (default the OS temp folder), hashing as it goes
 * and honouring the file stream's backpressure; fails when more than `maxBytes` arrive.
 */
export async function receiveArtifact(chunks: AsyncIterable<Uint8Array>, maxBytes: number, tmpDir = os.tmpdir()): Promise<ReceivedArtifact> {
  const dir = await fs.promises.mkdtemp(path.join(tmpDir, 'infermesh-upload-'));
  const file = path.join(dir, 'artifact.onnx');
  const remove = () => fs.promises.rm(dir, { recursive: true, force: true });
  const out = fs.createWriteStream(file);
  const hash = createHash('sha256');
  let size = 0;
  try {
    for await (const chunk of chunks) {
      size += chunk.byteLength;
      if (size > maxBytes) throw errors.invalidArgument(`artifact exceeds the registry's maximum of ${maxBytes} bytes`);
      hash.update(chunk);
      // Each wait removes the listener it did not need, or a large push leaves one per wait.
      if (!out.write(chunk)) await new Promise<void>((resolve, reject) => {
        const drained = () => {
          out.off('error', failed);
          resolve();
        };
        const failed = (err: Error) => {
          out.off('drain', drained);
          reject(err);
        };
        out.once('drain', drained);
        out.once('error', failed);
      });
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  } catch (err) {
    out.destroy();
    await remove();
    throw err;
  }
  return { file, sha256: hash.digest('hex'), sizeBytes: size, remove };
}
