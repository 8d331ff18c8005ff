import { VersionStats } from '../../../../services/router/version-stats';
import type { WindowReport } from '../../../../lib/window-stats';

describe('VersionStats: what each window was routed by', () => {
  const v1 = [{ version: 1, weight: 100 }];
  const step = [{ version: 1, weight: 50 }, { version: 2, weight: 50 }];

  function stats() {
    let now = 10_000;
    const reports: WindowReport[] = [];
    const s = new VersionStats('r1', 1_000, (r) => reports.push(r), () => now);
    return { s, reports, at: (ms: number) => (now = ms) };
  }

  it('says the split in force all window, a change within it, and no split before one was read', () => {
    const { s, reports, at } = stats();
    s.record('m', 1, 'ok', 1, true);
    s.routedBy('m', 5, v1);
    at(11_000);
    s.record('m', 1, 'ok', 1, true);
    // The same weights at a newer revision are no change.
    s.routedBy('m', 6, v1);
    at(11_500);
    s.routedBy('m', 7, step);
    at(12_000);
    s.record('m', 2, 'ok', 1, true);
    at(13_000);
    s.roll();
    expect(reports.map((r) => [r.windowStart, r.routedBy])).toEqual([
      [10_000, [{ revision: 0, traffic: [] }, { revision: 5, traffic: v1 }]],
      [11_000, [{ revision: 6, traffic: v1 }, { revision: 7, traffic: step }]],
      [12_000, [{ revision: 7, traffic: step }]],
    ]);
  });

  it('keeps the first and the latest splits of a window that changed many times', () => {
    const { s, reports, at } = stats();
    s.routedBy('m', 1, v1);
    at(11_000);
    s.record('m', 1, 'ok', 1, true);
    for (let i = 0; i < 20; i++) s.routedBy('m', 2 + i, [{ version: 1, weight: 100 - i }, { version: 2, weight: i }]);
    at(12_000);
    s.roll();
    const routedBy = reports[0]!.routedBy!;
    expect(routedBy).toHaveLength(8);
    expect(routedBy[0]).toEqual({ revision: 1, traffic: v1 });
    expect(routedBy.at(-1)!.revision).toBe(21);
  });
});

describe('VersionStats: what it keeps of models that go', () => {
  it('lets go of a deleted model\'s metric attributes, and of a version that leaves the split', () => {
    const s = new VersionStats('r1', 1_000, () => undefined, () => 10_000);
    s.routedBy('kept', 1, [{ version: 1, weight: 100 }]);
    s.record('kept', 1, 'ok', 1, true);
    const before = s.attributedModels;
    expect(before).toBe(1);
    // A tenant pushing and deleting models in a loop: each is served, then deleted (an empty split).
    for (let i = 0; i < 100; i++) {
      s.routedBy(`m${i}`, 1, [{ version: 1, weight: 100 }]);
      s.record(`m${i}`, 1, 'ok', 1, true);
      s.record(`m${i}`, 1, 'error', 1, false);
      s.routedBy(`m${i}`, 2, []);
    }
    expect(s.attributedModels).toBe(before);
    // A version archived: the model stays while another version serves; once both leave, it goes.
    s.routedBy('two', 1, [{ version: 1, weight: 50 }, { version: 2, weight: 50 }]);
    s.record('two', 1, 'ok', 1, true);
    s.routedBy('two', 2, [{ version: 2, weight: 100 }]);
    expect(s.attributedModels).toBe(before);
    s.record('two', 2, 'ok', 1, true);
    expect(s.attributedModels).toBe(before + 1);
    s.routedBy('two', 3, []);
    expect(s.attributedModels).toBe(before);
  });

  it('keeps none for a call that ends after its model was deleted, or a version outside the split', () => {
    const s = new VersionStats('r1', 1_000, () => undefined, () => 10_000);
    for (let i = 0; i < 100; i++) {
      s.routedBy(`m${i}`, 1, [{ version: 1, weight: 100 }]);
      // Deleted while a request routed to it is still in flight, which ends after.
      s.routedBy(`m${i}`, 2, []);
      s.record(`m${i}`, 1, 'ok', 1, true);
      s.record(`m${i}`, 1, 'deadline_exceeded', 1, false);
    }
    expect(s.attributedModels).toBe(0);
    // A request naming a version the split does not hold, and one for a model whose split is unknown.
    s.routedBy('m', 3, [{ version: 1, weight: 100 }]);
    s.record('m', 2, 'ok', 1, false);
    s.record('unknown', 1, 'error', 1, false);
    expect(s.attributedModels).toBe(0);
    s.record('m', 1, 'ok', 1, true);
    expect(s.attributedModels).toBe(1);
  });
});
