// A typed client of infermesh's registry.
import fs from 'node:fs';
import { registryClient, unary } from '../lib/grpc/client';
import type { ModelOut, RegistryClient, VersionOut } from '../lib/grpc/types';
import { wrap } from './errors';

/** Options of push(); chunks of 1 MiB by default. */
export interface PushOptions {
  /** Fail unless the registry computes this sha256 (hex). */
  expectedSha256?: string;
  chunkBytes?: number;
}

export class RegistryApi {
  private readonly client: RegistryClient;

  /** Connects to the registry at `address` (host:port). */
  constructor(address: string) {
    this.client = registryClient(address);
  }

  /** Pushes a new version from a file path or bytes; resolves to the version the registry assigned. */
  push(model: string, artifact: string | Uint8Array, opts: PushOptions = {}): Promise<VersionOut> {
    const chunkBytes = opts.chunkBytes ?? 1024 * 1024;
    return new Promise<VersionOut>((resolve, reject) => {
      const call = this.client.PushVersion((err, res) => (err ? reject(err) : resolve(res!)));
      void (async () => {
        try {
          call.write({ header: { model, expected_sha256: opts.expectedSha256 ?? '' } });
          const chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = typeof artifact === 'string'
            ? fs.createReadStream(artifact, { highWaterMark: chunkBytes })
            : (function* () { for (let i = 0; i < artifact.length; i += chunkBytes) yield artifact.subarray(i, i + chunkBytes); })();
          for await (const chunk of chunks) {
            if (!call.write({ chunk })) await new Promise<void>((r) => call.once('drain', () => r()));
          }
          call.end();
        } catch (err) {
          call.cancel();
          reject(err);
        }
      })();
    }).catch(wrap);
  }

  /** Every model. */
  async models(): Promise<ModelOut[]> {
    return (await unary<{ models: ModelOut[] }>((cb) => this.client.ListModels({}, cb)).catch(wrap)).models;
  }

  /** One model. */
  model(name: string): Promise<ModelOut> {
    return unary<ModelOut>((cb) => this.client.GetModel({ name }, cb)).catch(wrap);
  }

  /** Every version of a model, oldest first. */
  async versions(model: string): Promise<VersionOut[]> {
    return (await unary<{ versions: VersionOut[] }>((cb) => this.client.ListVersions({ model }, cb)).catch(wrap)).versions;
  }

  /** One version (0: the latest). */
  version(model: string, version = 0): Promise<VersionOut> {
    return unary<VersionOut>((cb) => this.client.GetVersion({ model, version }, cb)).catch(wrap);
  }

  /** A version's artifact bytes. */
  async pull(model: string, version: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    try {
      for await (const c of this.client.PullArtifact({ model, version }) as AsyncIterable<{ data: Buffer }>) parts.push(c.data);
    } catch (err) {
      wrap(err);
    }
    return Buffer.concat(parts);
  }

  close(): void {
    this.client.close();
  }
}
