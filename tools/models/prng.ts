// Seeded pseudo-random numbers, so every generated model has the same bytes on every run.

// A module constant, not Math.imul in the loop: global lookups are slow in jest's vm context.
const { imul } = Math;

/** A uniform random number source in [0, 1). */
export type Random = () => number;

/** mulberry32: a small, fast 32-bit PRNG; the same seed gives the same sequence. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = imul(t ^ (t >>> 15), t | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal sample (Box–Muller) drawn from `random`. */
export function gaussian(random: Random): number {
  const u = 1 - random(); // (0, 1], so log() stays finite
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** Shuffles `items` in place (Fisher–Yates) with `random`; returns it. */
export function shuffle<T>(items: T[], random: Random): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = items[i] as T;
    items[i] = items[j] as T;
    items[j] = tmp;
  }
  return items;
}

/** `count` values drawn uniformly from [-limit, limit), as float32. */
export function uniformArray(count: number, limit: number, random: Random): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (2 * random() - 1) * limit;
  return out;
}
