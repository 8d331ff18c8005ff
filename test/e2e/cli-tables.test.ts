// The built CLI (dist/cli/main.js) for people and for scripts, against a real mesh (nats-server,
// registry, a pod and a router): `push`, `models`, `versions`, `rollout status`, `events` and
// `keys list` print aligned tables or lines by default and, with --json, the JSON shapes scripts
// read; `infer --digit 7` on mnist says 7 first; failed calls end with a hint saying what to do;
// and nothing a tenant stored or a server said reaches the terminal as a control sequence.
import { execFile, spawn } from 'node:child_process';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { InferenceApi } from '../../client/index';
import { encodeEvent, newEvent, subjects } from '../../lib/events';
import { encodeModel, ElemType, node, tensor } from '../../tools/models/onnx-builder';
import { newApiKey } from '../../lib/auth/api-keys';
import { startTestMesh, type TestMesh } from '../helpers/mesh';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { bootstrapAuthEnv, startTestRegistry, startTestRouter } from '../helpers/services';
import { modelPath } from '../helpers/models';
import { waitFor } from '../helpers/wait';
import type { RegistryService } from '../../services/registry/registry-service';
import type { RouterService } from '../../services/router/router-service';

jest.setTimeout(60_000);

const cli = path.resolve(__dirname, '../../dist/cli/main.js');
const run = promisify(execFile);
const TIME = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/;
/** What a terminal acts on instead of showing: C0 but the line feed, DEL, C1, bidi controls. */
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
/** OSC 52: write "rm -rf ~" to the clipboard; then clear the screen. */
const OSC52 = '\x1b]52;c;cm0gLXJmIH4=\x07';
const CLEAR = '\x1b[2J\x1b[H';

/** Runs `infermesh events` against `registry` until `count` lines came, then stops it as Ctrl-C does. */
function eventLines(registry: number, count: number, flags: string[], env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  return new Promise<string[]>((resolve, reject) => {
    const child = spawn(process.execPath, [cli, 'events', ...flags, '--registry', `127.0.0.1:${registry}`], { stdio: ['ignore', 'pipe', 'inherit'], env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.split('\n').length > count) child.kill('SIGINT');
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out.trimEnd().split('\n')) : reject(new Error(`events exited with ${code}: ${out}`))));
  });
}

/**
 * A table's rows as records by header, checking it is a table: every row has one cell per column,
 * cells (text with single spaces inside) start where their header starts, or end where it ends for
 * the right-aligned columns named, and no line ends in a space.
 */
function parseTable(text: string, rightAligned: string[] = []): Record<string, string>[] {
  const cells = (line: string) => [...line.matchAll(/\S+(?: \S+)*/g)].map((m) => ({ text: m[0], start: m.index, end: m.index + m[0].length }));
  const [header, ...rows] = text.split('\n');
  const columns = cells(header!);
  expect(columns.map((c) => c.text)).toEqual(columns.map((c) => c.text.toUpperCase()));
  return rows.map((row) => {
    expect(row).toBe(row.trimEnd());
    const found = cells(row);
    expect(found).toHaveLength(columns.length);
    return Object.fromEntries(columns.map((c, i) => {
      const cell = found[i]!;
      if (rightAligned.includes(c.text)) expect(cell.end).toBe(c.end);
      else expect(cell.start).toBe(c.start);
      return [c.text, cell.text];
    }));
  });
}

describe('the CLI\'s tables and --json, against a real mesh', () => {
  let mesh: TestMesh;
  let router: RouterService;
  let routerApi: InferenceApi;
  let podPort: number;
  const mnistSha256 = createHash('sha256').update(fs.readFileSync(modelPath('mnist.onnx'))).digest('hex');
  const infermesh = (...args: string[]) => run(process.execPath, [cli, ...args, '--registry', `127.0.0.1:${mesh.registry.port}`, '--router', `127.0.0.1:${router.port}`], { env: { ...process.env, INFERMESH_TOKEN: '' } });

  beforeAll(async () => {
    // Placement off: the event stream below is the registry's alone, in a known order.
    mesh = await startTestMesh({ INFERMESH_PLACEMENT: 'off' });
    podPort = (await mesh.startPod({ INFERMESH_LOAD_RETRY_BASE_MS: '200', INFERMESH_LOAD_RETRY_MAX_MS: '400', INFERMESH_POD_NAME: 'pod-tables' })).port;
    router = await startTestRouter(mesh.nats.url, mesh.registry.port);
    routerApi = new InferenceApi(`127.0.0.1:${router.port}`);
  });

  afterAll(async () => {
    routerApi?.close();
    await router?.shutdown(5_000);
    await mesh?.close();
  });

  it('push says what it pushed in a line, and with --json gives the version\'s JSON', async () => {
    const pushed = await infermesh('push', 'mnist', modelPath('mnist.onnx'));
    expect(pushed.stdout).toBe(`pushed mnist version 1 (407.6 kB, sha256 ${mnistSha256.slice(0, 12)}…)\n`);
    expect(pushed.stderr).toBe(''); // piped: no progress
    // The same bytes again as version 2: it answers as mnist does, whichever version serves.
    const json = JSON.parse((await infermesh('push', 'mnist', modelPath('mnist.onnx'), '--json')).stdout) as Record<string, unknown>;
    expect(json).toEqual({
      model: 'mnist', version: 2, sha256: mnistSha256, size_bytes: 407_622,
      inputs: [{ name: 'input', datatype: 'FP32', shape: ['-1', '784'] }],
      outputs: [{ name: 'logits', datatype: 'FP32', shape: ['-1', '10'] }, { name: 'probabilities', datatype: 'FP32', shape: ['-1', '10'] }],
    });
    const third = await infermesh('push', 'broken', modelPath('fixtures/load_fails.onnx'));
    expect(third.stdout).toMatch(/^pushed broken version 1 \(216 B, sha256 [0-9a-f]{12}…\)\n$/);
  });

  it('infer --digit 7 says 7 first, with its probability; --json prints the whole response', async () => {
    await waitFor('mnist ready through the router', () => routerApi.modelReady('mnist'));
    const { stdout } = await infermesh('infer', 'mnist', '--digit', '7');
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('mnist version 1, output probabilities: top 3 of 10 classes');
    expect(lines[1]).toMatch(/^7 {2}\d{2}\.\d%$/);
    expect(lines.slice(2, 4).every((l) => /^\d {2} *\d{1,2}\.\d%$/.test(l))).toBe(true);
    expect(lines[4]).toBe('(also logits FP32 [1,10]; --json shows every value)');

    const top5 = (await infermesh('infer', 'mnist', '--digit', '7', '--output', 'logits', '--top', '5')).stdout.trimEnd().split('\n');
    expect(top5[0]).toBe('mnist version 1, output logits (softmax applied): top 5 of 10 classes');
    expect(top5).toHaveLength(6);
    expect(top5[1]).toMatch(/^7 /);

    const json = JSON.parse((await infermesh('infer', 'mnist', '--digit', '7', '--json')).stdout) as { model_name: string; model_version: string; id: string; outputs: { name: string; datatype: string; shape: number[]; data: number[] }[] };
    expect(json).toMatchObject({ model_name: 'mnist', model_version: '1', id: 'digit-7' });
    expect(json.outputs.map((o) => [o.name, o.datatype, o.shape, o.data.length])).toEqual([['logits', 'FP32', [1, 10], 10], ['probabilities', 'FP32', [1, 10], 10]]);
    const p = json.outputs[1]!.data;
    expect(p.indexOf(Math.max(...p))).toBe(7);
  });

  it('rollout start and status print the rollout as a block with its history; --json the status', async () => {
    const started = (await infermesh('rollout', 'start', 'mnist', '2', '--weight', '10', '--steps', '10,50')).stdout;
    expect(started.split('\n').slice(0, 9)).toEqual([
      'Model:     mnist',
      'Traffic:   1:90% 2:10%',
      'Stable:    v1',
      'Canary:    v2',
      'Weight:    10%',
      'Phase:     progressing',
      'Step:      1 of 2 (10%, 50%, then promote)',
      'Analysis:  off (manual: weight, promote and rollback by hand)',
      'Reason:    canary of version 2 at 10%',
    ]);
    const status = (await infermesh('rollout', 'status', 'mnist')).stdout;
    expect(status).toBe(started);
    const [, history] = status.trimEnd().split('\n\nHistory:\n');
    const rows = parseTable(history!, ['WEIGHT']);
    expect(rows).toEqual([{ TIME: expect.stringMatching(TIME), ACTION: 'started', STABLE: 'v1', CANARY: 'v2', WEIGHT: '10%', REASON: 'canary of version 2 at 10%' }]);

    const json = JSON.parse((await infermesh('rollout', 'status', 'mnist', '--json')).stdout) as Record<string, unknown>;
    expect(json).toEqual({
      model: 'mnist',
      traffic: [{ version: 1, weight: 90 }, { version: 2, weight: 10 }],
      rollout: expect.objectContaining({ stable: 1, canary: 2, weight: 10, steps: [10, 50], phase: 'progressing', automatic: false }),
      history: [expect.objectContaining({ action: 'started', stable: 1, canary: 2, weight: 10, time: expect.any(String) })],
    });
  });

  it('models lists traffic, the rollout and the pods\' states, with the failed load\'s reason under it', async () => {
    await waitFor('mnist v1 and v2 ready, broken failed', async () => {
      const index = await routerApi.repositoryIndex();
      return index.filter((m) => m.name === 'mnist' && m.state === 'READY').length === 2 && index.some((m) => m.name === 'broken' && m.reason !== '');
    });
    const { stdout, stderr } = await infermesh('models');
    expect(stderr).toBe('');
    expect(stdout).not.toContain('\x1b');
    const [table, reasons] = stdout.trimEnd().split('\n\n');
    expect(parseTable(table!)).toEqual([
      { NAME: 'broken', LATEST: '1', TRAFFIC: '1:100%', ROLLOUT: '-', PODS: expect.stringMatching(/^v1 (LOADING|UNAVAILABLE)$/) },
      { NAME: 'mnist', LATEST: '2', TRAFFIC: '1:90% 2:10%', ROLLOUT: 'progressing 10%', PODS: 'v1 READY, v2 READY' },
    ]);
    expect(reasons).toMatch(/^broken v1 (LOADING|UNAVAILABLE): pod-[^:]+: .*failed \d+ times? in a row/);

    const json = JSON.parse((await infermesh('models', '--json')).stdout) as { name: string; latest_version: number; traffic: unknown; created_at: string; pods: { version: number; state: string; reason?: string }[] }[];
    expect(json.map((m) => Object.keys(m))).toEqual([['name', 'latest_version', 'traffic', 'created_at', 'pods'], ['name', 'latest_version', 'traffic', 'created_at', 'pods']]);
    expect(json[1]).toEqual({ name: 'mnist', latest_version: 2, traffic: [{ version: 1, weight: 90 }, { version: 2, weight: 10 }], created_at: expect.any(String), pods: [{ version: 1, state: 'READY' }, { version: 2, state: 'READY' }] });
    expect(json[0]!.pods[0]!.reason).toMatch(/failed \d+ times? in a row/);
  });

  it('versions lists state, size, sha256, created time and signature; --json the documented fields', async () => {
    const { stdout } = await infermesh('versions', 'mnist');
    const row = (v: string) => ({
      VERSION: v, STATE: 'AVAILABLE', SIZE: '407.6 kB', SHA256: mnistSha256.slice(0, 12), CREATED: expect.stringMatching(TIME),
      INPUTS: 'input:FP32[?,784]', OUTPUTS: 'logits:FP32[?,10] probabilities:FP32[?,10]',
    });
    expect(parseTable(stdout.trimEnd(), ['SIZE'])).toEqual([row('1'), row('2')]);

    const json = JSON.parse((await infermesh('versions', 'mnist', '--json')).stdout) as Record<string, unknown>[];
    expect(json).toEqual([1, 2].map((version) => ({ version, sha256: mnistSha256, size_bytes: 407_622, state: 'VERSION_STATE_AVAILABLE', created_at: expect.any(String) })));
  });

  it('pods lists each pod with its address, state, provider, versions and requests in flight; --json the ListPods answer', async () => {
    const { stdout } = await infermesh('pods');
    const [table] = stdout.trimEnd().split('\n\n');
    const rows = parseTable(table!, ['MEMORY', 'IN FLIGHT']);
    expect(rows).toEqual([{
      NAME: 'pod-tables', ADDRESS: `127.0.0.1:${podPort}`, STATE: 'serving', PROVIDER: 'cpu',
      VERSIONS: expect.stringMatching(/(^|, )mnist:1 READY [\d.]+ [kMG]?B(, |$)/), MEMORY: expect.stringMatching(/^[\d.]+ [kMG]?B \/ [\d.]+ [kMG]?B$/),
      'IN FLIGHT': expect.stringMatching(/^\d+$/), SEEN: expect.stringMatching(TIME),
    }]);
    const json = JSON.parse((await infermesh('pods', '--json')).stdout) as Record<string, unknown>[];
    expect(json).toEqual([expect.objectContaining({ name: 'pod-tables', address: `127.0.0.1:${podPort}`, state: 'serving', inflight: expect.any(Number), seen_at: expect.any(String) })]);
    expect((json[0]!.versions as Record<string, unknown>[])).toContainEqual({ model: 'mnist', version: 1, state: 'READY', provider: 'cpu', reason: '', memory_bytes: expect.stringMatching(/^[1-9]\d*$/) });
    // Its budget (the machine's memory less the headroom, no container limit here) and what its versions cost.
    expect(Number(json[0]!.memory_budget_bytes)).toBeGreaterThan(Number(json[0]!.memory_used_bytes));
    expect(Number(json[0]!.memory_used_bytes)).toBeGreaterThan(0);
    expect(Number(json[0]!.rss_bytes)).toBeGreaterThan(Number(json[0]!.memory_used_bytes));
  });

  it('events prints one readable line per event, and JSON lines with --json', async () => {
    const events = (count: number, ...flags: string[]) => eventLines(mesh.registry.port, count, flags);
    // model.created, version.published, traffic.changed, version.published (v2), broken's three, rollout.changed, traffic.changed
    const lines = await events(9, '--from', '1');
    expect(lines).toHaveLength(9);
    const line = /^#(\d+) +(\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ) {2}(\S+) +([a-z.]+) {2,}(.*?) {2}by anonymous$/;
    for (const l of lines) expect(l).toMatch(line);
    expect(lines[0]).toMatch(/^#1 +\S+ \S+ {2}mnist +model\.created {9}by anonymous$/);
    expect(lines[1]).toMatch(new RegExp(`^#2 .* mnist +version\\.published +v1 407\\.6 kB sha256 ${mnistSha256.slice(0, 12)} {2}by anonymous$`));
    expect(lines[2]).toMatch(/ traffic\.changed +1:100% {2}by anonymous$/);
    expect(lines[7]).toMatch(/ mnist +rollout\.changed +started: v1 -> v2 at 10% \(progressing\): canary of version 2 at 10% {2}by anonymous$/);
    expect(lines[8]).toMatch(/ traffic\.changed +1:90% 2:10% {2}by anonymous$/);

    const json = (await events(9, '--from', '1', '--json')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(json.map((e) => [e.sequence, e.type, e.model])).toEqual([
      [1, 'model.created', 'mnist'], [2, 'version.published', 'mnist'], [3, 'traffic.changed', 'mnist'], [4, 'version.published', 'mnist'],
      [5, 'model.created', 'broken'], [6, 'version.published', 'broken'], [7, 'traffic.changed', 'broken'],
      [8, 'rollout.changed', 'mnist'], [9, 'traffic.changed', 'mnist'],
    ]);
    expect(json[1]).toEqual({ sequence: 2, schema: 1, id: expect.any(String), time: expect.any(String), type: 'version.published', model: 'mnist', version: 1, sha256: mnistSha256, sizeBytes: 407_622, principal: 'anonymous' });
  });

  it('ends a failed call with a hint: what lists the models, or how to reach a mesh', async () => {
    const failed = (p: Promise<unknown>) => p.then(() => { throw new Error('expected the command to fail'); }, (e: { code: number; stderr: string }) => e);
    const unknown = await failed(infermesh('versions', 'nosuch'));
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe("infermesh: ModelNotFound (gRPC 5): model 'nosuch' not found\nhint: `infermesh models` lists the models\n");
    const noPod = await failed(infermesh('infer', 'broken', '--data', '{"inputs":[{"name":"INPUT0","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}'));
    expect(noPod.stderr).toMatch(/\nhint: `infermesh models` shows each version's state on the pods and why/);
    const nowhere = await failed(run(process.execPath, [cli, 'models', '--registry', '127.0.0.1:1']));
    expect(nowhere.stderr).toMatch(/ECONNREFUSED 127\.0\.0\.1:1.*\nhint: is the mesh running\? Start one with `npm start`, or pass --registry HOST:PORT \(this tried 127\.0\.0\.1:1\)\n$/s);
  });
});

describe('keys list, and the hints of a mesh with tokens', () => {
  let nats: NatsServerProcess & { cleanup(): Promise<void> };
  let registry: RegistryService;
  let dir: string;
  const bootstrap = newApiKey();
  const infermesh = (...args: string[]) => run(process.execPath, [cli, ...args, '--registry', `127.0.0.1:${registry.port}`], { env: { ...process.env, INFERMESH_TOKEN: '' } });

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-cli-keys-'));
    const auth = bootstrapAuthEnv(dir, bootstrap.token);
    nats = await startTestNats();
    registry = await startTestRegistry(nats.url, auth);
  });

  afterAll(async () => {
    await registry?.shutdown(5_000);
    await nats?.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lists keys in a table, revoked ones with the time; --json the documented fields', async () => {
    const created = JSON.parse((await infermesh('keys', 'create', '--name', 'ci', '--grant', 'infer:mnist*', '--grant', 'read', '--token', bootstrap.token)).stdout) as { id: string; token: string };
    const old = JSON.parse((await infermesh('keys', 'create', '--name', 'old', '--grant', 'read', '--token', bootstrap.token)).stdout) as { id: string };
    await infermesh('keys', 'revoke', old.id, '--token', bootstrap.token);

    const { stdout } = await infermesh('keys', 'list', '--token', bootstrap.token);
    expect(stdout).not.toContain(created.token.slice(21));
    const rows = parseTable(stdout.trimEnd());
    expect(rows.map((r) => Object.keys(r))[0]).toEqual(['ID', 'NAME', 'GRANTS', 'CREATED', 'CREATED BY', 'REVOKED']);
    expect(rows.find((r) => r.ID === bootstrap.id)).toMatchObject({ GRANTS: 'admin', 'CREATED BY': 'bootstrap', REVOKED: '-' });
    expect(rows.find((r) => r.ID === created.id)).toEqual({ ID: created.id, NAME: 'ci', GRANTS: 'infer:mnist*,read', CREATED: expect.stringMatching(TIME), 'CREATED BY': `key:${bootstrap.id}`, REVOKED: '-' });
    expect(rows.find((r) => r.ID === old.id)).toMatchObject({ NAME: 'old', REVOKED: expect.stringMatching(TIME) });

    const json = JSON.parse((await infermesh('keys', 'list', '--json', '--token', bootstrap.token)).stdout) as Record<string, unknown>[];
    expect(json.find((k) => k.id === created.id)).toEqual({ id: created.id, name: 'ci', grants: ['infer:mnist*', 'read'], created_at: expect.any(String), created_by: `key:${bootstrap.id}` });
    expect(json.find((k) => k.id === old.id)).toMatchObject({ revoked_at: expect.any(String) });
  });

  it('says to pass a token when none was sent, and which grant to ask for when one is missing', async () => {
    const failed = (p: Promise<unknown>) => p.then(() => { throw new Error('expected the command to fail'); }, (e: { code: number; stderr: string }) => e);
    const anonymous = await failed(infermesh('keys', 'list'));
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/^infermesh: Unauthenticated \(gRPC 16\): .*\nhint: this mesh needs a token: pass --token TOKEN or set INFERMESH_TOKEN/);
    const reader = JSON.parse((await infermesh('keys', 'create', '--name', 'reader', '--grant', 'read', '--token', bootstrap.token)).stdout) as { token: string };
    const denied = await failed(infermesh('push', 'digits', modelPath('mnist.onnx'), '--token', reader.token));
    expect(denied.stderr).toBe("infermesh: PermissionDenied (gRPC 7): the caller has no 'push' scope for model 'digits'\n"
      + "hint: your token lacks the 'push' scope for 'digits': ask an admin for a key that has it (`infermesh keys create --name NAME --grant push:digits`)\n");
    const notAdmin = await failed(infermesh('keys', 'list', '--token', reader.token));
    expect(notAdmin.stderr).toMatch(/\nhint: your token lacks the 'admin' scope: ask an admin for a key that has it \(`infermesh keys create --name NAME --grant admin`\)\n$/);
  });

  it('refuses a tenant\'s terminal controls at push and rollout, and shows a server\'s message and stored events escaped', async () => {
    const failed = (p: Promise<unknown>) => p.then(() => { throw new Error('expected the command to fail'); }, (e: { code: number; stdout: string; stderr: string }) => e);
    const file = path.join(dir, 'escapes.onnx');
    fs.writeFileSync(file, encodeModel({
      name: 'g', inputs: [tensor(`x${OSC52}`, ElemType.FLOAT, ['n'])], outputs: [tensor('y', ElemType.FLOAT, ['n'])], nodes: [node('Identity', [`x${OSC52}`], ['y'])],
    }));
    // At once: each is a process of its own. The last: a server's message quoting what it was sent
    // (here an invalid model name) is printed escaped.
    const [push, pause, named] = await Promise.all([
      failed(infermesh('push', 'evil', file, '--token', bootstrap.token)),
      failed(infermesh('rollout', 'pause', 'evil', '--reason', `ok${CLEAR}`, '--token', bootstrap.token)),
      failed(infermesh('versions', `evil${CLEAR}`, '--token', bootstrap.token)),
    ]);
    expect(push.stderr).toMatch(/^infermesh: InvalidArgument \(gRPC 3\): artifact's input tensor 'x\\x1b\]52;c;cm0gLXJmIH4=\\x07': its name holds a control character \(U\+001B\) at character 2: /);
    expect(pause.stderr).toMatch(/^infermesh: InvalidArgument \(gRPC 3\): reason holds a control character \(U\+001B\) at character 3: /);
    expect(named.stderr).toContain("model name 'evil\\x1b[2J\\x1b[H' is invalid");
    for (const e of [push, pause, named]) expect(e.stderr).not.toMatch(RAW_CONTROL);

    // Events stored before the registry refused such text (written here straight to the stream).
    const nc = await connect({ servers: nats.url });
    try {
      const js = jetstream(nc);
      await js.publish(subjects.event('evil', 'model.config.changed'), encodeEvent(newEvent({ type: 'model.config.changed', model: 'evil', description: 'd\u009b2J', labels: { team: `a${OSC52}` }, config: {}, principal: 'key:x' })));
      await js.publish(subjects.event('evil', 'rollout.changed'), encodeEvent(newEvent({ type: 'rollout.changed', model: 'evil', action: 'paused', stable: 1, canary: 2, weight: 10, phase: 'paused', reason: `ok${CLEAR}\u202e`, principal: 'key:x' })));
    } finally {
      await nc.close();
    }
    const env = { ...process.env, INFERMESH_TOKEN: bootstrap.token };
    const [lines, json] = await Promise.all([eventLines(registry.port, 2, ['--model', 'evil'], env), eventLines(registry.port, 2, ['--model', 'evil', '--json'], env)]);
    expect(lines.join('\n')).not.toMatch(RAW_CONTROL);
    expect(lines[0]).toMatch(/ evil +model\.config\.changed +description "d\\x9b2J", labels team=a\\x1b\]52;c;cm0gLXJmIH4=\\x07 {2}by key:x$/);
    expect(lines[1]).toMatch(/ evil +rollout\.changed +paused: v1 -> v2 at 10% \(paused\): ok\\x1b\[2J\\x1b\[H\\u202e {2}by key:x$/);
    expect(json.join('\n')).not.toMatch(RAW_CONTROL);
    expect(json.map((l) => (JSON.parse(l) as { description?: string; reason?: string })).map((e) => e.description ?? e.reason)).toEqual(['d\u009b2J', `ok${CLEAR}\u202e`]);
  });
});
