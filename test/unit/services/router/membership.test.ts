// A router's membership forgets a pod after a TTL without heartbeats, judged on its listening clock.
import { SCHEMA_VERSION, type Heartbeat } from '../../../../lib/events';
import { ListeningClock } from '../../../../lib/listening-clock';
import { Membership } from '../../../../services/router/membership';

function hb(pod: string): Heartbeat {
  return { schema: SCHEMA_VERSION, pod, address: `${pod}:8002`, state: 'serving', models: [{ name: 'm', version: 1, state: 'READY', provider: 'cpu' }], inflight: 0, time: new Date().toISOString() };
}

describe('Membership expiry', () => {
  let wall: number;
  const ids = (m: Membership) => m.candidates('m', 1).map((p) => p.id).sort();
  beforeEach(() => {
    wall = 1_000_000;
  });

  it('keeps the pods through a stall of the router\'s loop past the TTL, and drops one a TTL of listening after it stopped', () => {
    const removed: string[] = [];
    const listening = new ListeningClock(375, () => wall);
    const m = new Membership(1_500, { removed: (p) => removed.push(p.id) }, () => wall, false, listening.now);
    m.update(hb('a'));
    m.update(hb('b'));
    wall += 5_000;
    m.expire();
    expect(ids(m)).toEqual(['a', 'b']);
    // The stall counted one tick; two more make 1.125 s since b's last heartbeat, a third 1.5 s.
    for (let i = 0; i < 2; i++) {
      wall += 375;
      m.update(hb('a'));
      m.expire();
    }
    expect(ids(m)).toEqual(['a', 'b']);
    wall += 376;
    m.update(hb('a'));
    m.expire();
    expect(ids(m)).toEqual(['a']);
    expect(removed).toEqual(['b']);
  });

  it('on the wall clock alone, the same stall drops every pod', () => {
    const m = new Membership(1_500, {}, () => wall);
    m.update(hb('a'));
    wall += 5_000;
    m.expire();
    expect(ids(m)).toEqual([]);
  });

  it('an ejection is timed on the wall clock, whatever the loop lost', () => {
    const listening = new ListeningClock(375, () => wall);
    const m = new Membership(1_500, {}, () => wall, false, listening.now);
    m.update(hb('a'));
    const pod = m.all()[0]!;
    pod.ejectedUntil = wall + 1_000;
    expect(ids(m)).toEqual([]);
    wall += 5_000;
    m.update(hb('a'));
    expect(ids(m)).toEqual(['a']);
  });
});
