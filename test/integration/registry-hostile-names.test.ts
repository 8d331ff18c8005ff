// Names and metadata no model can have, sent to a real registry: refused INVALID_ARGUMENT at once,
// before any record is read or written (a model key of several KB in a NATS control line drops the
// registry's connection), with the name cut short in the message; a description and labels bounded
// by INFERMESH_MAX_MODEL_METADATA_BYTES, so a model's record and its events keep fitting NATS's
// max_payload through a rollout's history; and no text holding what a terminal acts on (ESC, C1
// controls, bidi overrides) in a tensor name, a label or a description (lib/text.ts).
import { status as Status } from '@grpc/grpc-js';
import { RegistryApi, RolloutApi } from '../../client/index';
import { registryClient, unary } from '../../lib/grpc/client';
import type { RegistryService } from '../../services/registry/registry-service';
import { startTestNats } from '../helpers/nats';
import { modelPath } from '../helpers/models';
import { encodeModel, ElemType, node, tensor } from '../../tools/models/onnx-builder';
import { startTestRegistry } from '../helpers/services';

jest.setTimeout(60_000);

/** The error a call failed with: the client's (grpcCode, message) or grpc-js's (code, details). */
const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as { grpcCode?: number; code?: number; message: string; details?: string });

describe('a registry sent names and metadata no model can have', () => {
  let nats: Awaited<ReturnType<typeof startTestNats>>;
  let registry: RegistryService;
  let api: RegistryApi;
  let rollouts: RolloutApi;

  beforeAll(async () => {
    nats = await startTestNats();
    registry = await startTestRegistry(nats.url, { INFERMESH_MAX_MODEL_METADATA_BYTES: '2000' });
    api = new RegistryApi(`127.0.0.1:${registry.port}`);
    rollouts = new RolloutApi(`127.0.0.1:${registry.port}`);
  });

  afterAll(async () => {
    api?.close();
    rollouts?.close();
    await registry?.shutdown(5_000);
    await nats?.cleanup();
  });

  it('refuses a name of 5,000 characters on every call that reads or writes a model, at once, naming it cut short', async () => {
    const long = 'x'.repeat(5_000);
    const calls: [string, () => Promise<unknown>][] = [
      ['GetModel', () => api.model(long)],
      ['ListVersions', () => api.versions(long)],
      ['GetVersion', () => api.version(long, 1)],
      ['UpdateModel', () => api.updateModel(long, { description: 'd' })],
      ['ArchiveVersion', () => api.archiveVersion(long, 1)],
      ['DeleteVersion', () => api.deleteVersion(long, 1)],
      ['PullVersion', () => api.pull(long, 1)],
      ['GetRollout', () => rollouts.status(long)],
      ['PauseRollout', () => rollouts.pause(long)],
    ];
    for (const [rpc, call] of calls) {
      const err = await failure(call());
      expect({ rpc, code: err?.grpcCode }).toEqual({ rpc, code: Status.INVALID_ARGUMENT });
      expect(err!.message).toContain(`model name '${'x'.repeat(128)}…' is invalid`);
      expect(err!.message.length).toBeLessThan(400);
    }
    // The registry's connection to NATS was never dropped: a model made now is read back at once.
    const raw = registryClient(`127.0.0.1:${registry.port}`);
    try {
      await unary((cb) => raw.CreateModel({ name: 'after-long-names', description: '', labels: {} }, cb));
    } finally {
      raw.close();
    }
    expect((await api.model('after-long-names')).name).toBe('after-long-names');
  });

  it('answers a name of 100,000 characters with a short INVALID_ARGUMENT', async () => {
    const raw = registryClient(`127.0.0.1:${registry.port}`);
    try {
      const err = await failure(unary((cb) => raw.CreateModel({ name: 'z'.repeat(100_000), description: '', labels: {} }, cb)));
      expect(err?.code).toBe(Status.INVALID_ARGUMENT);
      expect(err!.details!.length).toBeLessThan(400);
    } finally {
      raw.close();
    }
  });

  it('bounds a model\'s description and labels together, before writing anything', async () => {
    const raw = registryClient(`127.0.0.1:${registry.port}`);
    try {
      const created = await failure(unary((cb) => raw.CreateModel({ name: 'wordy', description: 'd'.repeat(2_001), labels: {} }, cb)));
      expect(created?.code).toBe(Status.INVALID_ARGUMENT);
      expect(created?.details).toBe('the model\'s description and labels take 2001 bytes, above INFERMESH_MAX_MODEL_METADATA_BYTES (2000)');
      expect((await failure(api.model('wordy')))?.grpcCode).toBe(Status.NOT_FOUND);
      await unary((cb) => raw.CreateModel({ name: 'wordy', description: 'd'.repeat(1_000), labels: { team: 'a' } }, cb));
    } finally {
      raw.close();
    }
    // The labels kept count with a new description, and a refused change writes nothing.
    const before = await api.model('wordy');
    const err = await failure(api.updateModel('wordy', { description: 'é'.repeat(999) }));
    expect(err?.grpcCode).toBe(Status.INVALID_ARGUMENT);
    expect(err?.message).toMatch(/take 2003 bytes, above INFERMESH_MAX_MODEL_METADATA_BYTES \(2000\)/);
    const after = await api.model('wordy');
    expect([after.revision, after.description]).toEqual([before.revision, before.description]);
    expect((await api.updateModel('wordy', { description: 'short' })).description).toBe('short');
  });

  it('refuses a push whose tensor names hold terminal controls, naming the tensor escaped, and stores nothing', async () => {
    const osc52 = '\x1b]52;c;cm0gLXJmIH4=\x07';
    const graph = (input: string, output: string) => encodeModel({
      name: 'g', inputs: [tensor(input, ElemType.FLOAT, ['n'])], outputs: [tensor(output, ElemType.FLOAT, ['n'])], nodes: [node('Identity', [input], [output])],
    });
    const input = await failure(api.push('escapes', graph(`x${osc52}`, 'y')));
    expect(input?.grpcCode).toBe(Status.INVALID_ARGUMENT);
    expect(input?.message).toBe("artifact's input tensor 'x\\x1b]52;c;cm0gLXJmIH4=\\x07': its name holds a control character (U+001B) at character 2: "
      + 'names and labels take printable characters only (no control, bidirectional or invisible character; joiners, variation selectors and emoji flags are taken)');
    const output = await failure(api.push('escapes', graph('x', 'y\u009b2J')));
    expect(output?.message).toMatch(/^artifact's output tensor 'y\\x9b2J': its name holds a control character \(U\+009B\) at character 2: /);
    expect((await failure(api.model('escapes')))?.grpcCode).toBe(Status.NOT_FOUND);
    expect((await api.push('escapes', graph('x', 'y'))).version).toBe(1);
  });

  it('refuses labels and descriptions holding terminal controls or bidi overrides, naming the field, and writes nothing', async () => {
    await api.push('labelled', modelPath('fixtures/add_sub_fp32.onnx'));
    const before = await api.model('labelled');
    const refusals: [Parameters<RegistryApi['updateModel']>[1], RegExp][] = [
      [{ labels: { team: 'a\x1b]52;c;eA==\x07' } }, /^label 'team' value holds a control character \(U\+001B\) at character 2: names and labels take printable/],
      [{ labels: { 'te\x1b[2Jam': 'a' } }, /^label key 'te\\x1b\[2Jam' holds a control character \(U\+001B\) at character 3: /],
      [{ labels: { owner: 'x\u2066y' } }, /^label 'owner' value holds a bidirectional override \(U\+2066\) at character 2: /],
      [{ description: 'd\u009b2J' }, /^description holds a control character \(U\+009B\) at character 2: free text may hold line breaks and tabs/],
      [{ description: 'admin\u202egpj.exe' }, /^description holds a bidirectional override \(U\+202E\) at character 6: /],
      [{ labels: { 'te\u200bam': 'a' } }, /^label key 'te\u200bam' holds an invisible character \(U\+200B\) at character 3: /],
    ];
    for (const [update, message] of refusals) {
      const err = await failure(api.updateModel('labelled', update));
      expect({ update, code: err?.grpcCode }).toEqual({ update, code: Status.INVALID_ARGUMENT });
      expect(err!.message).toMatch(message);
    }
    expect((await api.model('labelled')).revision).toBe(before.revision);
    const raw = registryClient(`127.0.0.1:${registry.port}`);
    try {
      const created = await failure(unary((cb) => raw.CreateModel({ name: 'labelled-new', description: '', labels: { team: 'a\x07' } }, cb)));
      expect(created?.code).toBe(Status.INVALID_ARGUMENT);
    } finally {
      raw.close();
    }
    expect((await failure(api.model('labelled-new')))?.grpcCode).toBe(Status.NOT_FOUND);
    // A description may span lines and hold tabs.
    expect((await api.updateModel('labelled', { description: 'digits\n\tfrom MNIST', labels: { team: 'ml é' } })).description).toBe('digits\n\tfrom MNIST');
    // Names in every script: a Persian word's non-joiner, an emoji ZWJ sequence, a subdivision flag.
    const labels = { 'می\u200cخواهم': '\u{1F469}\u200D\u{1F4BB}', region: '\u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}' };
    expect((await api.updateModel('labelled', { labels })).labels).toEqual(labels);
  });
});

describe('a model with the most description and labels allowed', () => {
  it('goes through a rollout of many steps and is rolled back, its record and events within NATS\'s max_payload', async () => {
    const nats = await startTestNats();
    const registry = await startTestRegistry(nats.url);
    const api = new RegistryApi(`127.0.0.1:${registry.port}`);
    const rollouts = new RolloutApi(`127.0.0.1:${registry.port}`);
    const raw = registryClient(`127.0.0.1:${registry.port}`);
    try {
      // 256 KiB, the default, in labels and a description; each pause and resume adds to the rollout history.
      const labels = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`label-${i}`, 'v'.repeat(1_000)]));
      const used = Object.entries(labels).reduce((n, [k, v]) => n + k.length + v.length, 0);
      await unary((cb) => raw.CreateModel({ name: 'full', description: 'd'.repeat(256 * 1024 - used), labels }, cb));
      await api.push('full', modelPath('fixtures/add_sub_fp32.onnx'));
      await api.push('full', modelPath('fixtures/add_sub_fp32.onnx'));
      await rollouts.start('full', 2, { weight: 10 });
      for (let i = 0; i < 8; i++) {
        await rollouts.pause('full', `pause ${i}: ${'r'.repeat(500)}`);
        await rollouts.resume('full');
      }
      const rolledBack = await rollouts.rollback('full', 'done');
      expect(rolledBack.traffic.map((t) => [Number(t.version), t.weight])).toEqual([[1, 100]]);
      expect(rolledBack.history.length).toBeGreaterThan(16);
    } finally {
      raw.close();
      api.close();
      rollouts.close();
      await registry.shutdown(5_000);
      await nats.cleanup();
    }
  });
});
