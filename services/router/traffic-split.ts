// Which version serves a request that names none: the model's traffic split from the registry,
// restricted to versions that some pod has ready. A version not ready anywhere gives its share to
// the others in proportion, so nothing is sent before a pod can serve it; each request it gives
// away is reported (`onUnready`), so rollout analysis can tell a canary that never came up.
import type { TrafficWeight } from '../../lib/events';

export class TrafficSplit {
  /** Each model's split as the registry sent it, and its versions with a weight above 0. */
  private readonly splits = new Map<string, { all: TrafficWeight[]; weighted: TrafficWeight[]; placed: boolean }>();

  constructor(
    private readonly random: () => number = Math.random,
    /** Called for each request the split gave `version` that no pod could take. */
    private readonly onUnready: (model: string, version: number) => void = () => undefined,
  ) {}

  /**
   * Sets (or, with an empty split, forgets) a model's split; `placed`: the registry places its
   * versions, so one no pod holds is loaded when asked for (lazy loading) rather than missing.
   */
  set(model: string, traffic: TrafficWeight[], placed = false): void {
    if (traffic.length === 0) this.splits.delete(model);
    else {
      const all = traffic.map((t) => ({ ...t }));
      this.splits.set(model, { all, weighted: all.filter((t) => t.weight > 0), placed });
    }
  }

  /** Whether `version` of `model` is served and placed: a pod loads it when a request asks. */
  loadable(model: string, version: number): boolean {
    const split = this.splits.get(model);
    return split !== undefined && split.placed && split.all.some((t) => t.version === version);
  }

  /** For a placed model none of whose versions is ready: the version a request goes to, drawn over the whole split. */
  chooseToLoad(model: string): number | undefined {
    const split = this.splits.get(model);
    if (!split?.placed) return undefined;
    return draw(split.weighted, this.random) ?? (split.all.length ? Math.max(...split.all.map((t) => t.version)) : undefined);
  }

  /** The model's split, if the registry has one. */
  get(model: string): readonly TrafficWeight[] | undefined {
    return this.splits.get(model)?.all;
  }

  /**
   * Picks the version for a request without one. Without a known split (registry not reached yet),
   * the newest ready version serves. Undefined when no version is ready.
   */
  choose(model: string, ready: Set<number>): number | undefined {
    const split = this.splits.get(model);
    if (!split) return this.fallback(model, ready);
    // Draw over the whole split first: a draw that lands on a version no pod has ready is its share
    // given away, then redrawn over the ready versions (which keeps their proportions).
    const drawn = draw(split.weighted, this.random);
    if (drawn !== undefined && ready.has(drawn)) return drawn;
    if (drawn !== undefined) this.onUnready(model, drawn);
    return draw(split.weighted.filter((t) => ready.has(t.version)), this.random) ?? this.fallback(model, ready);
  }

  /** No split known, or none of its versions ready: what is serving, newest first. */
  private fallback(model: string, ready: Set<number>): number | undefined {
    const inSplit = this.splits.get(model)?.all.map((t) => t.version).filter((v) => ready.has(v)) ?? [];
    const pool = inSplit.length ? inSplit : [...ready];
    return pool.length ? Math.max(...pool) : undefined;
  }
}

/** A version drawn in proportion to the weights (undefined for an empty split). */
function draw(split: readonly TrafficWeight[], random: () => number): number | undefined {
  if (split.length === 0) return undefined;
  const total = split.reduce((n, t) => n + t.weight, 0);
  let r = random() * total;
  for (const t of split) {
    r -= t.weight;
    if (r < 0) return t.version;
  }
  return split[split.length - 1]!.version;
}
