// The `infermesh` command: a thin layer over client/, plus `up` (the local mesh behind npm start).
// This is the CLI's entry point, so it is the one place that reads its environment variables.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { InferenceApi, RegistryApi, InfermeshError, type ApiKey, type ConnectOptions, type ModelUpdate } from '../client/index';
import { formatResult, parseRequest } from './io';
import { up } from './up';
import { rolloutCommand, ROLLOUT_USAGE } from './rollout';
import { ROOT } from './local-mesh/service-process';

const USAGE = `infermesh: ONNX models as a service

Usage:
  infermesh up [--pods N] [--data-dir DIR] [--verbose]     run a local mesh (router on 127.0.0.1:8001)
              [--secure]                                  with TLS everywhere and tokens (a CA and an admin token in DIR)
  infermesh push <model> <file.onnx> [--sha256 HEX]        push a new version to the registry
  infermesh models                                         list models, traffic, and each version's state on the pods (and why)
  infermesh versions <model>                               list a model's versions
  infermesh update <model> [--description TEXT] [--label K=V]... [--batching on|off]
                   [--max-batch-size N] [--max-queue-delay-us N] [--warmup FILE]
                                                           change a model's description, labels (K= removes K),
                                                           dynamic batching config or warm-up samples (FILE: a
                                                           JSON list [{"name","count","inputs":[{"name","dims",
                                                           "raw_data": base64, absent for zeros}]}]; [] clears)
  infermesh archive <model> <version>                      archive a version (never served again)
  infermesh delete <model> <version>                       delete a version (and its artifact unless shared)
  infermesh events [--from SEQ] [--model M] [--new]        print registry events as JSON lines, from stream
                                                           sequence SEQ (default: the oldest kept), until Ctrl-C
${ROLLOUT_USAGE}
  infermesh infer <model> (--input FILE|- | --data JSON | --digit D) [--version N] [--output NAME]...
                                                           run an inference through the router
  infermesh keys create --name NAME --grant GRANT...       create an API key (needs admin); prints its token,
                                                           shown this once. GRANT: SCOPE or SCOPE:MODEL-PATTERN,
                                                           SCOPE one of infer, read, push, rollout, delete, admin
                                                           (e.g. --grant infer:mnist* --grant read)
  infermesh keys list                                      list keys (never their secrets)
  infermesh keys revoke <id>                               revoke a key: refused everywhere from then on

Addresses: --registry HOST:PORT (default $INFERMESH_REGISTRY_URL or 127.0.0.1:8003),
           --router HOST:PORT (default $INFERMESH_ROUTER_URL or 127.0.0.1:8001).
Security:  --token TOKEN (default $INFERMESH_TOKEN): sent as authorization: Bearer TOKEN on every call;
           --ca FILE (default $INFERMESH_CA): connect with TLS, verifying the servers against this CA (PEM);
           without --ca a token to an address off this machine goes over TLS verified by the system's
           roots, unless --plaintext says the mesh's ports have no TLS.
Inference JSON follows the Open Inference Protocol's JSON form:
  {"inputs":[{"name":"input","datatype":"FP32","shape":[1,784],"data":[...]}],"outputs":[{"name":"probabilities"}]}`;

const env = process.env;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      registry: { type: 'string', default: env.INFERMESH_REGISTRY_URL || '127.0.0.1:8003' },
      router: { type: 'string', default: env.INFERMESH_ROUTER_URL || '127.0.0.1:8001' },
      sha256: { type: 'string' },
      input: { type: 'string' },
      data: { type: 'string' },
      digit: { type: 'string' },
      version: { type: 'string' },
      output: { type: 'string', multiple: true },
      timeout: { type: 'string', default: '30000' },
      pods: { type: 'string', default: '2' },
      secure: { type: 'boolean', default: false },
      from: { type: 'string' },
      model: { type: 'string' },
      new: { type: 'boolean', default: false },
      description: { type: 'string' },
      label: { type: 'string', multiple: true },
      batching: { type: 'string' },
      'max-batch-size': { type: 'string' },
      'max-queue-delay-us': { type: 'string' },
      warmup: { type: 'string' },
      'data-dir': { type: 'string', default: path.join(ROOT, '.infermesh') },
      weight: { type: 'string' },
      steps: { type: 'string' },
      auto: { type: 'boolean', default: false },
      reason: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      token: { type: 'string', default: env.INFERMESH_TOKEN || undefined },
      ca: { type: 'string', default: env.INFERMESH_CA || undefined },
      plaintext: { type: 'boolean', default: false },
      name: { type: 'string' },
      grant: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command, ...args] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return command || values.help ? 0 : 2;
  }
  const connect = connectOptions(values);
  switch (command) {
    case 'up':
      await up({
        dataDir: path.resolve(values['data-dir']),
        natsUrl: env.INFERMESH_NATS_URL || env.NATS_URL || undefined,
        routerPort: Number(env.INFERMESH_ROUTER_PORT || 8001),
        registryPort: Number(env.INFERMESH_REGISTRY_PORT || 8003),
        pods: Number(values.pods),
        secure: values.secure,
        verbose: values.verbose,
      });
      return -1; // keeps running until a signal
    case 'push': {
      const [model, file] = args;
      if (!model || !file) throw new UsageError('push needs <model> <file.onnx>');
      const registry = new RegistryApi(values.registry, connect);
      try {
        const v = await registry.push(model, file, { expectedSha256: values.sha256 });
        console.log(JSON.stringify({ model: v.model, version: v.version, sha256: v.sha256, size_bytes: Number(v.size_bytes), inputs: v.inputs, outputs: v.outputs }, null, 2));
      } finally {
        registry.close();
      }
      return 0;
    }
    case 'models': {
      const registry = new RegistryApi(values.registry, connect);
      const router = new InferenceApi(values.router, connect);
      try {
        const models = await registry.models();
        // What the pods report through the router: each version's state and reason (a failed load
        // and its back-off, a failed warm-up). Without a router the registry's view still prints.
        const serving = await router.repositoryIndex({ timeoutMs: 3_000 }).catch((err: unknown) => {
          console.error(`infermesh: the router at ${values.router} did not answer (${err instanceof Error ? err.message : String(err)}); pod states are left out`);
          return undefined;
        });
        console.log(JSON.stringify(models.map((m) => ({
          name: m.name, latest_version: m.latest_version, traffic: m.traffic, created_at: m.created_at,
          ...(serving && { pods: serving.filter((s) => s.name === m.name).map((s) => ({ version: Number(s.version), state: s.state, ...(s.reason && { reason: s.reason }) })) }),
        })), null, 2));
      } finally {
        registry.close();
        router.close();
      }
      return 0;
    }
    case 'versions': {
      const [model] = args;
      if (!model) throw new UsageError('versions needs <model>');
      const registry = new RegistryApi(values.registry, connect);
      try {
        const versions = await registry.versions(model);
        console.log(JSON.stringify(versions.map((v) => ({ version: v.version, sha256: v.sha256, size_bytes: Number(v.size_bytes), state: v.state, created_at: v.created_at })), null, 2));
      } finally {
        registry.close();
      }
      return 0;
    }
    case 'update': {
      const [model] = args;
      if (!model) throw new UsageError('update needs <model>');
      const registry = new RegistryApi(values.registry, connect);
      try {
        const m = await updateModel(registry, model, values);
        console.log(JSON.stringify({ name: m.name, description: m.description, labels: m.labels, config: m.config, revision: Number(m.revision) }, null, 2));
      } finally {
        registry.close();
      }
      return 0;
    }
    case 'archive':
    case 'delete': {
      const [model, version] = args;
      const n = Number(version);
      if (!model || !Number.isInteger(n) || n < 1) throw new UsageError(`${command} needs <model> <version>`);
      const registry = new RegistryApi(values.registry, connect);
      try {
        if (command === 'archive') {
          const v = await registry.archiveVersion(model, n);
          console.log(JSON.stringify({ model: v.model, version: v.version, state: v.state }, null, 2));
        } else {
          const d = await registry.deleteVersion(model, n);
          console.log(JSON.stringify({ model: d.version.model, version: d.version.version, sha256: d.version.sha256, artifact_deleted: d.artifactDeleted }, null, 2));
        }
      } finally {
        registry.close();
      }
      return 0;
    }
    case 'events': {
      const from = values.from === undefined ? 0 : Number(values.from);
      if (!Number.isInteger(from) || from < 0) throw new UsageError('--from takes a stream sequence (0 or more)');
      const registry = new RegistryApi(values.registry, connect);
      const watch = registry.watchEvents({ fromSequence: from, onlyNew: values.new, model: values.model });
      const stop = () => watch.cancel();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        for await (const { sequence, event } of watch) console.log(JSON.stringify({ sequence, ...event }));
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        registry.close();
      }
      return 0;
    }
    case 'rollout': {
      const status = await rolloutCommand(args, { registry: values.registry, connect, weight: values.weight, steps: values.steps, auto: values.auto, reason: values.reason });
      console.log(JSON.stringify(status, null, 2));
      return 0;
    }
    case 'infer': {
      const [model] = args;
      if (!model) throw new UsageError('infer needs <model>');
      const request = readRequest(values);
      const api = new InferenceApi(values.router, connect);
      try {
        const res = await api.infer(model, request.inputs, {
          version: values.version,
          outputs: values.output ?? request.outputs,
          id: request.id,
          timeoutMs: Number(values.timeout),
        });
        console.log(formatResult(res));
      } finally {
        api.close();
      }
      return 0;
    }
    case 'keys':
      await keysCommand(args, values, connect);
      return 0;
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

class UsageError extends Error {}

/** --token / INFERMESH_TOKEN and --ca / INFERMESH_CA → how the client connects. */
function connectOptions(values: { token?: string; ca?: string; plaintext?: boolean }): ConnectOptions {
  let ca: Buffer | undefined;
  if (values.ca) {
    try {
      ca = fs.readFileSync(values.ca);
    } catch (err) {
      throw new UsageError(`--ca: cannot read ${values.ca}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const token = values.token?.trim();
  return { ...(token && { token }), ...(ca && { ca }), ...(values.plaintext && { plaintext: true }) };
}

/** `infermesh keys create|list|revoke`. */
async function keysCommand(args: string[], values: { registry: string; name?: string; grant?: string[] }, connect: ConnectOptions): Promise<void> {
  const [action, id] = args;
  const registry = new RegistryApi(values.registry, connect);
  const shown = (k: ApiKey) => ({ id: k.id, name: k.name, grants: k.grants, created_at: k.created_at, created_by: k.created_by, ...(k.revoked_at && { revoked_at: k.revoked_at }) });
  try {
    switch (action) {
      case 'create': {
        if (!values.name || !values.grant?.length) throw new UsageError('keys create needs --name NAME and at least one --grant GRANT');
        const { token, key } = await registry.createKey(values.name, values.grant);
        console.log(JSON.stringify({ token, ...shown(key) }, null, 2));
        console.error('infermesh: keep the token now: it is shown only this once');
        return;
      }
      case 'list':
        console.log(JSON.stringify((await registry.keys()).map(shown), null, 2));
        return;
      case 'revoke':
        if (!id) throw new UsageError('keys revoke needs <id>');
        console.log(JSON.stringify(shown(await registry.revokeKey(id)), null, 2));
        return;
      default:
        throw new UsageError('keys needs create, list or revoke');
    }
  } finally {
    registry.close();
  }
}

/**
 * `infermesh update`: merges the flags into the model's current labels and batching config and
 * writes them with a compare-and-set on the revision read, so a concurrent change is not lost.
 */
async function updateModel(registry: RegistryApi, model: string, values: {
  description?: string; label?: string[]; batching?: string; 'max-batch-size'?: string; 'max-queue-delay-us'?: string; warmup?: string;
}): Promise<Awaited<ReturnType<RegistryApi['model']>>> {
  const current = await registry.model(model);
  const update: ModelUpdate = {};
  if (values.description !== undefined) update.description = values.description;
  if (values.label?.length) {
    const labels = { ...current.labels };
    for (const kv of values.label) {
      const eq = kv.indexOf('=');
      if (eq < 1) throw new UsageError(`--label takes KEY=VALUE (KEY= removes KEY), not '${kv}'`);
      const [k, v] = [kv.slice(0, eq), kv.slice(eq + 1)];
      if (v) labels[k] = v;
      else delete labels[k];
    }
    update.labels = labels;
  }
  const batching: NonNullable<NonNullable<ModelUpdate['config']>['dynamic_batching']> = { ...(current.config?.dynamic_batching ?? {}) };
  let batchingChanged = false;
  const natural = (flag: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${flag} takes a whole number`);
    batchingChanged = true;
    return n;
  };
  if (values.batching !== undefined) {
    if (values.batching !== 'on' && values.batching !== 'off') throw new UsageError('--batching takes on or off');
    batching.enabled = values.batching === 'on';
    batchingChanged = true;
  }
  if (values['max-batch-size'] !== undefined) batching.max_batch_size = natural('max-batch-size', values['max-batch-size']);
  if (values['max-queue-delay-us'] !== undefined) batching.max_queue_delay_us = natural('max-queue-delay-us', values['max-queue-delay-us']);
  if (batchingChanged) update.config = { ...current.config, dynamic_batching: batching };
  if (values.warmup !== undefined) update.config = { ...current.config, ...update.config, warmup: readWarmup(values.warmup) };
  if (Object.keys(update).length === 0) throw new UsageError('update needs --description, --label, --batching, --max-batch-size, --max-queue-delay-us or --warmup');
  return registry.updateModel(model, update, { expectedRevision: current.revision });
}

/** `--warmup FILE`: warm-up samples in the registry's JSON form, raw_data in base64 (absent: zeros). */
function readWarmup(file: string): NonNullable<NonNullable<ModelUpdate['config']>['warmup']> {
  let samples: unknown;
  try {
    samples = JSON.parse(fs.readFileSync(file === '-' ? 0 : file, 'utf8'));
  } catch (err) {
    throw new UsageError(`--warmup: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!Array.isArray(samples)) throw new UsageError('--warmup takes a JSON list of samples ([] clears them)');
  return samples.map((s: { name?: string; count?: number; inputs?: { name?: string; dims?: number[]; raw_data?: string }[] }) => ({
    name: s.name ?? '',
    count: s.count ?? 0,
    inputs: (s.inputs ?? []).map((i) => ({ name: i.name ?? '', dims: i.dims ?? [], raw_data: Buffer.from(i.raw_data ?? '', 'base64') })),
  }));
}

function readRequest(values: { input?: string; data?: string; digit?: string }): ReturnType<typeof parseRequest> {
  if (values.digit !== undefined) return digitRequest(Number(values.digit));
  if (values.data) return parseRequest(values.data);
  if (values.input) return parseRequest(fs.readFileSync(values.input === '-' ? 0 : values.input, 'utf8'));
  throw new UsageError('infer needs --input FILE (or - for stdin), --data JSON or --digit D');
}

/** A request with a real held-out MNIST image of digit `d` (for the demo model). */
function digitRequest(d: number): ReturnType<typeof parseRequest> {
  if (!Number.isInteger(d) || d < 0 || d > 9) throw new UsageError('--digit takes 0..9');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { heldOutDigits } = require('../tools/models/mnist-data') as typeof import('../tools/models/mnist-data');
  const digit = heldOutDigits(200).find((x) => x.label === d);
  if (!digit) throw new Error(`no held-out image of ${d}`);
  console.error(`infermesh: sending a held-out MNIST image of the digit ${d}`);
  return { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: digit.pixels }], outputs: [], id: `digit-${d}` };
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      console.error(`infermesh: ${err.message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else if (err instanceof InfermeshError) {
      console.error(`infermesh: ${err.code} (gRPC ${err.grpcCode}): ${err.message}`);
      process.exitCode = 1;
    } else {
      console.error(`infermesh: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    }
  },
);
