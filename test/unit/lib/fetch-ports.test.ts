// The Fetch standard's bad ports (lib/fetch-ports.ts), checked against Node's own fetch, and the one
// warning the services and `infermesh up` give for a door on one.
import { badPortsBetween, fetchable, refusedPortWarning } from '../../../lib/fetch-ports';

describe('fetch-ports', () => {
  it('names the ports fetch itself refuses', async () => {
    for (const port of [10_080, 6_000]) {
      expect(fetchable(port)).toBe(false);
      await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toMatchObject({ cause: expect.objectContaining({ message: 'bad port' }) });
    }
    expect(fetchable(10_081)).toBe(true);
    expect(fetchable(8_000)).toBe(true);
  });

  it('lists the bad ports of a range in order', () => {
    expect(badPortsBetween(10_000, 32_767)).toEqual([10_080]);
    expect(badPortsBetween(6_600, 6_700)).toEqual([6_665, 6_666, 6_667, 6_668, 6_669, 6_679, 6_697]);
    expect(badPortsBetween(40_000, 65_535)).toEqual([]);
  });

  it('warns of a door on a bad port only', () => {
    expect(refusedPortWarning('the console', 10_080)).toMatch(/^the console is on port 10080, which browsers and fetch\(\) refuse/);
    expect(refusedPortWarning('the console', 8_004)).toBeUndefined();
    expect(refusedPortWarning('the console', undefined)).toBeUndefined();
  });
});
