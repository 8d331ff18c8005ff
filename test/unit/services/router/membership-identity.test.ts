// Membership with TLS on: a pod gets traffic, and what it says is repeated, only once it proved the
// identity its heartbeat claims (its name, or an identity pods sharing a certificate share); a
// check that ends after the pod was replaced changes nothing.
import { SCHEMA_VERSION, type Heartbeat } from '../../../../lib/events';
import { Membership } from '../../../../services/router/membership';
import { podIdentity } from '../../../../lib/tls';

function hb(pod: string, address: string, identity?: string): Heartbeat {
  return { schema: SCHEMA_VERSION, pod, ...(identity !== undefined && { identity }), address, state: 'serving', models: [{ name: 'm', version: 1, state: 'READY', provider: 'cpu' }], inflight: 0, time: new Date().toISOString() };
}

describe('Membership identity', () => {
  it('gives a pod no traffic until it proved its name', () => {
    const m = new Membership(10_000, {}, Date.now, true);
    m.update(hb('a', '10.0.0.1:8002'));
    expect(m.candidates('m', 1)).toEqual([]);
    expect(m.readyVersions('m').size).toBe(0);
    expect(m.versionStates('m')).toEqual([]);
    expect(m.unverified().map((p) => p.id)).toEqual(['a']);
    const pod = m.all()[0]!;
    m.setVerified(pod, true);
    expect(m.candidates('m', 1).map((p) => p.id)).toEqual(['a']);
    expect(m.unverified()).toEqual([]);
    // Later heartbeats from the same address keep the proof.
    m.update(hb('a', '10.0.0.1:8002'));
    expect(m.candidates('m', 1).map((p) => p.id)).toEqual(['a']);
  });

  it('takes nothing from a heartbeat of a proven pod that admits() refuses (its signature): no figure, no goodbye, no end to its silence', () => {
    let now = 0;
    const claimed: string[] = [];
    const admitted = (h: Heartbeat) => h.inflight !== 666;
    const m = new Membership(1_000, { admits: (_pod, h) => admitted(h), claimed: (_pod, h) => claimed.push(h.state) }, () => now, true);
    m.update(hb('a', '10.0.0.1:8002'));
    const pod = m.all()[0]!;
    // Not proven yet: nothing is asked of its heartbeats.
    m.update({ ...hb('a', '10.0.0.1:8002'), inflight: 666 });
    m.setVerified(pod, true);
    const forged = (change: Partial<Heartbeat>): Heartbeat => ({ ...hb('a', '10.0.0.1:8002'), inflight: 666, ...change });
    now = 600;
    m.update(forged({ models: [{ name: 'm', version: 1, state: 'READY', provider: 'cpu', requests: 987_654 }] }));
    m.update(forged({ state: 'stopped' }));
    m.update(forged({ models: [] }));
    expect(pod.byVersion.get('m\u00001')?.requests).toBeUndefined();
    expect(claimed).toEqual([]);
    now = 1_001;
    m.expire();
    expect(m.all()).toEqual([]);
  });

  it('makes a pod that moves to another address prove its name again, and ignores a check of the pod it replaced', () => {
    const m = new Membership(10_000, {}, Date.now, true);
    m.update(hb('a', '10.0.0.1:8002'));
    const first = m.all()[0]!;
    m.setVerified(first, true);
    m.move(hb('a', '10.6.6.6:8002'));
    expect(m.candidates('m', 1)).toEqual([]);
    m.setVerified(first, true); // the old address's check: not this pod
    expect(m.candidates('m', 1)).toEqual([]);
  });

  it('keeps a proven pod where it is when a heartbeat moves it, until the new address proved the name', () => {
    const claims: string[] = [];
    const m = new Membership(10_000, { moveClaimed: (pod, claim, refused) => claims.push(`${pod.address} -> ${claim.address} ${refused}`) }, Date.now, true);
    m.update(hb('a', '10.0.0.1:8002'));
    m.setVerified(m.all()[0]!, true);
    m.update(hb('a', '10.6.6.6:8002'));
    expect(claims).toEqual(['10.0.0.1:8002 -> 10.6.6.6:8002 undefined']);
    expect(m.candidates('m', 1).map((p) => p.address)).toEqual(['10.0.0.1:8002']);
    // A goodbye from another address does not remove it either.
    m.update({ ...hb('a', '10.6.6.6:8002'), state: 'stopped' });
    expect(m.candidates('m', 1).map((p) => p.address)).toEqual(['10.0.0.1:8002']);
    // Proven there: it moves, and proves its name again before traffic.
    expect(m.move(hb('a', '10.6.6.6:8002'))).toBeUndefined();
    expect(m.all().map((p) => [p.address, p.verified])).toEqual([['10.6.6.6:8002', false]]);
    m.update({ ...hb('a', '10.6.6.6:8002'), state: 'stopped' });
    expect(m.all()).toEqual([]);
  });

  it('keys pods by name while pods with different names claim one shared identity, each proving it', () => {
    const m = new Membership(10_000, {}, Date.now, true);
    m.update(hb('inference-a', '10.0.0.1:8002', 'inference'));
    m.update(hb('inference-b', '10.0.0.2:8002', 'inference'));
    m.update(hb('c', '10.0.0.3:8002'));
    expect(m.all().map((p) => [p.id, p.identity])).toEqual([
      ['inference-a', podIdentity('inference')],
      ['inference-b', podIdentity('inference')],
      ['c', podIdentity('c')],
    ]);
    expect(m.candidates('m', 1)).toEqual([]);
    for (const p of m.all()) if (p.id !== 'c') m.setVerified(p, true);
    expect(m.candidates('m', 1).map((p) => p.id)).toEqual(['inference-a', 'inference-b']);
  });

  it('never moves a proven pod to another identity: it says goodbye, or its entry expires, and joins again', () => {
    let now = 1_000;
    const claims: string[] = [];
    const m: Membership = new Membership(10_000, {
      moveClaimed: (pod, claim, refused) => claims.push(`${pod.id} ${claim.identity ?? ''}: ${refused}`),
      // The pod, asked, confirms its goodbye (heartbeat-confirmation.ts asks it).
      claimed: (pod, claim) => claim.state !== 'serving' && m.leave(pod),
    }, () => now, true);
    m.update(hb('a', '10.0.0.1:8002', 'inference'));
    m.setVerified(m.all()[0]!, true);
    // The same address, the pod's own name instead of the shared identity: not what it proved.
    m.update(hb('a', '10.0.0.1:8002'));
    m.update(hb('a', '10.0.0.2:8002', 'other'));
    expect(claims).toEqual([`a : it proved ${podIdentity('inference')}, not ${podIdentity('a')}`, `a other: it proved ${podIdentity('inference')}, not ${podIdentity('other')}`]);
    // Even once the claimed address proved the claimed identity.
    expect(m.move(hb('a', '10.0.0.2:8002', 'other'))).toBe(`it proved ${podIdentity('inference')}, not ${podIdentity('other')}`);
    expect(m.candidates('m', 1).map((p) => [p.id, p.address, p.identity])).toEqual([['a', '10.0.0.1:8002', podIdentity('inference')]]);
    // A goodbye claiming another identity does not count; one with the proven claim does.
    m.update({ ...hb('a', '10.0.0.1:8002', 'other'), state: 'stopped' });
    expect(m.all()).toHaveLength(1);
    m.update({ ...hb('a', '10.0.0.1:8002', 'inference'), state: 'draining' });
    expect(m.all()).toEqual([]);
    // Restarted with its own certificate: it joins afresh and proves its name.
    m.update(hb('a', '10.0.0.2:8002'));
    expect(m.all().map((p) => [p.address, p.identity, p.verified])).toEqual([['10.0.0.2:8002', podIdentity('a'), false]]);
    m.setVerified(m.all()[0]!, true);
    // Gone without a goodbye, back with another identity: what it claims is ignored (and does not
    // keep the old entry alive) until the old entry expires; then it joins afresh.
    now += 6_000;
    m.update(hb('a', '10.0.0.3:8002', 'inference'));
    now += 6_000;
    m.expire();
    expect(m.all()).toEqual([]);
    m.update(hb('a', '10.0.0.3:8002', 'inference'));
    expect(m.all().map((p) => [p.address, p.identity, p.verified])).toEqual([['10.0.0.3:8002', podIdentity('inference'), false]]);
  });

  it('never moves a proven pod to an address another known pod holds, proven or not', () => {
    const claims: string[] = [];
    const m = new Membership(10_000, { moveClaimed: (pod, claim, refused) => claims.push(`${pod.id} ${claim.address}: ${refused}`) }, Date.now, true);
    m.update(hb('a', '10.0.0.1:8002'));
    m.update(hb('b', '10.0.0.2:8002'));
    m.update(hb('c', '10.0.0.3:8002', 'inference'));
    m.update(hb('d', '10.0.0.4:8002', 'inference'));
    for (const p of m.all()) if (p.id !== 'd') m.setVerified(p, true);
    // b onto a's address, claiming a's identity (which that address proves): b's calls would go to a.
    m.update(hb('b', '10.0.0.1:8002', 'a'));
    // The same with a shared identity, which every peer's address proves; d has not proven it yet.
    m.update(hb('c', '10.0.0.1:8002', 'inference'));
    m.update(hb('c', '10.0.0.4:8002', 'inference'));
    expect(claims).toEqual([
      `b 10.0.0.1:8002: it proved ${podIdentity('b')}, not ${podIdentity('a')}`,
      'c 10.0.0.1:8002: pod a is at 10.0.0.1:8002',
      'c 10.0.0.4:8002: pod d is at 10.0.0.4:8002',
    ]);
    // Refused too when the claimed address proved the claimed identity.
    expect(m.move(hb('b', '10.0.0.1:8002', 'a'))).toBe(`it proved ${podIdentity('b')}, not ${podIdentity('a')}`);
    expect(m.move(hb('c', '10.0.0.1:8002', 'inference'))).toBe('pod a is at 10.0.0.1:8002');
    expect(m.move(hb('c', '10.0.0.4:8002', 'inference'))).toBe('pod d is at 10.0.0.4:8002');
    expect(m.candidates('m', 1).map((p) => `${p.id}@${p.address}`)).toEqual(['a@10.0.0.1:8002', 'b@10.0.0.2:8002', 'c@10.0.0.3:8002']);
    // Once the address is free (its pod said goodbye), c may move there.
    m.update({ ...hb('d', '10.0.0.4:8002', 'inference'), state: 'stopped' });
    expect(m.move(hb('c', '10.0.0.4:8002', 'inference'))).toBeUndefined();
    expect(m.all().map((p) => `${p.id}@${p.address}`)).toEqual(['a@10.0.0.1:8002', 'b@10.0.0.2:8002', 'c@10.0.0.4:8002']);
  });

  it('makes a pod that has not proven anything start afresh when its claimed identity changes', () => {
    const removed: string[] = [];
    const m = new Membership(10_000, { removed: (p) => removed.push(p.identity) }, Date.now, true);
    m.update(hb('a', '10.0.0.1:8002'));
    m.update(hb('a', '10.0.0.1:8002', 'inference'));
    expect(removed).toEqual([podIdentity('a')]);
    expect(m.all().map((p) => [p.identity, p.verified])).toEqual([[podIdentity('inference'), false]]);
  });

  it('hands a proven pod\'s goodbye and changes of its versions to claimed(), and applies only the pod\'s own answer', () => {
    const claims: string[] = [];
    const proven: string[] = [];
    const m = new Membership(10_000, { claimed: (pod, claim) => claims.push(`${pod.id} ${claim.state} ${claim.models.map((x) => `${x.version}:${x.state}`).join(',')}`), proven: (pod) => proven.push(pod.id) }, Date.now, true);
    m.update(hb('a', '10.0.0.1:8002'));
    // Not proven yet: its heartbeats are taken as they come (it gets no traffic anyway).
    m.update({ ...hb('a', '10.0.0.1:8002'), models: [] });
    expect(m.all()[0]!.models).toEqual([]);
    m.update(hb('a', '10.0.0.1:8002'));
    const pod = m.all()[0]!;
    m.setVerified(pod, true);
    m.setVerified(pod, true);
    expect(proven).toEqual(['a']);
    // A goodbye, an empty list, a version more, a reason: claims, nothing changes.
    m.update({ ...hb('a', '10.0.0.1:8002'), state: 'draining' });
    m.update({ ...hb('a', '10.0.0.1:8002'), models: [] });
    m.update({ ...hb('a', '10.0.0.1:8002'), models: [...hb('a', '').models, { name: 'm', version: 2, state: 'READY', provider: 'cpu' }] });
    m.update({ ...hb('a', '10.0.0.1:8002'), models: [{ name: 'm', version: 1, state: 'UNAVAILABLE', provider: '', reason: 'failed to load' }] });
    // Naming a version twice (READY, then UNAVAILABLE) is a change too.
    m.update({ ...hb('a', '10.0.0.1:8002'), models: [...hb('a', '').models, { name: 'm', version: 1, state: 'UNAVAILABLE', provider: '' }] });
    expect(claims).toEqual(['a draining 1:READY', 'a serving ', 'a serving 1:READY,2:READY', 'a serving 1:UNAVAILABLE', 'a serving 1:READY,1:UNAVAILABLE']);
    expect(m.candidates('m', 1)).toEqual([pod]);
    expect(m.candidates('m', 2)).toEqual([]);
    expect(m.loadFailure('m', 1)).toBeUndefined();
    // Load figures alone are taken from the heartbeat.
    m.update({ ...hb('a', '10.0.0.1:8002'), models: [{ name: 'm', version: 1, state: 'READY', provider: 'cpu', inflight: 3 }] });
    expect(claims).toHaveLength(5);
    expect(pod.models[0]?.inflight).toBe(3);
    // The pod's answer applies, to this pod only.
    m.setModels(pod, [{ name: 'm', version: 2, state: 'READY', provider: '' }]);
    expect(m.candidates('m', 1)).toEqual([]);
    expect(m.candidates('m', 2)).toEqual([pod]);
    m.leave(pod);
    expect(m.all()).toEqual([]);
    m.update(hb('a', '10.0.0.1:8002'));
    m.setModels(pod, []);
    m.leave(pod);
    expect(m.all().map((p) => p.models.length)).toEqual([1]);
  });

  it('keeps a pod whose probe is running through goodbyes and claims of another address, and decides them when the probe ends', () => {
    const said: string[] = [];
    let probing = true;
    const m = new Membership(10_000, {
      proving: () => probing,
      claimed: (pod, claim) => said.push(`claimed ${pod.id}@${pod.address} ${claim.state}`),
      moveClaimed: (pod, claim, refused) => said.push(`move ${pod.id}@${pod.address} -> ${claim.address} ${refused}`),
      removed: (pod) => said.push(`removed ${pod.id}@${pod.address}`),
    }, Date.now, true);
    m.update(hb('a', '10.0.0.1:8002'));
    const pod = m.all()[0]!;
    // Heartbeats in its name while its probe runs: a goodbye, another address, another identity.
    for (let i = 0; i < 100; i++) {
      m.update({ ...hb('a', '10.0.0.1:8002'), state: 'draining' });
      m.update(hb('a', '10.6.6.6:8002'));
      m.update(hb('a', '10.0.0.1:8002', 'inference'));
    }
    expect(m.all()).toEqual([pod]);
    expect(said).toEqual([]);
    // Proven: they are claims about a proven pod, asked of it (the goodbye) or checked (the move).
    probing = false;
    m.setVerified(pod, true);
    expect(said).toEqual(['claimed a@10.0.0.1:8002 draining', `move a@10.0.0.1:8002 -> 10.0.0.1:8002 it proved ${podIdentity('a')}, not ${podIdentity('inference')}`]);
    expect(m.candidates('m', 1)).toEqual([pod]);

    // A probe that fails: what waited applies, the latest of each kind.
    said.length = 0;
    probing = true;
    m.update(hb('b', '10.0.0.2:8002'));
    const b = m.all().find((p) => p.id === 'b')!;
    m.update({ ...hb('b', '10.0.0.2:8002'), state: 'stopped' });
    m.update(hb('b', '10.0.0.3:8002'));
    m.update(hb('b', '10.0.0.4:8002'));
    expect(m.all().find((p) => p.id === 'b')).toBe(b);
    probing = false;
    m.proofFailed(b);
    expect(said).toEqual(['removed b@10.0.0.2:8002']);
    expect(m.all().filter((p) => p.id === 'b').map((p) => [p.address, p.verified])).toEqual([['10.0.0.4:8002', false]]);
    // With no probe running, a goodbye of a pod not proven applies at once.
    m.update({ ...hb('b', '10.0.0.4:8002'), state: 'stopped' });
    expect(m.all().map((p) => p.id)).toEqual(['a']);
  });

  it('needs no proof with TLS off, and takes goodbyes and versions as heartbeats say them', () => {
    const claims: string[] = [];
    const m = new Membership(10_000, { claimed: (pod) => claims.push(pod.id) });
    m.update(hb('a', '10.0.0.1:8002'));
    m.update({ ...hb('a', '10.0.0.1:8002'), models: [{ name: 'm', version: 2, state: 'READY', provider: 'cpu' }] });
    expect(m.candidates('m', 2).map((p) => p.id)).toEqual(['a']);
    m.update({ ...hb('a', '10.0.0.1:8002'), state: 'stopped' });
    expect(m.all()).toEqual([]);
    expect(claims).toEqual([]);
  });

  it('needs no proof with TLS off', () => {
    const m = new Membership(10_000);
    m.update(hb('a', '10.0.0.1:8002'));
    expect(m.candidates('m', 1).map((p) => p.id)).toEqual(['a']);
    expect(m.all()[0]!.verified).toBeUndefined();
  });
});
