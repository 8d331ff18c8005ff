import { powerOfTwoChoices, roundRobin, policies } from '../../../../services/router/balancer';
import type { Pod } from '../../../../services/router/membership';

const pod = (id: string, outstanding: number): Pod => ({ id, address: id, identity: `spiffe://infermesh/pod/${id}`, outstanding, ejectedUntil: 0, failures: 0, healthy: true, ready: new Map(), models: [], byVersion: new Map(), lastHeard: 0 });

/** A deterministic random source cycling through `values`. */
const seq = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length]!;
};

describe('balancing policies', () => {
  it.each([
    ['picks the less loaded of the two sampled pods', [pod('a', 5), pod('b', 1), pod('c', 9)], seq(0, 0), 'b'],
    ['keeps the first on a tie', [pod('a', 2), pod('b', 2)], seq(0, 0), 'a'],
    ['never samples the same pod twice', [pod('a', 0), pod('b', 0), pod('c', 0)], seq(0.99, 0.99), 'c'],
    ['returns the only candidate', [pod('a', 100)], seq(0.5), 'a'],
  ])('p2c %s', (_name, pods, random, want) => {
    expect(powerOfTwoChoices(random).pick(pods).id).toBe(want);
  });

  it('p2c spreads uniform load evenly', () => {
    const pods = [pod('a', 0), pod('b', 0), pod('c', 0)];
    const p2c = powerOfTwoChoices();
    const counts = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const p = p2c.pick(pods);
      p.outstanding++;
      counts.set(p.id, (counts.get(p.id) ?? 0) + 1);
    }
    for (const n of counts.values()) expect(n).toBeGreaterThan(900);
  });

  it('round robin cycles in pod order', () => {
    const rr = roundRobin();
    const pods = [pod('b', 0), pod('a', 0), pod('c', 0)];
    expect([1, 2, 3, 4].map(() => rr.pick(pods).id)).toEqual(['a', 'b', 'c', 'a']);
  });

  it('registers both policies by name', () => {
    expect(Object.keys(policies).sort()).toEqual(['p2c', 'round-robin']);
    expect(policies.p2c!().name).toBe('p2c');
  });
});
