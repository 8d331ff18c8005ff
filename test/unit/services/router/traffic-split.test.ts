import { TrafficSplit } from '../../../../services/router/traffic-split';

describe('TrafficSplit', () => {
  it('splits by weight among ready versions', () => {
    let r = 0;
    const split = new TrafficSplit(() => r);
    split.set('m', [{ version: 3, weight: 90 }, { version: 4, weight: 10 }]);
    const ready = new Set([3, 4]);
    r = 0.0; expect(split.choose('m', ready)).toBe(3);
    r = 0.899; expect(split.choose('m', ready)).toBe(3);
    r = 0.9; expect(split.choose('m', ready)).toBe(4);
    r = 0.999; expect(split.choose('m', ready)).toBe(4);
  });

  it('gives a version that is not ready its share to the others', () => {
    const split = new TrafficSplit(() => 0.95);
    split.set('m', [{ version: 3, weight: 90 }, { version: 4, weight: 10 }]);
    expect(split.choose('m', new Set([3]))).toBe(3);
  });

  it('reports each request a version not ready anywhere gave away, keeping the ready ones\' proportions', () => {
    const unready: string[] = [];
    let draws = [0.0];
    const split = new TrafficSplit(() => draws.shift()!, (model, version) => unready.push(`${model}:${version}`));
    split.set('m', [{ version: 3, weight: 60 }, { version: 4, weight: 20 }, { version: 5, weight: 20 }]);
    const ready = new Set([3, 5]);
    // Lands on 3 (ready): nothing given away.
    expect(split.choose('m', ready)).toBe(3);
    // Lands on 4 (not ready): reported, then redrawn over 3 and 5 at 60:20.
    draws = [0.7, 0.74];
    expect(split.choose('m', ready)).toBe(3);
    draws = [0.7, 0.76];
    expect(split.choose('m', ready)).toBe(5);
    expect(unready).toEqual(['m:4', 'm:4']);
    // Nothing of the split ready: each draw is reported and nothing serves.
    draws = [0.1];
    expect(split.choose('m', new Set())).toBeUndefined();
    expect(unready).toEqual(['m:4', 'm:4', 'm:3']);
    // A version at weight 0 is never drawn, so never reported.
    split.set('m', [{ version: 3, weight: 100 }, { version: 4, weight: 0 }]);
    draws = [0.99];
    expect(split.choose('m', new Set([3]))).toBe(3);
    expect(unready).toHaveLength(3);
  });

  it('falls back to the newest ready version without a split, and to nothing without pods', () => {
    const split = new TrafficSplit();
    expect(split.choose('m', new Set([1, 5, 2]))).toBe(5);
    expect(split.choose('m', new Set())).toBeUndefined();
    split.set('m', [{ version: 1, weight: 100 }]);
    split.set('m', []);
    expect(split.get('m')).toBeUndefined();
  });
});
