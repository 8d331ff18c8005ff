// Model names as NATS subject tokens and KV key tokens: old names keep their tokens, every token is
// valid where it is used, and no two names share one. And the nkey seed file a connection reads.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { silentLogger } from '../../../lib/log';
import { connectNats, nameOfToken, nameToken } from '../../../lib/nats';
import { subjects } from '../../../lib/events';
import { windowSubject } from '../../../lib/window-stats';
import { keys, MODEL_NAME } from '../../../services/registry/records';

// What NATS accepts: a KV key (nats.js validKeyRe) and a subject token (no '.', '*', '>' or whitespace).
const KV_KEY_TOKEN = /^[-/_=a-zA-Z0-9]+$/;
const SUBJECT_TOKEN = /^[^.*>\s]+$/;

describe('nameToken', () => {
  it.each([
    ['mnist', 'mnist'],
    ['add-sub-2', 'add-sub-2'],
    ['densenet_onnx', 'densenet_onnx'],
    ['ResNet50', 'ResNet50'],
    ['resnet50_v1.5', 'resnet50_v1=2E5'],
    ['a=2E', 'a=3D2E'],
    ['*', '=2A'],
    ['a>b c', 'a=3Eb=20c'],
    ['é', '=C3=A9'],
    ['', '='],
  ])('%p → %p, and back', (name, token) => {
    expect(nameToken(name)).toBe(token);
    expect(nameOfToken(token)).toBe(name);
  });

  it('keeps the keys and subjects of names that were valid before', () => {
    // Before: DNS labels, and the key, event subject and metrics subject had the name as it is.
    fc.assert(fc.property(fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/), (name) => {
      expect(keys.model(name)).toBe(`models.${name}`);
      expect(keys.version(name, 3)).toBe(`versions.${name}.3`);
      expect(subjects.event(name, 'traffic.changed')).toBe(`infermesh.events.${name}.traffic.changed`);
      expect(windowSubject(name)).toBe(`infermesh.metrics.${name}`);
    }), { seed: 13, numRuns: 500 });
  });

  it('gives every string a valid, distinct token that decodes to it', () => {
    const seen = new Map<string, string>();
    fc.assert(fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.stringMatching(MODEL_NAME)), (name) => {
      const token = nameToken(name);
      expect(token).toMatch(KV_KEY_TOKEN);
      expect(token).toMatch(SUBJECT_TOKEN);
      const other = seen.get(token);
      if (other !== undefined) expect(other).toBe(name);
      seen.set(token, name);
      // Lone surrogates have no UTF-8 form; every other string comes back as it was.
      if (Buffer.from(name, 'utf8').toString('utf8') === name) expect(nameOfToken(token)).toBe(name);
    }), { seed: 13, numRuns: 3000 });
  });

  it('decodes only tokens it produces', () => {
    for (const token of ['', 'a.b', '=', '=2', '=2e', '=61', '=FF', 'a b', 'x=zz']) {
      const name = nameOfToken(token);
      if (name !== undefined) expect(nameToken(name)).toBe(token);
    }
    expect(nameOfToken('=61')).toBeUndefined(); // 'a' is written as itself
    expect(nameOfToken('=FF')).toBeUndefined(); // not UTF-8
    expect(nameOfToken('=2e')).toBeUndefined(); // lower-case hex is not canonical
    expect(keys.modelOf('models.densenet_onnx')).toBe('densenet_onnx');
    expect(keys.modelOf('versions.x.1')).toBeUndefined();
  });
});

describe('MODEL_NAME', () => {
  it.each(['mnist', 'densenet_onnx', 'ResNet50', 'resnet50_v1.5', '0', 'a'.repeat(128)])('accepts %p', (name) => expect(MODEL_NAME.test(name)).toBe(true));
  it.each(['', '_x', '.x', '-x', 'a'.repeat(129), 'a b', 'a*', 'a>', 'a/b', 'a=b', 'é'])('refuses %p', (name) => expect(MODEL_NAME.test(name)).toBe(false));
});

describe('connectNats with an nkey seed file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-seed-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, content: string | Buffer) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, content, { mode: 0o600 });
    return f;
  };
  // An account seed (SA...) is a real seed of the wrong kind; its text must never be repeated.
  const accountSeed = `SA${'A'.repeat(56)}`;

  it.each([
    ['a missing file', path.join(dir, 'absent'), /cannot be read: ENOENT/],
    ['an empty file', file('empty', ''), /holds no user nkey seed/],
    ['an account seed', file('account', `${accountSeed}\n`), /holds no user nkey seed/],
    ['binary junk', file('junk', Buffer.from([0, 255, 10, 83, 85, 0])), /holds no user nkey seed/],
    ['a file far larger than a seed', file('huge', Buffer.alloc(1024 * 1024, 'S')), /is 1048576 bytes, more than the 4096 such a file can take/],
  ])('stops the start on %s, naming the setting and not the content', async (_what, seedFile, why) => {
    const err = await connectNats({ natsUrl: 'nats://127.0.0.1:1', natsUser: '', natsPassword: '', natsToken: '', natsNkeySeedFile: seedFile }, 'test', silentLogger).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/^INFERMESH_NATS_NKEY_SEED_FILE /);
    expect(err?.message).toMatch(why);
    expect(err?.message).not.toContain(accountSeed);
  });
});
