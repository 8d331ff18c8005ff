// A router's membership forgets a pod after a TTL without heartbeats, judged on what its loop has read.
import { SCHEMA_VERSION, type Heartbeat } from '../../../../lib/events';
import { ListeningClock } from '../../../../lib/listening-clock';
import { Membership } from '../../../../services/router/membership';

function hb(pod: string): Heartbeat {
  return { schema: SCHEMA_VERSION, pod, address: `${pod}:8002`, state: 'serving', models: [{ name: 'm', version: 1, state: 'READY', provider: 'cpu' }], inflight: 0, time: new Date().toISOString() };
}

describe('Membership expiry', () => {
  // Wall time and the monotonic listening clock far apart: a mix of the two would show.
  let wall: number;
  let mono: number;
  let pending: (() => void)[];
  const reads = () => {
    for (const fn of pending.splice(0)) fn();
  };
  const step = (ms: number) => {
    wall += ms;
    mono += ms;
  };
  const ids = (m: Membership) => m.candidates('m', 1).map((p) => p.id).sort();
  let listening: ListeningClock;
  const membership = (removed: string[] = []) => {
    listening = new ListeningClock(375, () => mono, (fn) => pending.push(fn));
    return new Membership(1_500, { removed: (p) => removed.push(p.id) }, () => wall, false, listening);
  };
  beforeEach(() => {
    wall = 1_700_000_000_000;
    mono = 0;
    pending = [];
  });

  it('keeps the pods through a stall of the router\'s loop past the TTL, and drops one that stopped once the loop has read', () => {
    const removed: string[] = [];
    const m = membership(removed);
    m.update(hb('a'));
    m.update(hb('b'));
    step(5_000);
    m.expire();
    expect(ids(m)).toEqual(['a', 'b']);
    // a's heartbeats queued during the stall are read; b's had stopped.
    m.update(hb('a'));
    reads();
    m.expire();
    expect(ids(m)).toEqual(['a']);
    expect(removed).toEqual(['b']);
  });

  it('drops a pod first heard after a stall a TTL after its last heartbeat, not sooner nor later', () => {
    const m = membership();
    step(5_000);
    m.expire();
    m.update(hb('c'));
    reads();
    for (let i = 0; i < 4; i++) {
      step(375);
      m.expire();
    }
    expect(ids(m)).toEqual(['c']);
    step(1);
    m.expire();
    expect(ids(m)).toEqual([]);
  });

  it('forgets a silent pod though NATS is late now and then (a pause less than a TTL apart)', () => {
    const m = membership();
    m.update(hb('a'));
    // Late for 375 ms in every 1 500: every return once gave each pod a fresh TTL, for ever.
    const tick = () => {
      step(375);
      listening.now();
      reads();
    };
    for (let i = 0; i < 10; i++) {
      for (let t = 0; t < 3; t++) {
        tick();
        m.expire();
      }
      m.setHeartbeatsAvailable(false);
      tick();
      m.setHeartbeatsAvailable(true);
    }
    m.expire();
    expect(ids(m)).toEqual([]);
  });

  it('counts a pod\'s silence on from where it stood when heartbeats come back after NATS was away', () => {
    const m = membership();
    m.update(hb('a'));
    m.setHeartbeatsAvailable(false);
    for (let i = 0; i < 20; i++) {
      step(375);
      // The clock's own tick (start()): nothing else reads it while expiry is off.
      listening.now();
      m.expire();
    }
    expect(ids(m)).toEqual(['a']);
    m.setHeartbeatsAvailable(true);
    for (let i = 0; i < 4; i++) {
      step(375);
      m.expire();
    }
    expect(ids(m)).toEqual(['a']);
    step(1);
    m.expire();
    expect(ids(m)).toEqual([]);
  });

  it('on the wall clock alone, the same stall drops every pod', () => {
    const m = new Membership(1_500, {}, () => wall);
    m.update(hb('a'));
    wall += 5_000;
    m.expire();
    expect(ids(m)).toEqual([]);
  });

  it('times an ejection on the wall clock, whatever the loop lost', () => {
    const m = membership();
    m.update(hb('a'));
    m.all()[0]!.ejectedUntil = wall + 1_000;
    expect(ids(m)).toEqual([]);
    step(5_000);
    m.update(hb('a'));
    expect(ids(m)).toEqual(['a']);
  });
});

describe('Membership bound', () => {
  it('keeps at most its bound of pods: a new one is refused, with why, until one goes; known pods keep speaking', () => {
    const refused: string[] = [];
    const m = new Membership(60_000, { refused: (h, why) => refused.push(`${h.pod}: ${why}`) }, Date.now, false, undefined, 2);
    for (const p of ['a', 'b', 'c', 'd']) m.update(hb(p));
    expect(m.all().map((p) => p.id)).toEqual(['a', 'b']);
    expect(refused).toEqual(['c: 2 pods are known, the most kept', 'd: 2 pods are known, the most kept']);
    m.update(hb('a'));
    expect(m.candidates('m', 1).map((p) => p.id).sort()).toEqual(['a', 'b']);
    m.update({ ...hb('a'), state: 'stopped' });
    m.update(hb('c'));
    expect(m.all().map((p) => p.id).sort()).toEqual(['b', 'c']);
  });

  it('makes room in a full view by its oldest pod that failed its identity check, never by one still to prove itself', () => {
    const refused: string[] = [];
    const m = new Membership(60_000, { admit: () => undefined, refused: (h, why) => refused.push(`${h.pod}: ${why}`) }, Date.now, true, undefined, 3);
    for (const p of ['fake-1', 'fake-2', 'pending']) m.update(hb(p));
    // Invented pods whose addresses did not prove their names; their heartbeats go on.
    for (const p of m.all().filter((x) => x.id.startsWith('fake'))) m.proofFailed(p);
    m.update(hb('fake-1'));
    m.update(hb('fake-2'));
    m.update(hb('real'));
    expect(m.all().map((p) => p.id).sort()).toEqual(['fake-2', 'pending', 'real']);
    m.update(hb('real-2'));
    expect(m.all().map((p) => p.id).sort()).toEqual(['pending', 'real', 'real-2']);
    // No pod failed its check now: a new one waits, as before.
    m.update(hb('real-3'));
    expect(refused).toEqual(['real-3: 3 pods are known, the most kept']);
    // One that proved itself after a failed check is no longer the first to go.
    const pending = m.all().find((p) => p.id === 'pending')!;
    m.proofFailed(pending);
    m.setVerified(pending, true);
    m.update(hb('real-4'));
    expect(m.all().map((p) => p.id).sort()).toEqual(['pending', 'real', 'real-2']);
  });

  it('with identities required, takes a new pod only when its proof can start, and asks nothing of a known one', () => {
    let room = false;
    const asked: string[] = [];
    const refused: string[] = [];
    const m = new Membership(60_000, {
      admit: (h) => {
        asked.push(h.pod);
        return room ? undefined : 'no identity probe';
      },
      refused: (h, why) => refused.push(`${h.pod}: ${why}`),
    }, Date.now, true);
    m.update(hb('a'));
    expect(m.all()).toEqual([]);
    expect(refused).toEqual(['a: no identity probe']);
    room = true;
    m.update(hb('a'));
    room = false;
    m.update(hb('a'));
    expect(m.all().map((p) => p.id)).toEqual(['a']);
    expect(asked).toEqual(['a', 'a']);
  });
});
