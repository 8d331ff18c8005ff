// What a model's record says about where its versions are held (docs/placement.md), read the same
// way by the pods (what to load) and the routers (whether a request waits for a load). The
// registry's placement controller writes it; with placement off, every pod holds every served version.
import type { ModelOut } from './grpc/types';
import type { TrafficWeight } from './events';

/** One served version's copies as the record carries them. */
export interface PlacedCopies {
  version: number;
  pods: string[];
  /** The memory one copy is planned at (bytes). */
  memoryBytes: number;
}

/** The placement a model record carries; undefined when placement is off (every pod holds every served version). */
export function placementOf(record: Pick<ModelOut, 'placed' | 'placement'> | undefined): PlacedCopies[] | undefined {
  if (!record?.placed) return undefined;
  return (record.placement ?? []).map((p) => ({ version: p.version, pods: p.pods, memoryBytes: Number(p.memory_bytes ?? 0) }));
}

/**
 * The versions `pod` holds of a model serving `traffic`: every served version with placement off,
 * else those placed on it. With the memory each was planned at (placement on), for the pod's budget.
 */
export function versionsHeldBy(pod: string, traffic: readonly TrafficWeight[], record: Pick<ModelOut, 'placed' | 'placement'> | undefined): { versions: number[]; plannedBytes?: Map<number, number> } {
  const served = traffic.map((t) => t.version);
  const placement = placementOf(record);
  if (!placement) return { versions: served };
  const plannedBytes = new Map<number, number>();
  for (const p of placement) {
    if (served.includes(p.version) && p.pods.includes(pod)) plannedBytes.set(p.version, p.memoryBytes);
  }
  return { versions: [...plannedBytes.keys()].sort((a, b) => a - b), plannedBytes };
}
