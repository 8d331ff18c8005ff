// The token cache: bounded in entries and time, and evicted by key id.
import { TokenCache, type Principal } from '../../../../lib/auth';

const p = (id: string): Principal => ({ id, kind: 'key', grants: [] });

describe('TokenCache', () => {
  it('keeps an entry for its TTL, or until its token expires when sooner', () => {
    let now = 1_000;
    const c = new TokenCache(10, 500, () => now);
    c.set('Bearer a', p('a'), 'a');
    c.set('Bearer j', p('j'), undefined, 1_200);
    expect(c.get('Bearer a')).toEqual(p('a'));
    now = 1_199;
    expect(c.get('Bearer j')).toEqual(p('j'));
    now = 1_200;
    expect(c.get('Bearer j')).toBeUndefined();
    expect(c.get('Bearer a')).toEqual(p('a'));
    now = 1_500;
    expect(c.get('Bearer a')).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it('drops the oldest entry when full', () => {
    const c = new TokenCache(3, 60_000);
    for (const t of ['1', '2', '3', '4']) c.set(t, p(t), t);
    expect(c.size).toBe(3);
    expect(c.get('1')).toBeUndefined();
    expect(c.get('4')).toEqual(p('4'));
    // The dropped entry left its key's index too: evicting it touches nothing else.
    c.evictKey('1');
    expect(c.size).toBe(3);
  });

  it('evicts every entry of one key, and only those', () => {
    const c = new TokenCache(10, 60_000);
    c.set('Bearer k1', p('k'), 'k');
    c.set('bearer k1', p('k'), 'k');
    c.set('Bearer other', p('o'), 'o');
    c.evictKey('k');
    expect(c.get('Bearer k1')).toBeUndefined();
    expect(c.get('bearer k1')).toBeUndefined();
    expect(c.get('Bearer other')).toEqual(p('o'));
  });

  it('caches nothing with 0 entries', () => {
    const c = new TokenCache(0, 60_000);
    c.set('x', p('x'), 'x');
    expect(c.get('x')).toBeUndefined();
  });
});
