// Artifacts on the pod's disk, one file per sha256, shared by every version with the same bytes.
// Pulled from the registry in a stream, verified against the sha256 before use, and deleted when
// the last version using them unloads. Sessions load from the file, so no artifact stays in memory.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { RegistryClient } from '../../lib/grpc/types';
import { MeshError, ErrorCode } from '../../lib/errors';
import type { Logger } from '../../lib/log';

export class ArtifactCache {
  private readonly refs = new Map<string, number>();
  private readonly pulls = new Map<string, Promise<string>>();

  constructor(private readonly dir: string, private readonly registry: RegistryClient, private readonly log: Logger) {
    fs.mkdirSync(dir, { recursive: true });
  }

  private fileOf(sha256: string): string {
    return path.join(this.dir, `${sha256}.onnx`);
  }

  /**
   * `message` (onnxruntime's, naming the file it failed to load) without this pod's folder: the
   * reason reaches the model's callers and the registry, which learn the artifact's name, not where
   * the pod keeps its files.
   */
  withoutFolder(message: string): string {
    return message.split(this.dir + path.sep).join('');
  }

  /** The local path of a version's artifact, pulling it when absent; pair with release(). */
  async acquire(model: string, version: number, sha256: string): Promise<string> {
    this.refs.set(sha256, (this.refs.get(sha256) ?? 0) + 1);
    try {
      const file = this.fileOf(sha256);
      if (fs.existsSync(file)) return file;
      let pull = this.pulls.get(sha256);
      if (!pull) {
        pull = this.pull(model, version, sha256).finally(() => this.pulls.delete(sha256));
        this.pulls.set(sha256, pull);
      }
      return await pull;
    } catch (err) {
      await this.release(sha256);
      throw err;
    }
  }

  /** Drops one use of an artifact; the file goes when none is left. */
  async release(sha256: string): Promise<void> {
    const n = (this.refs.get(sha256) ?? 1) - 1;
    if (n > 0) {
      this.refs.set(sha256, n);
      return;
    }
    this.refs.delete(sha256);
    await fs.promises.rm(this.fileOf(sha256), { force: true });
  }

  private async pull(model: string, version: number, sha256: string): Promise<string> {
    const file = this.fileOf(sha256);
    const tmp = `${file}.${process.pid}.partial`;
    const out = fs.createWriteStream(tmp);
    const hash = createHash('sha256');
    const started = Date.now();
    try {
      const call = this.registry.PullArtifact({ model, version });
      for await (const chunk of call as AsyncIterable<{ data: Buffer }>) {
        hash.update(chunk.data);
        if (!out.write(chunk.data)) await new Promise<void>((r) => out.once('drain', () => r()));
      }
      await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
      const got = hash.digest('hex');
      if (got !== sha256) throw new MeshError(ErrorCode.FailedPrecondition, `artifact of ${model} v${version} has sha256 ${got}, expected ${sha256}`);
      await fs.promises.rename(tmp, file);
      this.log.info('artifact pulled', { model, version, sha256, ms: Date.now() - started });
      return file;
    } catch (err) {
      out.destroy();
      await fs.promises.rm(tmp, { force: true });
      throw err;
    }
  }
}
