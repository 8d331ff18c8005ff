// infermesh.registry.v1 handlers: decode, call the Registry, encode. No logic of their own.
import type * as grpc from '@grpc/grpc-js';
import { errors } from '../../lib/errors';
import { clientStreamHandler, serverStreamHandler, unaryHandler, writeWithBackpressure } from '../../lib/grpc/handlers';
import type { Logger } from '../../lib/log';
import type { Model, PushVersionRequestOut, RegistryHandlers, ServingConfigOut, Version } from '../../lib/grpc/types';
import type { Registry } from './registry';
import type { ModelRecord, ServingConfig, VersionRecord } from './records';

/** ModelRecord → protocol Model. */
export function modelToProto(m: ModelRecord): Model {
  const b = m.config.dynamicBatching;
  return {
    name: m.name,
    description: m.description,
    labels: m.labels,
    config: b ? {
      dynamic_batching: {
        enabled: b.enabled ?? false,
        max_batch_size: b.maxBatchSize ?? 0,
        max_queue_delay_us: b.maxQueueDelayUs ?? 0,
        preferred_batch_sizes: b.preferredBatchSizes ?? [],
        max_queue_size: b.maxQueueSize ?? 0,
      },
    } : {},
    latest_version: m.latestVersion,
    traffic: m.traffic,
    created_at: m.createdAt,
  };
}

/** VersionRecord → protocol Version. */
export function versionToProto(v: VersionRecord): Version {
  return {
    model: v.model,
    version: v.version,
    sha256: v.sha256,
    size_bytes: String(v.sizeBytes),
    created_at: v.createdAt,
    inputs: v.inputs,
    outputs: v.outputs,
    state: v.state === 'ARCHIVED' ? 'VERSION_STATE_ARCHIVED' : 'VERSION_STATE_AVAILABLE',
  };
}

function configFromProto(c: ServingConfigOut | null): ServingConfig {
  const b = c?.dynamic_batching;
  if (!b) return {};
  return {
    dynamicBatching: {
      enabled: b.enabled,
      maxBatchSize: b.max_batch_size || undefined,
      maxQueueDelayUs: Number(b.max_queue_delay_us) || undefined,
      preferredBatchSizes: b.preferred_batch_sizes.length ? b.preferred_batch_sizes : undefined,
      maxQueueSize: b.max_queue_size || undefined,
    },
  };
}

/** The chunks of a push stream after its header; rejects anything out of order. */
async function* pushChunks(it: AsyncIterator<PushVersionRequestOut>): AsyncGenerator<Uint8Array> {
  for (let r = await it.next(); !r.done; r = await it.next()) {
    if (r.value.content !== 'chunk' || !r.value.chunk) throw errors.invalidArgument('push stream: only the first message may be a header');
    yield r.value.chunk;
  }
}

/** The registry's gRPC handlers over `registry`. */
export function registryHandlers(registry: Registry, log: Logger): RegistryHandlers {
  return {
    CreateModel: unaryHandler(log, async (call) => {
      const r = call.request;
      return modelToProto(await registry.createModel({ name: r.name, description: r.description, labels: r.labels, config: configFromProto(r.config) }));
    }),
    GetModel: unaryHandler(log, async (call) => modelToProto(await registry.getModel(call.request.name))),
    ListModels: unaryHandler(log, async () => ({ models: (await registry.listModels()).map(modelToProto) })),
    PushVersion: clientStreamHandler(log, async (call: grpc.ServerReadableStream<PushVersionRequestOut, Version>) => {
      const it = (call as AsyncIterable<PushVersionRequestOut>)[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.done || first.value.content !== 'header' || !first.value.header) {
        throw errors.invalidArgument('push stream must start with a header naming the model');
      }
      const h = first.value.header;
      return versionToProto(await registry.pushVersion(h.model, pushChunks(it), h.expected_sha256));
    }),
    ListVersions: unaryHandler(log, async (call) => ({ versions: (await registry.listVersions(call.request.model)).map(versionToProto) })),
    GetVersion: unaryHandler(log, async (call) => versionToProto(await registry.getVersion(call.request.model, call.request.version))),
    PullArtifact: serverStreamHandler(log, async (call) => {
      const { data } = await registry.openArtifact(call.request.model, call.request.version);
      const reader = data.getReader();
      try {
        for (let r = await reader.read(); !r.done; r = await reader.read()) {
          if (call.cancelled) return;
          await writeWithBackpressure(call, { data: Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength) });
        }
      } finally {
        await reader.cancel().catch(() => undefined);
      }
    }),
  };
}
