// The pods placement may use: every heartbeat without TLS; with TLS, only one whose address proved
// the identity it claims, and a proven pod stays where it proved it while its heartbeats come.
import type { Heartbeat } from '../../../../lib/events';
import { ListeningClock } from '../../../../lib/listening-clock';
import { silentLogger } from '../../../../lib/log';
import type { TlsFiles } from '../../../../lib/tls';
import { PlacementPods } from '../../../../services/registry/placement/placement-pods';

const hb = (pod: string, address: string, state: Heartbeat['state'] = 'serving'): Heartbeat => ({
  schema: 1, pod, address, state, inflight: 0, time: '', models: [], memory: { budgetBytes: 100, usedBytes: 0, rssBytes: 0 },
});
const settle = () => new Promise((r) => setImmediate(r));

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
  const names = (pods: PlacementPods) => pods.list().map((p) => `${p.heartbeat.pod}@${p.heartbeat.address}`);

  beforeEach(() => {
    now = 1_000_000;
    certificates = new Map([['a:1', ['spiffe://infermesh/pod/pod-a']], ['b:1', ['spiffe://infermesh/pod/pod-b']]]);
    probes = [];
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

  it('keeps at most its bound of pods', () => {
    const pods = new PlacementPods(5_000, 2, undefined, silentLogger, clock, probe);
    for (const p of ['p1', 'p2', 'p3']) pods.update(hb(p, `${p}:1`), 100);
    expect(names(pods)).toEqual(['p1@p1:1', 'p2@p2:1']);
  });
});
