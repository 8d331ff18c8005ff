// The registry's view of the pods: forgotten after a TTL of silence, judged on its listening clock.
import type { Heartbeat } from '../../../../lib/events';
import { ListeningClock } from '../../../../lib/listening-clock';
import { PodView } from '../../../../services/registry/pod-view';

const hb = (pod: string, state: Heartbeat['state'] = 'serving'): Heartbeat => ({
  schema: 1, pod, address: `${pod}:1`, state, inflight: 0, time: '', models: [], memory: { budgetBytes: 100, usedBytes: 0, rssBytes: 0 },
});

describe('PodView', () => {
  let wall: number;
  const names = (view: PodView) => view.list().map((p) => p.heartbeat.pod);
  beforeEach(() => {
    wall = 1_000_000;
  });

  it('forgets a pod at its goodbye, and after the TTL without a heartbeat', () => {
    const view = new PodView(1_500, 10, 10_000, () => wall);
    view.update(hb('pod-a'), 100);
    view.update(hb('pod-b'), 100);
    wall += 1_000;
    view.update(hb('pod-b', 'stopped'), 100);
    expect(names(view)).toEqual(['pod-a']);
    wall += 499;
    view.expire();
    expect(names(view)).toEqual(['pod-a']);
    wall += 2;
    view.expire();
    expect(names(view)).toEqual([]);
  });

  it('on a listening clock, keeps the pods through a stall of its loop past the TTL, and forgets one a TTL after it stopped', () => {
    // The listening clock is monotonic and far from the wall clock: a mix of the two would show.
    let mono = 0;
    const pending: (() => void)[] = [];
    const reads = () => {
      for (const fn of pending.splice(0)) fn();
    };
    const listening = new ListeningClock(150, () => mono, (fn) => pending.push(fn));
    const view = new PodView(1_500, 10, 10_000, () => wall, listening);
    const step = (ms: number) => {
      wall += ms;
      mono += ms;
    };
    // The same stall on the wall clock alone: the expiry that runs first after it forgets both.
    const onWall = new PodView(1_500, 10, 10_000, () => wall);
    for (const v of [view, onWall]) v.update(hb('pod-a'), 100), v.update(hb('pod-b'), 100);
    step(4_000);
    view.expire();
    onWall.expire();
    expect(names(view)).toEqual(['pod-a', 'pod-b']);
    expect(names(onWall)).toEqual([]);
    // The loop reads what queued during the stall: pod-a's heartbeats; pod-b's had stopped before.
    view.update(hb('pod-a'), 100);
    reads();
    // The time shown is the wall clock's.
    expect(view.list()[0]!.seenAt).toBe(wall);
    view.expire();
    expect(names(view)).toEqual(['pod-a']);
    // A pod first heard after the stall goes a TTL after its last heartbeat, not sooner nor later.
    view.update(hb('pod-c'), 100);
    for (let i = 0; i < 10; i++) {
      step(150);
      view.update(hb('pod-a'), 100);
      view.expire();
    }
    expect(names(view)).toEqual(['pod-a', 'pod-c']);
    step(1);
    view.expire();
    expect(names(view)).toEqual(['pod-a']);
  });

  it('forgets no pod while heartbeats cannot arrive (NATS away or hung), and counts each one\'s silence on from where it stood when they can', () => {
    const view = new PodView(1_500, 10, 10_000, () => wall);
    view.update(hb('pod-a'), 100);
    view.update(hb('pod-b'), 100);
    wall += 1_000;
    view.setHeartbeatsAvailable(false);
    wall += 10_000;
    view.expire();
    expect(names(view)).toEqual(['pod-a', 'pod-b']);
    view.setHeartbeatsAvailable(true);
    view.update(hb('pod-a'), 100);
    // pod-b was silent 1 000 ms before NATS went away: 499 more are within the TTL, 501 are not.
    wall += 499;
    view.expire();
    expect(names(view)).toEqual(['pod-a', 'pod-b']);
    wall += 2;
    view.expire();
    expect(names(view)).toEqual(['pod-a']);
  });

  it('forgets a silent pod though NATS is late now and then (a pause less than a TTL apart)', () => {
    const view = new PodView(1_500, 10, 10_000, () => wall);
    view.update(hb('pod-b'), 100);
    // Late for 300 ms in every 1 200: every return once gave each pod a fresh TTL, for ever.
    for (let i = 0; i < 10; i++) {
      wall += 900;
      view.expire();
      view.setHeartbeatsAvailable(false);
      wall += 300;
      view.expire();
      view.setHeartbeatsAvailable(true);
    }
    expect(names(view)).toEqual([]);
  });

  it('forgets a pod heard while NATS was late a TTL after NATS answers again, not later', () => {
    const view = new PodView(1_500, 10, 10_000, () => wall);
    view.setHeartbeatsAvailable(false);
    wall += 5_000;
    // A heartbeat that came through a NATS late to answer its probe, the pod's last.
    view.update(hb('pod-a'), 100);
    wall += 5_000;
    view.setHeartbeatsAvailable(true);
    wall += 1_500;
    view.expire();
    expect(names(view)).toEqual(['pod-a']);
    wall += 1;
    view.expire();
    expect(names(view)).toEqual([]);
  });
});
