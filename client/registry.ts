// A typed client of infermesh's registry.
import fs from 'node:fs';
import { status } from '@grpc/grpc-js';
import { registryClient, unary } from '../lib/grpc/client';
import type { ModelOut, RegistryClient, ServingConfig, VersionOut } from '../lib/grpc/types';
import type { DeleteVersionResponse__Output as DeleteVersionResponseOut } from '../lib/grpc/generated/infermesh/registry/v1/DeleteVersionResponse';
import type { Event__Output as EventOut } from '../lib/grpc/generated/infermesh/registry/v1/Event';
import type { MeshEvent } from '../lib/events';
import { isServiceError } from '../lib/errors';
import { wrap } from './errors';
import { clientOptions, type ConnectOptions } from './connection';
import type { ApiKey__Output as ApiKeyOut } from '../lib/grpc/generated/infermesh/registry/v1/ApiKey';
import type { Pod__Output as PodOut } from '../lib/grpc/generated/infermesh/registry/v1/Pod';
import type { CreateKeyResponse__Output as CreateKeyResponseOut } from '../lib/grpc/generated/infermesh/registry/v1/CreateKeyResponse';

/** Options of push(); chunks of 1 MiB by default. */
export interface PushOptions {
  /** Fail unless the registry computes this sha256 (hex). */
  expectedSha256?: string;
  chunkBytes?: number;
  /**
   * The artifact's size, which the registry requires (it refuses a push without it, INVALID_ARGUMENT,
   * as a push cut short on the way could not be told from a whole one) and checks the bytes against,
   * refusing one above its maximum before any byte is sent; default: the file's or buffer's size (a
   * stream must give it).
   */
  sizeBytes?: number;
  /**
   * Called as each chunk is handed to the call's stream (once per chunk) with the bytes handed so
   * far and the artifact's size, undefined when unknown (a stream without sizeBytes, whose push the
   * registry refuses at its header: chunks written before that answer are still reported); default none.
   */
  onProgress?: (sentBytes: number, totalBytes: number | undefined) => void;
}

/** What updateModel() replaces; fields left out are kept. */
export interface ModelUpdate {
  description?: string;
  labels?: Record<string, string>;
  config?: ServingConfig;
}

/** Options of updateModel(). */
export interface UpdateModelOptions {
  /** Apply only if the model is still at this revision (Model.revision), else ABORTED; default: unconditionally. */
  expectedRevision?: number | string;
}

/** Where watchEvents() starts: default with the oldest event kept. */
export interface WatchOptions {
  /** First stream sequence to deliver (resume with the last one seen + 1); default 0: from the oldest. */
  fromSequence?: number;
  /** Only events published after the watch started. */
  onlyNew?: boolean;
  /** Only this model's events. */
  model?: string;
}

/** One event as watchEvents() yields it: its stream sequence and the event (lib/events.ts schemas). */
export interface WatchedEvent {
  sequence: number;
  event: MeshEvent;
}

/** A running watch: iterate it for events; it ends when cancelled. */
export interface EventWatch extends AsyncIterable<WatchedEvent> {
  /** Resolves once the registry follows the stream: every event published from then on will come. */
  ready: Promise<void>;
  cancel(): void;
}

/** What deleteVersion() did. */
export interface DeletedVersion {
  version: VersionOut;
  /** False when another version (of any model) has the same bytes, so they were kept. */
  artifactDeleted: boolean;
}

/** A key just created: its token (shown this once) and its record. */
export interface CreatedKey {
  token: string;
  key: ApiKeyOut;
}

export class RegistryApi {
  private readonly client: RegistryClient;

  /** Connects to the registry at `address` (host:port); plaintext and without a token by default. */
  constructor(address: string, opts: ConnectOptions = {}) {
    this.client = registryClient(address, clientOptions(address, opts));
  }

  /**
   * Pushes a new version from a file path, bytes or a stream of chunks, reading no faster than the
   * registry takes them; resolves to the version the registry assigned. Sending stops as soon as
   * the registry answers (a rejection arrives before the whole artifact was sent).
   */
  push(model: string, artifact: string | Uint8Array | AsyncIterable<Uint8Array>, opts: PushOptions = {}): Promise<VersionOut> {
    const chunkBytes = opts.chunkBytes ?? 1024 * 1024;
    return new Promise<VersionOut>((resolve, reject) => {
      let answered = false;
      let wake: (() => void) | undefined;
      const call = this.client.PushVersion((err, res) => {
        answered = true;
        wake?.();
        if (err) reject(err);
        else resolve(res!);
      });
      const writable = () => new Promise<void>((r) => {
        wake = r;
        call.once('drain', () => r());
      });
      void (async () => {
        try {
          const sizeBytes = opts.sizeBytes
            ?? (typeof artifact === 'string' ? (await fs.promises.stat(artifact)).size : artifact instanceof Uint8Array ? artifact.byteLength : 0);
          call.write({ header: { model, expected_sha256: opts.expectedSha256 ?? '', size_bytes: sizeBytes } });
          const chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = typeof artifact === 'string'
            ? fs.createReadStream(artifact, { highWaterMark: chunkBytes })
            : artifact instanceof Uint8Array
              ? (function* () { for (let i = 0; i < artifact.length; i += chunkBytes) yield artifact.subarray(i, i + chunkBytes); })()
              : artifact;
          let sentBytes = 0;
          // Leaving the loop early closes the file.
          for await (const chunk of chunks) {
            if (answered) break;
            const flowing = call.write({ chunk });
            sentBytes += chunk.byteLength;
            opts.onProgress?.(sentBytes, sizeBytes > 0 ? sizeBytes : undefined);
            if (!flowing) await writable();
          }
          if (!answered) call.end();
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

  /** A version's artifact bytes, in memory (for large artifacts, pullStream()). */
  async pull(model: string, version: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const c of this.pullStream(model, version)) parts.push(c);
    return Buffer.concat(parts);
  }

  /**
   * A version's artifact bytes as they arrive; the registry sends no faster than they are
   * consumed. Stopping early cancels the download. The caller checks the sha256 if it cares.
   */
  async *pullStream(model: string, version: number): AsyncGenerator<Buffer> {
    const call = this.client.PullArtifact({ model, version });
    try {
      for await (const c of call as AsyncIterable<{ data: Buffer }>) yield c.data;
    } catch (err) {
      wrap(err);
    } finally {
      call.cancel(); // no-op once the stream ended
    }
  }

  /** Replaces a model's description, labels or serving config; resolves to the model as stored. */
  updateModel(name: string, update: ModelUpdate, opts: UpdateModelOptions = {}): Promise<ModelOut> {
    const mask = (['description', 'labels', 'config'] as const).filter((f) => update[f] !== undefined);
    return unary<ModelOut>((cb) => this.client.UpdateModel({
      name,
      description: update.description ?? '',
      labels: update.labels ?? {},
      config: update.config ?? null,
      update_mask: mask,
      expected_revision: String(opts.expectedRevision ?? 0),
    }, cb)).catch(wrap);
  }

  /** Archives a version: it stays listed and pullable but is never served again. FAILED_PRECONDITION while it serves traffic. */
  archiveVersion(model: string, version: number): Promise<VersionOut> {
    return unary<VersionOut>((cb) => this.client.ArchiveVersion({ model, version }, cb)).catch(wrap);
  }

  /** Deletes a version (and its artifact unless shared). FAILED_PRECONDITION while it serves traffic. */
  async deleteVersion(model: string, version: number): Promise<DeletedVersion> {
    const res = await unary<DeleteVersionResponseOut>((cb) => this.client.DeleteVersion({ model, version }, cb)).catch(wrap);
    return { version: res.version!, artifactDeleted: res.artifact_deleted };
  }

  /** Follows the registry's events in order, from the oldest kept by default; runs until cancel(). */
  watchEvents(opts: WatchOptions = {}): EventWatch {
    const call = this.client.WatchEvents({ start_sequence: opts.fromSequence ?? 0, only_new: opts.onlyNew ?? false, model: opts.model ?? '' });
    let cancelled = false;
    const ready = new Promise<void>((resolve, reject) => {
      call.once('metadata', () => resolve());
      call.once('error', reject);
      call.once('end', () => reject(new Error('the event stream ended before it started')));
    }).catch(wrap);
    ready.catch(() => undefined); // also reported by the iterator
    async function* events(): AsyncGenerator<WatchedEvent> {
      try {
        for await (const e of call as AsyncIterable<EventOut>) yield { sequence: Number(e.sequence), event: JSON.parse(e.json) as MeshEvent };
      } catch (err) {
        if (cancelled && isServiceError(err) && err.code === status.CANCELLED) return;
        wrap(err);
      } finally {
        call.cancel();
      }
    }
    return {
      ready,
      cancel() {
        cancelled = true;
        call.cancel();
      },
      [Symbol.asyncIterator]: events,
    };
  }

  /**
   * Creates an API key with `grants` (`infer:mnist*`, `read`, `admin`...); needs `admin`. The token
   * is in this answer only: the registry keeps a hash of it. Never retried: a create whose answer
   * is lost (UNAVAILABLE, DEADLINE_EXCEEDED) may have made its key, which keys() lists (name,
   * created_at) and revokeKey() revokes.
   */
  async createKey(name: string, grants: string[]): Promise<CreatedKey> {
    const res = await unary<CreateKeyResponseOut>((cb) => this.client.CreateKey({ name, grants }, cb)).catch(wrap);
    return { token: res.token, key: res.key! };
  }

  /** Every key's record (never a secret or a hash), oldest first; needs `admin`. */
  async keys(): Promise<ApiKeyOut[]> {
    return (await unary<{ keys: ApiKeyOut[] }>((cb) => this.client.ListKeys({}, cb)).catch(wrap)).keys;
  }

  /** Revokes a key by id (refused everywhere from then on); needs `admin`. */
  revokeKey(id: string): Promise<ApiKeyOut> {
    return unary<ApiKeyOut>((cb) => this.client.RevokeKey({ id }, cb)).catch(wrap);
  }

  /**
   * The inference pods as their latest heartbeats say, by name: address, state, the versions each
   * holds (of the models the caller may read) and requests in flight.
   */
  async pods(): Promise<PodOut[]> {
    return (await unary<{ pods: PodOut[] }>((cb) => this.client.ListPods({}, cb)).catch(wrap)).pods;
  }

  close(): void {
    this.client.close();
  }
}
