// The pods placement may use: every heartbeat without TLS; with TLS, only one whose address proved
// the identity it claims, a proven pod stays where it proved it while its heartbeats come, and what
// a heartbeat in its name would change of its versions or its serving is asked of the pod (its
// memory budget, which it cannot be asked, is the one it was counted with); a flood of invented
// pods, over real TLS, costs no more probes than the process's bound, and a line of log per kind of
// refusal.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { loadConfig } from '../../../../lib/config';
import type { Heartbeat, PodModel } from '../../../../lib/events';
import type { PodAnswers } from '../../../../lib/heartbeat-confirmation';
import { ListeningClock } from '../../../../lib/listening-clock';
import { createLogger, silentLogger } from '../../../../lib/log';
import { loadTls, type TlsFiles } from '../../../../lib/tls';
import { HeartbeatSigner } from '../../../../lib/heartbeat-signatures';
import { PlacementPods, type CountedPod } from '../../../../services/registry/placement/placement-pods';
import { startTestPki } from '../../../helpers/pki';
import { waitFor } from '../../../helpers/wait';

const hb = (pod: string, address: string, state: Heartbeat['state'] = 'serving'): Heartbeat => ({
  schema: 1, pod, address, state, inflight: 0, time: '', models: [], memory: { budgetBytes: 100, usedBytes: 0, rssBytes: 0 },
});
const settle = () => new Promise((r) => setImmediate(r));
/** TLS material as PlacementPods reads it here: the claim limits alone (the probes and the pods' answers are the test's). */
const fakeTls = (settings: Record<string, number> = {}) => ({ settings }) as unknown as TlsFiles;
/** The answers of pods that serve, each with the versions of the heartbeat placement holds of it. */
const serving: PodAnswers<CountedPod> = { serving: async () => ({ serving: true, answer: 'SERVING' }), versions: async (pod) => [...pod.seen.heartbeat.models] };
const names = (pods: PlacementPods) => pods.list().map((p) => `${p.heartbeat.pod}@${p.heartbeat.address}`);

describe('PlacementPods', () => {
  let now = 1_000_000;
  const clock = () => now;
  /** What each address's certificate proves; an address missing here refuses the handshake. */
  let certificates: Map<string, string[]>;
  let probes: string[];
  const probe = (address: string) => {
    probes.push(address);
    const ids = certificates.get(address);
    return ids ? Promise.resolve({ ids }) : Promise.reject(new Error('handshake failed'));
  };

  beforeEach(() => {
    now = 1_000_000;
    certificates = new Map([['a:1', ['spiffe://infermesh/pod/pod-a']], ['b:1', ['spiffe://infermesh/pod/pod-b']]]);
    probes = [];
  });

  it('while heartbeats cannot arrive (NATS away or hung), takes no pod away, so no version moves off one; its silence counts on from where it stood when they can', () => {
    const pods = new PlacementPods(5_000, 10, undefined, silentLogger, clock, probe);
    let changes = 0;
    pods.onChange(() => changes++);
    pods.update(hb('pod-a', 'a:1'), 100);
    pods.update(hb('pod-b', 'b:1'), 100);
    changes = 0;
    pods.setHeartbeatsAvailable(false);
    now += 60_000;
    expect(names(pods)).toEqual(['pod-a@a:1', 'pod-b@b:1']);
    pods.setHeartbeatsAvailable(true);
    now += 3_000;
    pods.update(hb('pod-a', 'a:1'), 100);
    now += 2_000;
    expect(names(pods)).toEqual(['pod-a@a:1', 'pod-b@b:1']);
    expect(changes).toBe(0);
    now += 1;
    expect(names(pods)).toEqual(['pod-a@a:1']);
    expect(changes).toBe(1);
  });

  it('without TLS, counts every heartbeat, forgets a pod at its goodbye and after the TTL', () => {
    const pods = new PlacementPods(5_000, 10, undefined, silentLogger, clock, probe);
    let changes = 0;
    pods.onChange(() => changes++);
    pods.update(hb('pod-a', 'a:1'), 100);
    pods.update(hb('pod-b', 'b:1'), 100);
    expect(names(pods)).toEqual(['pod-a@a:1', 'pod-b@b:1']);
    pods.update(hb('pod-a', 'a:1', 'stopped'), 100);
    expect(names(pods)).toEqual(['pod-b@b:1']);
    now += 5_001;
    expect(names(pods)).toEqual([]);
    expect(changes).toBe(4);
    expect(probes).toEqual([]);
  });

  it('with TLS, counts a pod once its address proved the identity it claims, and never one that does not', async () => {
    const pods = new PlacementPods(5_000, 10, fakeTls(), silentLogger, clock, probe, undefined, serving);
    pods.update(hb('pod-a', 'a:1'), 100);
    // pod-c claims its own name at pod-b's address: pod-b's certificate does not say pod-c.
    pods.update(hb('pod-c', 'b:1'), 100);
    expect(names(pods)).toEqual([]);
    await settle();
    pods.update(hb('pod-a', 'a:1'), 100);
    pods.update(hb('pod-c', 'b:1'), 100);
    expect(names(pods)).toEqual(['pod-a@a:1']);
    // A failed proof is not tried again within 5 s.
    now += 1_000;
    pods.update(hb('pod-c', 'b:1'), 100);
    expect(probes).toEqual(['a:1', 'b:1']);
  });

  it('with TLS, counts a proven pod from its first heartbeat its key signed, with that heartbeat\'s budget, and then takes only those, newer each time', async () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const signer = new HeartbeatSigner(() => Buffer.from(key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string));
    const keyed = (address: string) => {
      probes.push(address);
      return Promise.resolve({ ids: certificates.get(address) ?? [], publicKey: key.publicKey });
    };
    const pods = new PlacementPods(5_000, 10, fakeTls(), silentLogger, clock, keyed, undefined, serving);
    const budget = (bytes: number): Heartbeat => ({ ...hb('pod-a', 'a:1'), memory: { budgetBytes: bytes, usedBytes: 0, rssBytes: 0 } });
    pods.update(signer.sign(budget(100)), 100);
    await settle();
    // The first heartbeat after its proof is a forger's, unsigned, with a budget of its choosing.
    pods.update(budget(1), 100);
    expect(names(pods)).toEqual([]);
    const first = signer.sign(budget(100));
    pods.update(first, 100);
    expect(pods.list().map((p) => p.heartbeat.memory?.budgetBytes)).toEqual([100]);
    // Its silence ends only at a heartbeat it signed, not at a replay.
    now += 4_000;
    pods.update(first, 100);
    pods.update({ ...hb('pod-a', 'a:1'), inflight: 9 }, 100);
    now += 1_001;
    expect(names(pods)).toEqual([]);
  });

  it('with TLS, keeps counting a pod whose certificate rotated: a signature its known key refuses has the address probed again, and the new key learned', async () => {
    const pem = (k: KeyObject) => Buffer.from(k.export({ type: 'pkcs8', format: 'pem' }) as string);
    let key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const signer = new HeartbeatSigner(() => pem(key.privateKey));
    const keyed = (address: string) => {
      probes.push(address);
      return Promise.resolve({ ids: certificates.get(address) ?? [], publicKey: key.publicKey });
    };
    const pods = new PlacementPods(5_000, 10, fakeTls({ identityRetryMs: 5_000 }), silentLogger, clock, keyed, undefined, serving);
    pods.update(signer.sign(hb('pod-a', 'a:1')), 100);
    await settle();
    pods.update(signer.sign(hb('pod-a', 'a:1')), 100);
    expect(names(pods)).toEqual(['pod-a@a:1']);
    key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    now += 4_000;
    // Its first heartbeat with the new key is refused, and its address probed again; the next counts.
    pods.update(signer.sign(hb('pod-a', 'a:1')), 100);
    expect(probes).toEqual(['a:1', 'a:1']);
    await settle();
    pods.update(signer.sign(hb('pod-a', 'a:1')), 100);
    now += 4_000;
    expect(names(pods)).toEqual(['pod-a@a:1']);
  });

  it('with TLS, keeps a proven pod at its address: a heartbeat or a goodbye for it from elsewhere is ignored', async () => {
    certificates.set('x:9', ['spiffe://infermesh/pod/pod-a']);
    const pods = new PlacementPods(5_000, 10, fakeTls(), silentLogger, clock, probe, undefined, serving);
    pods.update(hb('pod-a', 'a:1'), 100);
    await settle();
    pods.update(hb('pod-a', 'a:1'), 100);
    pods.update(hb('pod-a', 'x:9'), 100);
    pods.update(hb('pod-a', 'x:9', 'stopped'), 100);
    expect(names(pods)).toEqual(['pod-a@a:1']);
    // Once its own heartbeats stop for the TTL, a proven address may take the name.
    now += 5_001;
    pods.update(hb('pod-a', 'x:9'), 100);
    await settle();
    pods.update(hb('pod-a', 'x:9'), 100);
    expect(names(pods)).toEqual(['pod-a@x:9']);
  });

  it('on a listening clock, counts the pods through a stall of the registry\'s loop past the TTL, and forgets one that stopped once the loop has read', () => {
    let mono = 0;
    const pending: (() => void)[] = [];
    const listening = new ListeningClock(500, () => mono, (fn) => pending.push(fn));
    const pods = new PlacementPods(5_000, 10, undefined, silentLogger, clock, probe, listening);
    pods.update(hb('pod-a', 'a:1'), 100);
    pods.update(hb('pod-b', 'b:1'), 100);
    now += 12_000;
    mono += 12_000;
    // Placement plans before the heartbeats queued during the stall are read.
    expect(names(pods)).toEqual(['pod-a@a:1', 'pod-b@b:1']);
    pods.update(hb('pod-a', 'a:1'), 100);
    for (const fn of pending.splice(0)) fn();
    expect(names(pods)).toEqual(['pod-a@a:1']);
    // Judged on the wall clock alone, the same stall loses both.
    const onWall = new PlacementPods(5_000, 10, undefined, silentLogger, clock, probe);
    onWall.update(hb('pod-a', 'a:1'), 100);
    now += 12_000;
    expect(names(onWall)).toEqual([]);
  });

  it('with TLS, keeps a proven pod at its address through a stall: a claim from elsewhere read before its own heartbeats is ignored', async () => {
    certificates.set('x:9', ['spiffe://infermesh/pod/pod-a']);
    let mono = 0;
    const pending: (() => void)[] = [];
    const listening = new ListeningClock(500, () => mono, (fn) => pending.push(fn));
    const pods = new PlacementPods(5_000, 10, fakeTls(), silentLogger, clock, probe, listening, serving);
    pods.update(hb('pod-a', 'a:1'), 100);
    // x:9 proves pod-a's identity, under another name (pods that share a certificate may).
    pods.update({ ...hb('pod-q', 'x:9'), identity: 'pod-a' }, 100);
    await settle();
    pods.update(hb('pod-a', 'a:1'), 100);
    pods.update({ ...hb('pod-q', 'x:9'), identity: 'pod-a' }, 100);
    expect(names(pods)).toEqual(['pod-a@a:1', 'pod-q@x:9']);
    now += 8_000;
    mono += 8_000;
    // Read first after the stall: another address naming pod-a. Its own heartbeats queued too.
    pods.update(hb('pod-a', 'x:9'), 100);
    pods.update(hb('pod-a', 'a:1'), 100);
    for (const fn of pending.splice(0)) fn();
    expect(names(pods).filter((n) => n.startsWith('pod-a@'))).toEqual(['pod-a@a:1']);
  });

  it('with TLS, keeps the proofs of real pods through a flood of invented claims, so they count while every probe is taken', async () => {
    let refuse = false;
    const bounded = (address: string) => (refuse ? undefined : probe(address));
    const pods = new PlacementPods(5_000, 10_000, fakeTls(), silentLogger, clock, bounded, undefined, serving);
    pods.update(hb('pod-a', 'a:1'), 100);
    await settle();
    pods.update(hb('pod-a', 'a:1'), 100);
    // More invented claims than proofs are kept, each failing its proof.
    for (let i = 0; i < 12_000; i++) pods.update(hb(`fake-${i}`, `fake:${i}`), 100);
    await settle();
    expect(names(pods)).toEqual(['pod-a@a:1']);
    // The flood holds every probe now: pod-a's heartbeats still count, and it is not probed again.
    refuse = true;
    now += 4_000;
    pods.update(hb('pod-a', 'a:1'), 100);
    now += 2_000;
    expect(names(pods)).toEqual(['pod-a@a:1']);
    expect(probes.filter((a) => a === 'a:1')).toHaveLength(1);
  });

  it('with TLS, asks a counted pod before it believes a goodbye or a change of versions in its name, and keeps the budget it was counted with', async () => {
    const READY_1: PodModel = { name: 'm', version: 1, state: 'READY', provider: 'cpu' };
    // pod-a's own word: its versions, and whether it serves.
    let truth: PodModel[] = [READY_1];
    let up = true;
    const asked = { serving: 0, versions: 0 };
    const podA: PodAnswers<CountedPod> = {
      serving: async () => (asked.serving++, up ? { serving: true, answer: 'SERVING' } : { serving: false, answer: '14 UNAVAILABLE: No connection established' }),
      versions: async () => (asked.versions++, truth.map((m) => ({ ...m, provider: '' }))),
    };
    const lines: string[] = [];
    const pods = new PlacementPods(5_000, 10, fakeTls({ heartbeatConfirmIntervalMs: 0 }), createLogger('registry', 'info', {}, (l) => lines.push(l)), clock, probe, undefined, podA);
    let changes = 0;
    pods.onChange(() => changes++);
    const own = (models: PodModel[], state: Heartbeat['state'] = 'serving'): Heartbeat => ({ ...hb('pod-a', 'a:1', state), models });
    const versions = () => pods.list().flatMap((p) => p.heartbeat.models.map((m) => `${p.heartbeat.pod} ${m.version}:${m.state}`));
    const budget = () => pods.list()[0]?.heartbeat.memory?.budgetBytes;
    pods.update(own([READY_1]), 100);
    await settle();
    pods.update(own([READY_1]), 100);
    // Counted, and its versions asked once: what came before its proof was a claim.
    await waitFor('its versions asked', () => asked.versions === 1);
    expect(versions()).toEqual(['pod-a 1:READY']);
    expect(changes).toBe(1);

    // Forged: an empty list, a failed load, a goodbye of each kind; each asked of the pod, none believed.
    pods.update(own([]), 100);
    expect(versions()).toEqual(['pod-a 1:READY']);
    await waitFor('the empty list asked', () => asked.versions === 2);
    pods.update(own([{ ...READY_1, state: 'UNAVAILABLE', reason: 'forged' }]), 100);
    await waitFor('the failed load asked', () => asked.versions === 3);
    for (const state of ['draining', 'stopped'] as const) pods.update(own([READY_1], state), 100);
    await waitFor('the goodbyes asked', () => asked.serving >= 1 && lines.some((l) => l.includes('says a proven pod is leaving')));
    await settle();
    expect(versions()).toEqual(['pod-a 1:READY']);
    expect(changes).toBe(1);
    expect(lines.filter((l) => l.includes('"warn"') && l.includes('placement: a heartbeat says other than the proven pod'))).not.toEqual([]);

    // Forged with the same versions: its budget left out, lowered, or raised; load figures are taken.
    const { memory: _m, ...noBudget } = own([{ ...READY_1, requests: 7 }]);
    pods.update(noBudget, 100);
    expect(budget()).toBe(100);
    expect(pods.list()[0]!.heartbeat.models[0]!.requests).toBe(7);
    pods.update({ ...own([READY_1]), memory: { budgetBytes: 1, usedBytes: 0, rssBytes: 0 } }, 100);
    expect(budget()).toBe(100);
    pods.update({ ...own([READY_1]), memory: { budgetBytes: 10 ** 12, usedBytes: 5, rssBytes: 0 } }, 100);
    expect(budget()).toBe(100);
    expect(pods.list()[0]!.heartbeat.memory?.usedBytes).toBe(5);

    // A real change: the pod loads version 2. Its heartbeat says so; the pod's answer applies.
    truth = [READY_1, { ...READY_1, version: 2 }];
    pods.update(own(truth), 100);
    await waitFor('version 2 believed', () => versions().join() === 'pod-a 1:READY,pod-a 2:READY');
    // A real goodbye: the pod says it does not serve; it goes at once, and placement hears of it.
    up = false;
    pods.update(own(truth, 'draining'), 100);
    await waitFor('pod-a gone', () => pods.list().length === 0);
    expect(changes).toBe(2);
  });

  it('with TLS, honours the goodbye of a counted pod that does not answer, and keeps what it knew of one that does not say its versions', async () => {
    const silent: PodAnswers<CountedPod> = {
      serving: async () => ({ serving: false, answer: '4 DEADLINE_EXCEEDED: Deadline exceeded' }),
      versions: () => Promise.reject(new Error('4 DEADLINE_EXCEEDED: Deadline exceeded')),
    };
    const pods = new PlacementPods(5_000, 10, fakeTls({ heartbeatConfirmIntervalMs: 0 }), silentLogger, clock, probe, undefined, silent);
    const models: PodModel[] = [{ name: 'm', version: 1, state: 'READY', provider: 'cpu' }];
    pods.update({ ...hb('pod-a', 'a:1'), models }, 100);
    await settle();
    pods.update({ ...hb('pod-a', 'a:1'), models }, 100);
    pods.update(hb('pod-a', 'a:1'), 100);
    await settle();
    expect(pods.list().map((p) => p.heartbeat.models.length)).toEqual([1]);
    pods.update(hb('pod-a', 'a:1', 'stopped'), 100);
    await waitFor('pod-a gone', () => pods.list().length === 0);
  });

  it('with TLS, asks no more than once per interval however many heartbeats claim a change', async () => {
    let versionsAsked = 0;
    const slow: PodAnswers<CountedPod> = {
      serving: async () => ({ serving: true, answer: 'SERVING' }),
      versions: async () => (versionsAsked++, []),
    };
    const pods = new PlacementPods(5_000, 10, fakeTls({ heartbeatConfirmIntervalMs: 200 }), silentLogger, clock, probe, undefined, slow);
    pods.update(hb('pod-a', 'a:1'), 100);
    await settle();
    pods.update(hb('pod-a', 'a:1'), 100);
    const started = Date.now();
    while (Date.now() - started < 500) {
      pods.update({ ...hb('pod-a', 'a:1'), models: [{ name: 'm', version: 9, state: 'READY', provider: 'cpu' }] }, 100);
      await new Promise((r) => setTimeout(r, 5));
    }
    // The proof's question, then one per 200 ms.
    expect(versionsAsked).toBeGreaterThanOrEqual(2);
    expect(versionsAsked).toBeLessThanOrEqual(4);
    expect(pods.list()[0]!.heartbeat.models).toEqual([]);
    pods.stop();
  });

  it('keeps at most its bound of pods', () => {
    const pods = new PlacementPods(5_000, 2, undefined, silentLogger, clock, probe);
    for (const p of ['p1', 'p2', 'p3']) pods.update(hb(p, `${p}:1`), 100);
    expect(names(pods)).toEqual(['p1@p1:1', 'p2@p2:1']);
  });
});

describe('PlacementPods under a flood of invented pods', () => {
  it('proves claims through the process\'s bounded probes, logs each kind of refusal once, and takes a real pod once they are free', async () => {
    const pki = await startTestPki();
    // Probes never end on their own within the test: only when a silent address drops its socket.
    const tls = loadTls(loadConfig({
      ...pki.env(await pki.issue('registry', { kind: 'registry', name: 'registry-1' })),
      INFERMESH_TLS_RELOAD_INTERVAL_MS: '60000',
      INFERMESH_IDENTITY_PROBE_CONCURRENCY: '2',
      INFERMESH_IDENTITY_PROBE_QUEUE: '2',
      INFERMESH_IDENTITY_PROBE_TIMEOUT_MS: '600000',
      INFERMESH_REFUSED_CLAIM_LOG_INTERVAL_MS: '60000',
    }), silentLogger)!;
    const podFiles = await pki.issue('pod-real', { kind: 'pod', name: 'pod-real' });
    const real = http2.createSecureServer({ cert: fs.readFileSync(podFiles.certFile), key: fs.readFileSync(podFiles.keyFile) }, (_req, res) => res.end('ok'));
    // Addresses that accept a connection and never say a word.
    const held = new Set<net.Socket>();
    let accepted = 0;
    const silent = Array.from({ length: 10 }, () => net.createServer((socket) => {
      accepted++;
      held.add(socket);
      socket.on('close', () => held.delete(socket));
      socket.on('error', () => undefined);
    }));
    const listen = async (server: net.Server) => {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return `127.0.0.1:${(server.address() as AddressInfo).port}`;
    };
    const lines: Record<string, unknown>[] = [];
    const warned = (part: string) => lines.filter((l) => l.level === 'warn' && String(l.msg).includes(part));
    try {
      const realAddress = await listen(real);
      const addresses = await Promise.all(silent.map(listen));
      const pods = new PlacementPods(5_000, 100, tls, createLogger('registry', 'info', {}, (l) => lines.push(JSON.parse(l) as Record<string, unknown>)));
      addresses.forEach((address, i) => pods.update(hb(`fake-${i}`, address), 100));
      expect(tls.probes.load).toEqual({ running: 2, waiting: 2 });
      expect(warned('every identity probe is taken')).toHaveLength(1);
      await waitFor('the two probes to connect', () => accepted >= 2);
      expect(accepted).toBe(2);

      await waitFor('every probe ended', () => {
        for (const s of held) s.destroy();
        const load = tls.probes.load;
        return load.running === 0 && load.waiting === 0;
      });
      expect(accepted).toBe(4);
      await waitFor('the failures to be judged', () => warned('does not prove').length > 0);
      await settle();
      expect(warned('does not prove')).toHaveLength(1);
      expect(names(pods)).toEqual([]);

      // Signed, as a pod with TLS signs its heartbeats: once proven, only those count.
      const signer = new HeartbeatSigner(() => fs.readFileSync(podFiles.keyFile));
      pods.update(signer.sign(hb('pod-real', realAddress)), 100);
      await waitFor('the real pod to prove its address', () => {
        pods.update(signer.sign(hb('pod-real', realAddress)), 100);
        return names(pods).length > 0;
      });
      expect(names(pods)).toEqual([`pod-real@${realAddress}`]);
    } finally {
      for (const s of held) s.destroy();
      await Promise.all([real, ...silent].map((s) => new Promise((r) => s.close(r))));
      tls.close();
      pki.cleanup();
    }
  });
});
