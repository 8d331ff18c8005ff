// Which version serves a request that names none: the model's traffic split from the registry,
// restricted to versions that some pod has ready. A version not ready anywhere gives its share to
// the others in proportion, so nothing is sent before a pod can serve it.
import type { TrafficWeight } from '../../lib/events';

export class TrafficSplit {
  private readonly splits = new Map<string, TrafficWeight[]>();

  constructor(private readonly random: () => number = Math.random) {}

  /** Sets (or, with an empty split, forgets) a model's split. */
  set(model: string, traffic: TrafficWeight[]): void {
    if (traffic.length === 0) this.splits.delete(model);
    else this.splits.set(model, traffic.map((t) => ({ ...t })));
  }

  /** The model's split, if the registry has one. */
  get(model: string): readonly TrafficWeight[] | undefined {
    return this.splits.get(model);
  }

  /**
   * Picks the version for a request without one. Without a known split (registry not reached yet),
   * the newest ready version serves. Undefined when no version is ready.
   */
  choose(model: string, ready: Set<number>): number | undefined {
    const split = this.splits.get(model)?.filter((t) => ready.has(t.version) && t.weight > 0);
    if (!split || split.length === 0) {
      // No split, or none of its versions ready yet: fall back to what is serving.
      const inSplit = this.splits.get(model)?.map((t) => t.version).filter((v) => ready.has(v)) ?? [];
      const pool = inSplit.length ? inSplit : [...ready];
      return pool.length ? Math.max(...pool) : undefined;
    }
    const total = split.reduce((n, t) => n + t.weight, 0);
    let r = this.random() * total;
    for (const t of split) {
      r -= t.weight;
      if (r < 0) return t.version;
    }
    return split[split.length - 1]!.version;
  }
}
