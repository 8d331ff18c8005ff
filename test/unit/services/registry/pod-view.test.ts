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

  it('on a listening clock, keeps the pods through a stall of its loop past the TTL, and forgets one a TTL of listening after it stopped', () => {
    const listening = new ListeningClock(150, () => wall);
    const view = new PodView(1_500, 10, 10_000, () => wall, listening.now);
    // The same stall on the wall clock alone: the expiry that runs first after it forgets both.
    const onWall = new PodView(1_500, 10, 10_000, () => wall);
    for (const v of [view, onWall]) v.update(hb('pod-a'), 100), v.update(hb('pod-b'), 100);
    wall += 4_000;
    view.expire();
    onWall.expire();
    expect(names(view)).toEqual(['pod-a', 'pod-b']);
    expect(names(onWall)).toEqual([]);
    // The heartbeats queued during the stall are read; pod-b's stopped coming before it.
    view.update(hb('pod-a'), 100);
    // The time shown is still the wall clock's.
    expect(view.list()[0]!.seenAt).toBe(wall);
    // The stall counted one tick of listening; eight more make 1.35 s since pod-b's last heartbeat.
    for (let i = 0; i < 8; i++) {
      wall += 150;
      view.update(hb('pod-a'), 100);
      view.expire();
    }
    expect(names(view)).toEqual(['pod-a', 'pod-b']);
    for (let i = 0; i < 2; i++) {
      wall += 150;
      view.update(hb('pod-a'), 100);
      view.expire();
    }
    expect(names(view)).toEqual(['pod-a']);
  });
});
