// Signed heartbeats (lib/heartbeat-signatures.ts) with real keys of each kind a certificate may
// carry: what a pod signs verifies after the wire (encodeHeartbeat, decodeHeartbeat) against its
// public key; once a pod's key is known, an unsigned, altered, replayed or older heartbeat is not
// taken, a failing signature asks for the key again (once per interval), a restarted process
// goes on, and a flood spends a bounded number of checks per pod and second.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { decodeHeartbeat, encodeHeartbeat, SchemaError, type Heartbeat } from '../../../lib/events';
import { canonicalJson, HeartbeatSignatures, HeartbeatSigner } from '../../../lib/heartbeat-signatures';
import { createLogger } from '../../../lib/log';
import { ClaimWarnings } from '../../../lib/pod-claims';

const hb = (change: Partial<Heartbeat> = {}): Heartbeat => ({
  schema: 1, pod: 'pod-a', address: 'a:1', state: 'serving', inflight: 3, time: '2026-01-01T00:00:00.000Z',
  models: [{ name: 'mnist', version: 1, state: 'READY', provider: 'cpu', reason: undefined, requests: 7 }],
  memory: { budgetBytes: 100, usedBytes: 10, rssBytes: 50 }, ...change,
});
/** `h` as a view receives it: through the wire. */
const wire = (h: Heartbeat) => decodeHeartbeat(encodeHeartbeat(h));

function keys(type: 'ec' | 'ed25519' | 'rsa'): { privateKey: KeyObject; publicKey: KeyObject } {
  if (type === 'ec') return generateKeyPairSync('ec', { namedCurve: 'P-256' });
  if (type === 'rsa') return generateKeyPairSync('rsa', { modulusLength: 2048 });
  return generateKeyPairSync('ed25519');
}
const pemOf = (k: KeyObject) => Buffer.from(k.export({ type: 'pkcs8', format: 'pem' }) as string);

describe('HeartbeatSignatures', () => {
  let now = 1_000;
  let lines: string[];
  let reprobed: number;
  const pod = { id: 'pod-a' };
  const view = (perSecond = 20) => {
    const warnings = new ClaimWarnings(createLogger('t', 'info', {}, (l) => lines.push(l)), 0, () => now);
    return new HeartbeatSignatures<typeof pod>({ heartbeatVerifiesPerSecond: perSecond, identityRetryMs: 5_000 }, warnings, () => reprobed++, { now: () => now });
  };
  const said = (text: string) => lines.filter((l) => l.includes(text)).length;

  beforeEach(() => {
    now = 1_000;
    lines = [];
    reprobed = 0;
  });

  it.each(['ec', 'ed25519', 'rsa'] as const)('takes a %s-signed heartbeat after the wire, and refuses it unsigned, altered or replayed', (type) => {
    const { privateKey, publicKey } = keys(type);
    const signer = new HeartbeatSigner(() => pemOf(privateKey));
    const v = view();
    // No key known yet (not proven): nothing to check.
    expect(v.admits(pod, wire(hb()))).toBe(true);
    v.learn(pod, publicKey);
    const first = wire(signer.sign(hb()));
    expect(first.boot).toBe(signer.boot);
    expect(v.admits(pod, first)).toBe(true);
    expect(v.admits(pod, wire(hb()))).toBe(false);
    expect(said('is not signed')).toBe(1);
    expect(v.admits(pod, { ...wire(signer.sign(hb())), inflight: 0 })).toBe(false);
    expect(said('does not verify')).toBe(1);
    const second = wire(signer.sign(hb({ state: 'stopped' })));
    expect(v.admits(pod, second)).toBe(true);
    // Replays of the last and of an older one (a dead pod's last words).
    expect(v.admits(pod, second)).toBe(false);
    expect(v.admits(pod, first)).toBe(false);
    expect(said('a replay')).toBe(2);
  });

  it('takes the heartbeats of a restarted process of the pod, and none older than the last taken', () => {
    const { privateKey, publicKey } = keys('ec');
    const v = view();
    v.learn(pod, publicKey);
    // A restart takes a process's start at least: the next process's clock reads later than its
    // predecessor's last heartbeat (two heartbeats signed in one millisecond number past the clock).
    let clock = 1_700_000_000_000;
    const before = new HeartbeatSigner(() => pemOf(privateKey), () => clock);
    const old = wire(before.sign(hb()));
    const last = wire(before.sign(hb()));
    expect(v.admits(pod, last)).toBe(true);
    clock += 1_000;
    const after = new HeartbeatSigner(() => pemOf(privateKey), () => clock);
    expect(after.boot).not.toBe(before.boot);
    expect(v.admits(pod, wire(after.sign(hb())))).toBe(true);
    expect(v.admits(pod, old)).toBe(false);
  });

  it('asks for the key again when a signature fails, once per interval, and takes the new key once learned', () => {
    const first = keys('ec');
    const rotated = keys('ec');
    const v = view();
    v.learn(pod, first.publicKey);
    let pem = pemOf(first.privateKey);
    const signer = new HeartbeatSigner(() => pem);
    expect(v.admits(pod, wire(signer.sign(hb())))).toBe(true);
    pem = pemOf(rotated.privateKey);
    expect(v.admits(pod, wire(signer.sign(hb())))).toBe(false);
    expect(v.admits(pod, wire(signer.sign(hb())))).toBe(false);
    expect(reprobed).toBe(1);
    now += 5_000;
    expect(v.admits(pod, wire(signer.sign(hb())))).toBe(false);
    expect(reprobed).toBe(2);
    v.learn(pod, rotated.publicKey);
    expect(v.admits(pod, wire(signer.sign(hb())))).toBe(true);
    // One naming another process (the pod restarted where it was, its certificate renewed; or a
    // forger) asks too, on an interval of its own: it holds back no probe the known process needs.
    now += 5_000;
    const forger = new HeartbeatSigner(() => pemOf(first.privateKey), () => 9e12);
    expect(v.admits(pod, wire(forger.sign(hb())))).toBe(false);
    expect(v.admits(pod, wire(forger.sign(hb())))).toBe(false);
    expect(reprobed).toBe(3);
    pem = pemOf(first.privateKey);
    expect(v.admits(pod, wire(signer.sign(hb())))).toBe(false);
    expect(reprobed).toBe(4);
  });

  it('asks for the key again when a restarted process of the pod signs with another key', () => {
    const first = keys('ec');
    const renewed = keys('ec');
    const v = view();
    v.learn(pod, first.publicKey);
    // The restarted process's clock reads a restart's length later (see above).
    let clock = 1_700_000_000_000;
    expect(v.admits(pod, wire(new HeartbeatSigner(() => pemOf(first.privateKey), () => clock).sign(hb())))).toBe(true);
    clock += 1_000;
    const restarted = new HeartbeatSigner(() => pemOf(renewed.privateKey), () => clock);
    expect(v.admits(pod, wire(restarted.sign(hb())))).toBe(false);
    expect(reprobed).toBe(1);
    v.learn(pod, renewed.publicKey);
    expect(v.admits(pod, wire(restarted.sign(hb())))).toBe(true);
  });

  it('checks at most its budget of signatures per pod and second, and a flood naming another process spends none of the budget of the one it knows', () => {
    const { privateKey, publicKey } = keys('ec');
    const forger = keys('ec');
    const v = view(3);
    v.learn(pod, publicKey);
    const signer = new HeartbeatSigner(() => pemOf(privateKey));
    expect(v.admits(pod, wire(signer.sign(hb())))).toBe(true);
    // Signed with a key of the forger's own, newer than anything the pod sent.
    const forgerSigner = new HeartbeatSigner(() => pemOf(forger.privateKey), () => 9e12);
    const forged = (boot: string): Heartbeat => ({ ...wire(forgerSigner.sign(hb())), boot });
    // Ten forgeries naming other processes: two are checked (the pod's first named a process not yet
    // known too), the rest not; the pod's own still counts.
    for (let i = 0; i < 10; i++) expect(v.admits(pod, forged(`other-process-${String(i).padStart(8, '0')}`))).toBe(false);
    expect(said('does not verify')).toBe(2);
    expect(said('faster than their signatures are checked')).toBe(8);
    expect(v.admits(pod, wire(signer.sign(hb())))).toBe(true);
    // Forgeries naming the process it knows spend that budget (three: the pod's own, and two forgeries).
    for (let i = 0; i < 2; i++) expect(v.admits(pod, forged(signer.boot))).toBe(false);
    expect(v.admits(pod, wire(signer.sign(hb())))).toBe(false);
    // The next second, checks again.
    now += 1_000;
    expect(v.admits(pod, wire(signer.sign(hb())))).toBe(true);
  });
});

describe('heartbeat signature fields', () => {
  it('are all three or none, bounded, on the wire', () => {
    const { privateKey } = keys('ec');
    const signed = new HeartbeatSigner(() => pemOf(privateKey)).sign(hb());
    expect(wire(signed)).toMatchObject({ boot: signed.boot, seq: signed.seq, sig: signed.sig });
    const { sig: _s, ...noSig } = signed;
    expect(() => wire(noSig)).toThrow(SchemaError);
    expect(() => wire({ ...signed, sig: 'A'.repeat(1_372) })).toThrow(SchemaError);
    expect(() => wire({ ...signed, boot: 'short' })).toThrow(SchemaError);
    expect(() => wire({ ...signed, seq: -1 })).toThrow(SchemaError);
  });

  it('are over a canonical encoding: keys in any order, undefined members left out, a __proto__ member kept', () => {
    expect(canonicalJson({ b: 1, a: [{ d: undefined, c: 'x' }] })).toBe('{"a":[{"c":"x"}],"b":1}');
    expect(canonicalJson(JSON.parse('{"b":1,"__proto__":{"z":2,"y":1}}'))).toBe('{"__proto__":{"y":1,"z":2},"b":1}');
  });

  it('refuses, without throwing, a heartbeat nested deeper than its encoding can go', () => {
    const { privateKey, publicKey } = keys('ec');
    const v = new HeartbeatSignatures<object>({ heartbeatVerifiesPerSecond: 20, identityRetryMs: 5_000 }, new ClaimWarnings(createLogger('t', 'error', {}, () => undefined), 0), () => undefined);
    const pod = {};
    v.learn(pod, publicKey);
    const signed = new HeartbeatSigner(() => pemOf(privateKey)).sign(hb());
    const deep = JSON.parse(`{"x":${'['.repeat(200_000)}${']'.repeat(200_000)}}`) as Record<string, unknown>;
    expect(v.admits(pod, { ...signed, ...deep })).toBe(false);
  });
});
