// The `infermesh` command: a thin layer over client/, plus `up` (the local mesh behind npm start).
// This is the CLI's entry point, so it is the one place that reads its environment variables.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { InferenceApi, RegistryApi, RolloutApi, InfermeshError, type ApiKey, type ConnectOptions, type ModelUpdate, type RolloutStatus } from '../client/index';
import { formatResult, parseRequest } from './io';
import { rolloutCommand, ROLLOUT_USAGE } from './rollout';
import { ROOT } from './local-mesh/service-process';
import { keysView, modelsView, podsView, rolloutView, versionsView, eventLine } from './views';
import { DEFAULT_TOP, formatAnswer } from './answer';
import { PushProgress } from './progress';
import { formatBytes } from './format';
import { hintFor } from './hints';
import { escapeControls, jsonForTerminal } from '../lib/text';
import type { TableOptions } from './table';

const USAGE = `infermesh: ONNX models as a service

Usage:
  infermesh up [--pods N] [--data-dir DIR] [--verbose]     run a local mesh (router on 127.0.0.1:8001)
              [--secure]                                  with TLS everywhere and tokens (a CA and an admin token in DIR)
  infermesh push <model> <file.onnx> [--sha256 HEX] [--json]
                                                           push a new version to the registry (progress on a terminal)
  infermesh models [--json]                                list models, traffic, rollouts, and each version's state on
                                                           the pods (and why)
  infermesh versions <model> [--json]                      list a model's versions: state, size, sha256, signature
  infermesh pods [--json]                                  list the inference pods: address, state, provider, versions held, requests in flight
  infermesh update <model> [--description TEXT] [--label K=V]... [--batching on|off]
                   [--max-batch-size N] [--max-queue-delay-us N] [--warmup FILE]
                                                           change a model's description, labels (K= removes K),
                                                           dynamic batching config or warm-up samples (FILE: a
                                                           JSON list [{"name","count","inputs":[{"name","dims",
                                                           "raw_data": base64, absent for zeros}]}]; [] clears)
  infermesh archive <model> <version>                      archive a version (never served again)
  infermesh delete <model> <version>                       delete a version (and its artifact unless shared)
  infermesh events [--from SEQ] [--model M] [--new] [--json]
                                                           print registry events one a line (--json: JSON lines),
                                                           from stream sequence SEQ (default: the oldest kept),
                                                           until Ctrl-C
${ROLLOUT_USAGE}
  infermesh infer <model> (--input FILE|- | --data JSON | --digit D) [--version N] [--output NAME]...
                  [--top K] [--json]                       run an inference through the router; prints the answer
                                                           (a classifier's top K classes, default ${DEFAULT_TOP}), or with
                                                           --json the whole response
  infermesh keys create --name NAME --grant GRANT...       create an API key (needs admin); prints its token,
                                                           shown this once. GRANT: SCOPE or SCOPE:MODEL-PATTERN,
                                                           SCOPE one of infer, read, push, rollout, delete, admin
                                                           (e.g. --grant infer:mnist* --grant read)
  infermesh keys list [--json]                             list keys (never their secrets)
  infermesh keys revoke <id>                               revoke a key: refused everywhere from then on

Output:    tables and lines for people; --json prints JSON for scripts (every listing command, rollout,
           infer, push). Colours only on a terminal, and never with NO_COLOR set.
Addresses: --registry HOST:PORT (default $INFERMESH_REGISTRY_URL or 127.0.0.1:8003),
           --router HOST:PORT (default $INFERMESH_ROUTER_URL or 127.0.0.1:8001).
Security:  --token TOKEN (default $INFERMESH_TOKEN): sent as authorization: Bearer TOKEN on every call;
           --ca FILE (default $INFERMESH_CA): connect with TLS, verifying the servers against this CA (PEM);
           without --ca a token to an address off this machine goes over TLS verified by the system's
           roots, unless --plaintext says the mesh's ports have no TLS.
Inference JSON follows the Open Inference Protocol's JSON form:
  {"inputs":[{"name":"input","datatype":"FP32","shape":[1,784],"data":[...]}],"outputs":[{"name":"probabilities"}]}`;

const env = process.env;

function parse(argv: string[]) {
  return parseArgs({
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
      json: { type: 'boolean', default: false },
      top: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  const [command, ...args] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return command || values.help ? 0 : 2;
  }
  const connect = connectOptions(values);
  try {
    return await run(command, args, values, connect);
  } catch (err) {
    if (!(err instanceof InfermeshError)) throw err;
    // The message is the server's, and may quote what a caller stored or sent: shown escaped.
    console.error(escapeControls(`infermesh: ${err.code} (gRPC ${err.grpcCode}): ${err.message}`));
    const hint = hintFor(err, { command, args, registry: values.registry, router: values.router, token: connect.token !== undefined, timeoutMs: Number(values.timeout) });
    if (hint) console.error(escapeControls(`hint: ${hint}`));
    return 1;
  }
}

type Values = ReturnType<typeof parse>['values'];

/** Runs one command; resolves to its exit code (-1: keeps running). */
async function run(command: string, args: string[], values: Values, connect: ConnectOptions): Promise<number> {
  // Colour for people at a terminal, never in a pipe (nor with NO_COLOR: no-color.org).
  const view: TableOptions = { color: Boolean(process.stdout.isTTY) && !env.NO_COLOR };
  switch (command) {
    case 'up': {
      // Loaded only here: the local mesh's modules (PKI, NATS set-up) would slow every other command.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { up } = require('./up') as typeof import('./up');
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
    }
    case 'push': {
      const [model, file] = args;
      if (!model || !file) throw new UsageError('push needs <model> <file.onnx>');
      const registry = new RegistryApi(values.registry, connect);
      // Progress only where someone watches it: a terminal. Piped, stderr gets none of it.
      const progress = process.stderr.isTTY ? new PushProgress(process.stderr) : undefined;
      try {
        const v = await registry.push(model, file, { expectedSha256: values.sha256, ...(progress && { onProgress: (sent, total) => progress.update(sent, total) }) })
          .then((pushed) => (progress?.finish(true), pushed), (err: unknown) => {
            progress?.finish(false);
            throw err;
          });
        if (values.json) {
          console.log(jsonForTerminal({ model: v.model, version: v.version, sha256: v.sha256, size_bytes: Number(v.size_bytes), inputs: v.inputs, outputs: v.outputs }, 2));
        } else {
          console.log(escapeControls(`pushed ${v.model} version ${v.version} (${formatBytes(Number(v.size_bytes))}, sha256 ${v.sha256.slice(0, 12)}…)`));
          // Only a model's first version serves at once; say how a later one gets traffic.
          const serving = await registry.model(v.model).then((m) => m.traffic.some((t) => t.version === v.version), () => true);
          if (!serving) console.log(escapeControls(`not serving yet: start a canary with \`infermesh rollout start ${v.model} ${v.version} --weight 10\``));
        }
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
          console.error(escapeControls(`infermesh: the router at ${values.router} did not answer (${err instanceof Error ? err.message : String(err)}); pod states are left out`));
          return undefined;
        });
        if (values.json) {
          console.log(jsonForTerminal(models.map((m) => ({
            name: m.name, latest_version: m.latest_version, traffic: m.traffic, created_at: m.created_at,
            ...(serving && { pods: serving.filter((s) => s.name === m.name).map((s) => ({ version: Number(s.version), state: s.state, ...(s.reason && { reason: s.reason }) })) }),
          })), 2));
        } else {
          console.log(modelsView(models, serving, await rolloutsOf(values.registry, connect, models.map((m) => m.name)), view));
        }
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
        if (!values.json) console.log(versionsView(versions, view));
        else console.log(jsonForTerminal(versions.map((v) => ({ version: v.version, sha256: v.sha256, size_bytes: Number(v.size_bytes), state: v.state, created_at: v.created_at })), 2));
      } finally {
        registry.close();
      }
      return 0;
    }
    case 'pods': {
      const registry = new RegistryApi(values.registry, connect);
      try {
        const pods = await registry.pods();
        console.log(values.json ? jsonForTerminal(pods, 2) : podsView(pods, view));
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
        console.log(jsonForTerminal({ name: m.name, description: m.description, labels: m.labels, config: m.config, revision: Number(m.revision) }, 2));
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
          console.log(jsonForTerminal({ model: v.model, version: v.version, state: v.state }, 2));
        } else {
          const d = await registry.deleteVersion(model, n);
          console.log(jsonForTerminal({ model: d.version.model, version: d.version.version, sha256: d.version.sha256, artifact_deleted: d.artifactDeleted }, 2));
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
        for await (const { sequence, event } of watch) console.log(values.json ? jsonForTerminal({ sequence, ...event }) : eventLine(sequence, event, view));
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        registry.close();
      }
      return 0;
    }
    case 'rollout': {
      const status = await rolloutCommand(args, { registry: values.registry, connect, weight: values.weight, steps: values.steps, auto: values.auto, reason: values.reason });
      console.log(values.json ? jsonForTerminal(status, 2) : rolloutView(status, view));
      return 0;
    }
    case 'infer': {
      const [model] = args;
      if (!model) throw new UsageError('infer needs <model>');
      const top = values.top === undefined ? DEFAULT_TOP : Number(values.top);
      if (!Number.isInteger(top) || top < 1) throw new UsageError('--top takes a whole number, 1 or more');
      const request = readRequest(values);
      const api = new InferenceApi(values.router, connect);
      try {
        const res = await api.infer(model, request.inputs, {
          version: values.version,
          outputs: values.output ?? request.outputs,
          id: request.id,
          timeoutMs: Number(values.timeout),
        });
        console.log(values.json ? formatResult(res) : formatAnswer(res, { ...view, top }));
      } finally {
        api.close();
      }
      return 0;
    }
    case 'keys':
      await keysCommand(args, values, connect, view);
      return 0;
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

class UsageError extends Error {}

/** Each model's rollout status, for the models table; undefined where it could not be read. */
async function rolloutsOf(registry: string, connect: ConnectOptions, models: string[]): Promise<Map<string, RolloutStatus | undefined>> {
  const api = new RolloutApi(registry, connect);
  try {
    return new Map(await Promise.all(models.map(async (m) => [m, await api.status(m).catch(() => undefined)] as const)));
  } finally {
    api.close();
  }
}

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
async function keysCommand(args: string[], values: { registry: string; name?: string; grant?: string[]; json: boolean }, connect: ConnectOptions, view: TableOptions): Promise<void> {
  const [action, id] = args;
  const registry = new RegistryApi(values.registry, connect);
  const shown = (k: ApiKey) => ({ id: k.id, name: k.name, grants: k.grants, created_at: k.created_at, created_by: k.created_by, ...(k.revoked_at && { revoked_at: k.revoked_at }) });
  try {
    switch (action) {
      case 'create': {
        if (!values.name || !values.grant?.length) throw new UsageError('keys create needs --name NAME and at least one --grant GRANT');
        const { token, key } = await registry.createKey(values.name, values.grant);
        console.log(jsonForTerminal({ token, ...shown(key) }, 2));
        console.error('infermesh: keep the token now: it is shown only this once');
        return;
      }
      case 'list': {
        const keys = await registry.keys();
        console.log(values.json ? jsonForTerminal(keys.map(shown), 2) : keysView(keys, view));
        return;
      }
      case 'revoke':
        if (!id) throw new UsageError('keys revoke needs <id>');
        console.log(jsonForTerminal(shown(await registry.revokeKey(id)), 2));
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

// A reader that stops early (`infermesh events | head`) closes the pipe: that ends the command, quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? 0);
});

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      console.error(`infermesh: ${escapeControls(err.message)}\n\n${USAGE}`);
      process.exitCode = 2;
    } else {
      console.error(escapeControls(`infermesh: ${err instanceof Error ? err.message : String(err)}`));
      process.exitCode = 1;
    }
  },
);
