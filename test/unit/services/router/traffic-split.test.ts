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

  it('falls back to the newest ready version without a split, and to nothing without pods', () => {
    const split = new TrafficSplit();
    expect(split.choose('m', new Set([1, 5, 2]))).toBe(5);
    expect(split.choose('m', new Set())).toBeUndefined();
    split.set('m', [{ version: 1, weight: 100 }]);
    split.set('m', []);
    expect(split.get('m')).toBeUndefined();
  });
});
