// The pods placement may use: every heartbeat without TLS; with TLS, only one whose address proved
// the identity it claims, and a proven pod stays where it proved it while its heartbeats come; a
// flood of invented pods, over real TLS, costs no more probes than the process's bound, and a line
// of log per kind of refusal.
import fs from 'node:fs';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { loadConfig } from '../../../../lib/config';
import type { Heartbeat } from '../../../../lib/events';
import { ListeningClock } from '../../../../lib/listening-clock';
import { createLogger, silentLogger } from '../../../../lib/log';
import { loadTls, type TlsFiles } from '../../../../lib/tls';
import { PlacementPods } from '../../../../services/registry/placement/placement-pods';
import { startTestPki } from '../../../helpers/pki';
import { waitFor } from '../../../helpers/wait';

const hb = (pod: string, address: string, state: Heartbeat['state'] = 'serving'): Heartbeat => ({
  schema: 1, pod, address, state, inflight: 0, time: '', models: [], memory: { budgetBytes: 100, usedBytes: 0, rssBytes: 0 },
});
const settle = () => new Promise((r) => setImmediate(r));
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
    return ids ? Promise.resolve(ids) : Promise.reject(new Error('handshake failed'));
  };

  beforeEach(() => {
    now = 1_000_000;
    certificates = new Map([['a:1', ['spiffe://infermesh/pod/pod-a']], ['b:1', ['spiffe://infermesh/pod/pod-b']]]);
    probes = [];
  });

  it('while heartbeats cannot arrive (NATS away or hung), takes no pod away, so no version moves off one; a fresh TTL when they can', () => {
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
    const pods = new PlacementPods(5_000, 10, {} as TlsFiles, silentLogger, clock, probe);
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

  it('with TLS, keeps a proven pod at its address: a heartbeat or a goodbye for it from elsewhere is ignored', async () => {
    certificates.set('x:9', ['spiffe://infermesh/pod/pod-a']);
    const pods = new PlacementPods(5_000, 10, {} as TlsFiles, silentLogger, clock, probe);
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
    const pods = new PlacementPods(5_000, 10, {} as TlsFiles, silentLogger, clock, probe, listening);
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
    const pods = new PlacementPods(5_000, 10_000, {} as TlsFiles, silentLogger, clock, bounded);
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

      pods.update(hb('pod-real', realAddress), 100);
      await waitFor('the real pod to prove its address', () => {
        pods.update(hb('pod-real', realAddress), 100);
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
