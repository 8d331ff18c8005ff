// The registry's domain: models, immutable versions, content-addressed artifacts and the traffic
// split, stored in JetStream (KV + Object Store) and announced as events. Holds no state of its own,
// so replicas can run side by side: every read-modify-write is a compare-and-set on the KV revision.
import fs from 'node:fs';
import { Readable } from 'node:stream';
import type { JetStreamClient, KV, ObjectStore } from '../../lib/nats';
import { errors, MeshError, ErrorCode } from '../../lib/errors';
import { newEvent, publishEvent, type EventInput } from '../../lib/events';
import { readOnnxSignature, OnnxFormatError } from '../../lib/onnx';
import { retry } from '../../lib/retry';
import type { Logger } from '../../lib/log';
import { receiveArtifact } from './artifact-upload';
import { keys, MODEL_NAME, type ModelRecord, type ServingConfig, type VersionRecord } from './records';

/** What the registry is built from. */
export interface RegistryDeps {
  kv: KV;
  artifacts: ObjectStore;
  js: JetStreamClient;
  log: Logger;
  /** Largest artifact accepted, in bytes. */
  maxArtifactBytes: number;
}

/** Fields of a new model. */
export interface NewModel {
  name: string;
  description?: string;
  labels?: Record<string, string>;
  config?: ServingConfig;
}

const encoder = new TextEncoder();
const encode = (v: unknown) => encoder.encode(JSON.stringify(v));

/** JetStream's "wrong last sequence": someone else wrote the key since we read it. */
function isConflict(err: unknown): boolean {
  return err instanceof Error && /wrong last sequence|key exists/i.test(err.message);
}

export class Registry {
  constructor(private readonly deps: RegistryDeps) {}

  private static checkName(name: string): void {
    if (!MODEL_NAME.test(name)) {
      throw errors.invalidArgument(`model name '${name}' is invalid: use 1-63 lower-case letters, digits or '-', starting and ending with a letter or digit`);
    }
  }

  private async read<T>(key: string): Promise<{ value: T; revision: number } | undefined> {
    const e = await retry(() => this.deps.kv.get(key));
    if (!e || e.operation !== 'PUT') return undefined;
    return { value: e.json<T>(), revision: e.revision };
  }

  /** Compare-and-set loop: applies `mutate` to the current value until a write wins. */
  private async update<T>(key: string, mutate: (current: T) => T): Promise<T> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const cur = await this.read<T>(key);
      if (!cur) throw new MeshError(ErrorCode.Internal, `record ${key} vanished`);
      const next = mutate(cur.value);
      try {
        await this.deps.kv.update(key, encode(next), cur.revision);
        return next;
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
    }
    throw new MeshError(ErrorCode.Conflict, `too many concurrent writers of ${key}; try again`);
  }

  private async publish(input: EventInput): Promise<void> {
    const event = newEvent(input);
    await retry(() => publishEvent(this.deps.js, event));
  }

  /** Creates a model, or returns the existing one unchanged. */
  async createModel(m: NewModel): Promise<ModelRecord> {
    Registry.checkName(m.name);
    const record: ModelRecord = {
      schema: 1,
      name: m.name,
      description: m.description ?? '',
      labels: m.labels ?? {},
      config: m.config ?? {},
      latestVersion: 0,
      traffic: [],
      createdAt: new Date().toISOString(),
    };
    try {
      await retry(() => this.deps.kv.create(keys.model(m.name), encode(record)), { retryable: (e) => !isConflict(e) });
    } catch (err) {
      if (isConflict(err)) return this.getModel(m.name);
      throw err;
    }
    await this.publish({ type: 'model.created', model: m.name });
    return record;
  }

  /** The model's record; NOT_FOUND when it does not exist. */
  async getModel(name: string): Promise<ModelRecord> {
    const cur = await this.read<ModelRecord>(keys.model(name));
    if (!cur) throw errors.modelNotFound(name);
    return cur.value;
  }

  /** Every model, sorted by name. */
  async listModels(): Promise<ModelRecord[]> {
    const names: string[] = [];
    for await (const k of await this.deps.kv.keys(keys.models)) names.push(k.slice('models.'.length));
    const models = await Promise.all(names.sort().map((n) => this.read<ModelRecord>(keys.model(n))));
    return models.flatMap((m) => (m ? [m.value] : []));
  }

  /**
   * Stores a new version from its bytes: validates it as ONNX, stores the artifact once per sha256,
   * assigns the next version number, makes it the version served, and publishes the events.
   * Nothing is stored when the bytes are rejected.
   */
  async pushVersion(model: string, chunks: AsyncIterable<Uint8Array>, expectedSha256 = ''): Promise<VersionRecord> {
    Registry.checkName(model);
    const upload = await receiveArtifact(chunks, this.deps.maxArtifactBytes);
    try {
      if (upload.sizeBytes === 0) throw errors.invalidArgument('artifact is empty');
      const want = expectedSha256.toLowerCase();
      if (want && want !== upload.sha256) {
        throw errors.invalidArgument(`artifact sha256 is ${upload.sha256}, but the client expected ${want}`);
      }
      const signature = await readOnnxSignature(upload.file).catch((err: unknown) => {
        if (err instanceof OnnxFormatError) throw errors.invalidArgument(`artifact is not a servable ONNX model: ${err.message}`);
        throw err;
      });
      await this.storeArtifact(upload.sha256, upload.file);
      await this.createModel({ name: model });
      const { latestVersion: version } = await this.update<ModelRecord>(keys.model(model), (m) => ({ ...m, latestVersion: m.latestVersion + 1 }));
      const record: VersionRecord = {
        schema: 1,
        model,
        version,
        sha256: upload.sha256,
        sizeBytes: upload.sizeBytes,
        createdAt: new Date().toISOString(),
        inputs: signature.inputs,
        outputs: signature.outputs,
        state: 'AVAILABLE',
      };
      await retry(() => this.deps.kv.put(keys.version(model, version), encode(record)));
      await this.publish({ type: 'version.published', model, version, sha256: record.sha256, sizeBytes: record.sizeBytes });
      await this.serveLatest(model, version);
      this.deps.log.info('version published', { model, version, sha256: record.sha256, sizeBytes: record.sizeBytes });
      return record;
    } finally {
      await upload.remove();
    }
  }

  /** Routes all traffic to `version` unless a newer version already has it (concurrent pushes). */
  private async serveLatest(model: string, version: number): Promise<void> {
    let changed = false;
    const m = await this.update<ModelRecord>(keys.model(model), (cur) => {
      const newest = Math.max(0, ...cur.traffic.map((t) => t.version));
      changed = version > newest;
      return changed ? { ...cur, traffic: [{ version, weight: 100 }] } : cur;
    });
    if (changed) await this.publish({ type: 'traffic.changed', model, traffic: m.traffic });
  }

  /** Puts the artifact in the object store under its sha256, unless the same bytes are there. */
  private async storeArtifact(sha256: string, file: string): Promise<void> {
    const existing = await retry(() => this.deps.artifacts.info(sha256));
    if (existing && !existing.deleted) return;
    await retry(() => this.deps.artifacts.put({ name: sha256 }, Readable.toWeb(fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) as ReadableStream<Uint8Array>));
  }

  /** Every version of a model, oldest first. */
  async listVersions(model: string): Promise<VersionRecord[]> {
    await this.getModel(model);
    const versions: number[] = [];
    for await (const k of await this.deps.kv.keys(keys.versions(model))) versions.push(Number(k.split('.').pop()));
    const records = await Promise.all(versions.sort((a, b) => a - b).map((v) => this.read<VersionRecord>(keys.version(model, v))));
    return records.flatMap((r) => (r ? [r.value] : []));
  }

  /** One version (0: the latest); NOT_FOUND when missing. */
  async getVersion(model: string, version: number): Promise<VersionRecord> {
    const m = await this.getModel(model);
    const v = version === 0 ? m.latestVersion : version;
    const cur = v > 0 ? await this.read<VersionRecord>(keys.version(model, v)) : undefined;
    if (!cur) throw errors.versionNotFound(model, version === 0 ? 'latest' : version);
    return cur.value;
  }

  /** A version's record and a stream of its artifact's bytes. */
  async openArtifact(model: string, version: number): Promise<{ record: VersionRecord; data: ReadableStream<Uint8Array> }> {
    const record = await this.getVersion(model, version);
    const obj = await retry(() => this.deps.artifacts.get(record.sha256));
    if (!obj) throw new MeshError(ErrorCode.Internal, `artifact ${record.sha256} of ${model} v${record.version} is missing from the store`);
    return { record, data: obj.data };
  }
}
