// The wait before a pod loads a failed version again: base × 2^(failures−1), capped.
import { loadRetryDelayMs } from '../../../../services/inference/model-repository';

it.each([
  [1, 1_000], [2, 2_000], [3, 4_000], [9, 256_000], [10, 300_000], [11, 300_000], [1_000, 300_000],
])('with the defaults (1 s doubling to 5 min), failure %i waits %i ms', (failures, ms) => {
  expect(loadRetryDelayMs({ baseMs: 1_000, maxMs: 300_000 }, failures)).toBe(ms);
});

it('never waits less than the base or more than the maximum', () => {
  expect(loadRetryDelayMs({ baseMs: 200, maxMs: 800 }, 0)).toBe(200);
  expect(loadRetryDelayMs({ baseMs: 500, maxMs: 300 }, 1)).toBe(300);
});
