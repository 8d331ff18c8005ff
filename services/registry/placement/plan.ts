// Placement planning: which pods hold which model versions (ModelMesh's model of many models on few
// pods). Pure: the placement controller gives it the served versions, the pods as their heartbeats
// describe them and the current placement, and writes back what it returns. No I/O, no clock (the
// time is `opts.now`), no randomness: the same input gives the same plan. docs/placement.md has the
// rules in words; the steps of `plan` are numbered the same way.
//
// Cost: O(V log V + C·P) for V versions, P pods and C copies placed, plus, for a copy that needs
// room, a walk of each pod's least-recently-used victims until enough is found. Free memory per
// pod is kept as copies come and go, and each pod's victims are sorted once per plan.

/** One served model version as the planner sees it. key = `${model}@${version}` (versionKey). */
export interface PlanVersion {
  key: string;
  model: string;
  version: number;
  /** Copies it must have (INFERMESH_PLACEMENT_MIN_COPIES or a per-model value); 0 = loaded on first request only. */
  minCopies: number;
  /** Estimated or measured memory of one copy, bytes. */
  memoryBytes: number;
  /** Requests per second over the whole mesh, recent. */
  rate: number;
  /** Never evicted, and held at >= max(minCopies,1) copies: a version in a running rollout (stable and canary). */
  pinned: boolean;
  /** A router is waiting for it now (a request for a version no pod holds): wants >= 1 copy. */
  demanded: boolean;
}

/** What a pod says about one version it holds (loaded, loading, or placed there). */
export interface HeldCopy {
  /** When it was placed on the pod (the controller's record; a load in progress counts as placed). */
  placedAtMs: number;
  /** Its last request on this pod, or when it was loaded. */
  lastUsedMs: number;
  /** Requests in flight on it; never evicted or removed while any are. */
  inflight: number;
  /** Measured on this pod; overrides the version's estimate. */
  memoryBytes?: number;
}

/** One pod as the planner sees it (from its heartbeats). */
export interface PlanPod {
  name: string;
  budgetBytes: number;
  /**
   * Memory the pod holds that no version on it accounts for: session workers set aside with a run
   * or a load past its budget, until they exit (they may never). Used, and no plan can free it;
   * default 0.
   */
  heldBytes?: number;
  /**
   * Per version key currently held (loaded, loading, or placed there): facts for eviction. A copy
   * in `current` with no entry here counts as placed and used just now, so it is kept.
   */
  holds: Map<string, HeldCopy>;
}

/** Tuning of a plan; the controller takes these from INFERMESH_PLACEMENT_* (lib/config.ts). */
export interface PlanOptions {
  /** The time of the plan, epoch ms (the same clock as placedAtMs and lastUsedMs). */
  now: number;
  /** Requests per second one copy is sized for: wanted copies = ceil(rate / requestsPerCopy); 0 or less: rate adds no copies beyond the first. */
  requestsPerCopy: number;
  /** A copy placed less than this long ago is not evicted or removed (hysteresis). */
  minResidencyMs: number;
  /** A copy used less than this long ago is not evicted (LRU only among the idle). */
  evictIdleMs: number;
}

/** Why a copy was placed or taken off. */
export type PlacementChangeReason = 'min_copies' | 'demand' | 'load' | 'cooled' | 'memory' | 'pod_gone' | 'not_served';

/** One copy placed on a pod, or taken off it (`evicted`: for room; `removed`: for any other reason). */
export interface PlacementChange {
  key: string;
  pod: string;
  action: 'placed' | 'removed' | 'evicted';
  reason: PlacementChangeReason;
}

/** What the controller writes. */
export interface Plan {
  /** key -> pod names holding it, sorted; only served versions with >= 1 copy. */
  placement: Map<string, string[]>;
  /** In the order they were decided: step 1's removals, cooling, then per round pods over budget and placements (each after the evictions that made its room). */
  changes: PlacementChange[];
  /** Versions that wanted more copies than memory allowed (with how many they got), e.g. a demanded one with no room: the caller retries later. Most important first. */
  unmet: { key: string; wanted: number; got: number }[];
}

/** The key of a version in a plan: `${model}@${version}`. */
export function versionKey(model: string, version: number): string {
  return `${model}@${version}`;
}

/** A version no pod could ever hold: memoryBytes > the largest budget (the caller refuses it with FAILED_PRECONDITION). No pods: false (nothing is known yet). */
export function tooBigForEveryPod(memoryBytes: number, pods: readonly Pick<PlanPod, 'budgetBytes'>[]): boolean {
  if (pods.length === 0) return false;
  let largest = -Infinity;
  for (const p of pods) largest = Math.max(largest, p.budgetBytes);
  return memoryBytes > largest;
}

const rateOf = (v: PlanVersion): number => (Number.isFinite(v.rate) && v.rate > 0 ? v.rate : 0);
const countOf = (n: number): number => (Number.isFinite(n) && n > 0 ? Math.floor(n) : 0);

/**
 * The copies a version may evict idle copies of others to get, and keeps against eviction:
 * max(minCopies, 1 if pinned or demanded), at most one per pod. Copies beyond it, up to
 * `wantedCopies`, come from free memory only; a version that merely receives requests is kept by
 * its recent use (evictIdleMs), least recently used first, not by its rate.
 */
export function floorCopies(v: PlanVersion, podCount: number): number {
  const atLeastOne = v.pinned || v.demanded ? 1 : 0;
  return Math.min(podCount, Math.max(countOf(v.minCopies), atLeastOne));
}

/** Copies a version wants: max(its floor, ceil(rate / requestsPerCopy)), at most one per pod. */
export function wantedCopies(v: PlanVersion, podCount: number, requestsPerCopy: number): number {
  const rate = rateOf(v);
  const forRate = rate > 0 && requestsPerCopy > 0 ? Math.ceil(rate / requestsPerCopy) : 0;
  return Math.min(podCount, Math.max(floorCopies(v, podCount), forRate));
}

/**
 * Placement order: pinned, then demanded, then by rate (highest first), then by key. The first
 * copies of every version are placed before any second copy (see `plan`).
 */
export function byPriority(a: PlanVersion, b: PlanVersion): number {
  return Number(b.pinned) - Number(a.pinned) || Number(b.demanded) - Number(a.demanded) || rateOf(b) - rateOf(a) || compareStrings(a.key, b.key);
}

/** Code-unit order: the same on every machine, whatever its locale. */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** One copy of a version on a pod, while the plan is made. */
interface Copy {
  v: number;
  p: number;
  bytes: number;
  placedAtMs: number;
  lastUsedMs: number;
  inflight: number;
  alive: boolean;
  /** Placed by this plan: never its victim. */
  fresh: boolean;
  /** Still in its pod's victim list and counted in its victim bytes. */
  victim: boolean;
}

/** Plans placement; see the module comment and docs/placement.md. */
export function plan(versions: readonly PlanVersion[], pods: readonly PlanPod[], current: ReadonlyMap<string, readonly string[]>, opts: PlanOptions): Plan {
  const { now, minResidencyMs, evictIdleMs } = opts;
  const changes: PlacementChange[] = [];

  // Pods by name (a repeated name: the first one); index order is name order, so ties go by name.
  const podList = dedupe(pods, (p) => p.name).sort((a, b) => compareStrings(a.name, b.name));
  const P = podList.length;
  const podIndex = new Map<string, number>(podList.map((p, i) => [p.name, i]));
  const budget = podList.map((p) => (Number.isFinite(p.budgetBytes) ? p.budgetBytes : 0));
  // What no copy accounts for is used from the start: copies fit beside it, and a pod it puts over
  // its budget evicts as one whose copies grew does.
  const used = Float64Array.from(podList, (p) => nonNegative(p.heldBytes));

  // Versions in placement order (a repeated key: the first one).
  const order = dedupe(versions, (v) => v.key).sort(byPriority);
  const V = order.length;
  const versionIndex = new Map<string, number>(order.map((v, i) => [v.key, i]));
  const estimate = order.map((v) => (Number.isFinite(v.memoryBytes) && v.memoryBytes > 0 ? v.memoryBytes : 0));
  const floor = order.map((v) => floorCopies(v, P));
  const wanted = order.map((v) => wantedCopies(v, P, opts.requestsPerCopy));
  const copies: Copy[][] = order.map(() => []);
  // Each pod's victims (see below), least recently used first, and their bytes.
  const victims: Copy[][] = podList.map(() => []);
  const victimHead = new Int32Array(P);
  const victimBytes = new Float64Array(P);

  // The pods that report each version (loaded, loading or placed there): their measured sizes,
  // and a pod that has a version already is preferred for it.
  const reportedOn: number[][] = order.map(() => []);
  for (let p = 0; p < P; p++) {
    for (const key of podList[p]!.holds.keys()) {
      const v = versionIndex.get(key);
      if (v !== undefined) reportedOn[v]!.push(p);
    }
  }
  const bytesOn = (v: number, p: number): number => measured(podList[p]!.holds.get(order[v]!.key)) ?? estimate[v]!;
  const addCopy = (v: number, p: number, placedNow: boolean): Copy => {
    const held = placedNow ? undefined : podList[p]!.holds.get(order[v]!.key);
    const c: Copy = {
      v, p, bytes: bytesOn(v, p),
      placedAtMs: held?.placedAtMs ?? now,
      lastUsedMs: held?.lastUsedMs ?? now,
      inflight: held?.inflight ?? 0,
      alive: true, fresh: placedNow, victim: false,
    };
    copies[v]!.push(c);
    used[p]! += c.bytes;
    return c;
  };
  const dropCopy = (c: Copy, action: PlacementChange['action'], reason: PlacementChangeReason): void => {
    c.alive = false;
    const list = copies[c.v]!;
    list.splice(list.indexOf(c), 1);
    used[c.p]! -= c.bytes;
    if (c.victim) {
      c.victim = false;
      victimBytes[c.p]! -= c.bytes;
    }
    changes.push({ key: order[c.v]!.key, pod: podList[c.p]!.name, action, reason });
  };
  const settled = (c: Copy) => now - c.placedAtMs >= minResidencyMs && c.inflight === 0;
  const idle = (c: Copy) => now - c.lastUsedMs >= evictIdleMs;
  /** A pod over its budget, or a version below its floor. */
  const stillShort = (): boolean => {
    for (let p = 0; p < P; p++) if (used[p]! > budget[p]!) return true;
    for (let v = 0; v < V; v++) if (copies[v]!.length < floor[v]!) return true;
    return false;
  };

  // 1. Start from the current placement, without pods that are gone and versions no longer served.
  for (const key of [...current.keys()].sort(compareStrings)) {
    const names = [...new Set(current.get(key))].sort(compareStrings);
    const v = versionIndex.get(key);
    for (const name of names) {
      const p = podIndex.get(name);
      if (v === undefined) changes.push({ key, pod: name, action: 'removed', reason: 'not_served' });
      else if (p === undefined) changes.push({ key, pod: name, action: 'removed', reason: 'pod_gone' });
      else addCopy(v, p, false);
    }
  }

  // 4. Cooling: copies beyond max(wanted, 1) go, least recently used first, once settled.
  for (let v = 0; v < V; v++) {
    const keep = Math.max(wanted[v]!, 1);
    if (copies[v]!.length <= keep) continue;
    const removable = copies[v]!.filter(settled).sort(byLeastRecentlyUsed);
    for (const c of removable.slice(0, copies[v]!.length - keep)) dropCopy(c, 'removed', 'cooled');
  }

  // 7. Victims: settled, idle, not pinned copies, each pod's least recently used first, never a
  // copy this plan placed. That a removal leaves its version at least its floor is checked as they
  // are taken: within a round it can only become false, so a copy found failing it leaves the list
  // until the next round.
  const findVictims = (): void => {
    for (let p = 0; p < P; p++) {
      victims[p] = [];
      victimHead[p] = 0;
      victimBytes[p] = 0;
    }
    for (let v = 0; v < V; v++) {
      for (const c of copies[v]!) {
        c.victim = false;
        if (order[v]!.pinned || c.fresh || !settled(c) || !idle(c)) continue;
        c.victim = true;
        victims[c.p]!.push(c);
        victimBytes[c.p]! += c.bytes;
      }
    }
    for (const list of victims) list.sort(byLeastRecentlyUsed);
  };
  // A victim's version keeps its floor (min copies, pinned, demanded); copies it has for load beyond
  // that are the least recently used ones' to lose, and come back from free memory only.
  const spare = (c: Copy) => copies[c.v]!.length - 1 >= floor[c.v]!;
  /** The victims of pod `p`, least recently used first, that together free `need` bytes, or undefined. */
  const victimsFor = (p: number, need: number, placer: PlanVersion | undefined): Copy[] | undefined => {
    if (victimBytes[p]! < need) return undefined;
    const list = victims[p]!;
    while (victimHead[p]! < list.length && !list[victimHead[p]!]!.victim) victimHead[p]!++;
    const taken: Copy[] = [];
    let freed = 0;
    for (let i = victimHead[p]!; i < list.length && freed < need; i++) {
      const c = list[i]!;
      if (!c.victim) continue;
      if (!spare(c)) {
        c.victim = false;
        victimBytes[p]! -= c.bytes;
        continue;
      }
      // Never evict a version for one that ranks below it: a victim is beyond its version's floor,
      // so only a demanded version's extra copy could outrank a placer neither pinned nor demanded.
      if (placer && order[c.v]!.demanded && !placer.demanded && !placer.pinned) continue;
      taken.push(c);
      freed += c.bytes;
    }
    return freed >= need ? taken : undefined;
  };

  // 5. Pods over budget (measured memory grew) evict their least recently used victims until within it.
  const overBudget = (): void => {
    for (let p = 0; p < P; p++) {
      if (used[p]! <= budget[p]!) continue;
      for (const c of victimsFor(p, used[p]! - budget[p]!, undefined) ?? []) dropCopy(c, 'evicted', 'memory');
      // Too few victims to get within budget: evict what there is; what stays cannot be evicted.
      if (used[p]! > budget[p]!) {
        for (const c of victims[p]!) if (c.victim && c.alive && used[p]! > budget[p]! && spare(c)) dropCopy(c, 'evicted', 'memory');
      }
    }
  };

  // 6. Add copies: first copies of all versions, then the rest of their floors (both may evict),
  // then copies for load (free memory only); each pass in priority order.
  // Per call of `place`: the pods holding the version, its size on each pod, those reporting it.
  let epoch = 0;
  const holdingEpoch = new Int32Array(P);
  const reportedEpoch = new Int32Array(P);
  const sizeOn = new Float64Array(P);
  const place = (v: number, mayEvict: boolean): boolean => {
    epoch++;
    for (const c of copies[v]!) holdingEpoch[c.p] = epoch;
    sizeOn.fill(estimate[v]!);
    for (const p of reportedOn[v]!) {
      reportedEpoch[p] = epoch;
      sizeOn[p] = bytesOn(v, p);
    }
    // The pod with the largest share of its budget free, so pods of different sizes fill alike
    // (by bytes free, a 32 GB pod would take every copy until only 8 GB of it were left); a pod
    // that has the version loaded already (a copy just removed, or loaded before placement was
    // on) first, as it costs no load.
    let best = -1;
    let bestLoaded = false;
    let bestShare = -Infinity;
    for (let p = 0; p < P; p++) {
      if (holdingEpoch[p] === epoch) continue;
      const free = budget[p]! - used[p]!;
      if (sizeOn[p]! > free) continue;
      const loaded = reportedEpoch[p] === epoch;
      const share = budget[p]! > 0 ? free / budget[p]! : 0;
      if (best < 0 || (loaded && !bestLoaded) || (loaded === bestLoaded && share > bestShare)) {
        best = p;
        bestLoaded = loaded;
        bestShare = share;
      }
    }
    if (best < 0 && mayEvict) {
      // No room anywhere: the pod where the fewest, least recently used victims make it.
      let bestVictims: Copy[] | undefined;
      for (let p = 0; p < P; p++) {
        if (holdingEpoch[p] === epoch || sizeOn[p]! > budget[p]!) continue;
        const taken = victimsFor(p, sizeOn[p]! - (budget[p]! - used[p]!), order[v]);
        if (!taken) continue;
        if (!bestVictims || taken.length < bestVictims.length
          || (taken.length === bestVictims.length && taken[taken.length - 1]!.lastUsedMs < bestVictims[bestVictims.length - 1]!.lastUsedMs)) {
          best = p;
          bestVictims = taken;
        }
      }
      for (const c of bestVictims ?? []) dropCopy(c, 'evicted', 'memory');
    }
    if (best < 0) return false;
    const reason = reasonFor(order[v]!, copies[v]!.length);
    addCopy(v, best, true);
    changes.push({ key: order[v]!.key, pod: podList[best]!.name, action: 'placed', reason });
    return true;
  };

  // Steps 5 to 7 in rounds. Copies for load (the third pass) can leave another copy of their
  // version beyond its floor, so a victim that was not one before: a pod over budget, or a floor
  // with no room, may then be served by it. While a round placed for load and something is still
  // short, another round; one that adds or evicts nothing is the last, so that planning the result
  // again changes nothing. It ends: a round evicts only copies the plan did not place, and places
  // for load only into free memory.
  for (;;) {
    findVictims();
    const before = changes.length;
    overBudget();
    for (let v = 0; v < V; v++) if (copies[v]!.length === 0 && floor[v]! > 0) place(v, true);
    for (let v = 0; v < V; v++) while (copies[v]!.length > 0 && copies[v]!.length < floor[v]! && place(v, true));
    // Every version still short, a first copy included (one with traffic but no floor, or one the
    // passes before found no room for), tries free memory last: after the evictions, so a version
    // left unmet had no room on any pod once the plan was made.
    const beforeLoad = changes.length;
    for (let v = 0; v < V; v++) while (copies[v]!.length < wanted[v]! && place(v, false));
    const placedForLoad = changes.length > beforeLoad;
    if (changes.length === before || !placedForLoad || !stillShort()) break;
  }

  const placement = new Map<string, string[]>();
  const unmet: Plan['unmet'] = [];
  for (let v = 0; v < V; v++) {
    const held = copies[v]!.length;
    if (held < wanted[v]!) unmet.push({ key: order[v]!.key, wanted: wanted[v]!, got: held });
  }
  const byKey = [...versionIndex.entries()].sort((a, b) => compareStrings(a[0], b[0]));
  for (const [key, v] of byKey) {
    if (copies[v]!.length === 0) continue;
    placement.set(key, copies[v]!.map((c) => c.p).sort((a, b) => a - b).map((p) => podList[p]!.name));
  }
  return { placement, changes, unmet };
}

/** `n` when it is a finite positive number, else 0. */
function nonNegative(n: number | undefined): number {
  return n !== undefined && Number.isFinite(n) && n > 0 ? n : 0;
}

/** A size measured on a pod, when there is a sensible one. */
function measured(held: HeldCopy | undefined): number | undefined {
  const m = held?.memoryBytes;
  return m !== undefined && Number.isFinite(m) && m >= 0 ? m : undefined;
}

/** Least recently used first; ties by pod (name order), then by version (placement order). */
function byLeastRecentlyUsed(a: Copy, b: Copy): number {
  return a.lastUsedMs - b.lastUsedMs || a.p - b.p || a.v - b.v;
}

/** Why the copy numbered `held` (0: the first) of `v` is placed. */
function reasonFor(v: PlanVersion, held: number): PlacementChangeReason {
  if (held === 0 && v.demanded) return 'demand';
  if (held < Math.max(countOf(v.minCopies), v.pinned ? 1 : 0)) return 'min_copies';
  return 'load';
}

/** The items with a key not seen before, in order. */
function dedupe<T>(items: readonly T[], keyOf: (item: T) => string): T[] {
  const seen = new Set<string>();
  const out: T[] = [];
  for (const item of items) {
    const k = keyOf(item);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(item);
  }
  return out;
}
