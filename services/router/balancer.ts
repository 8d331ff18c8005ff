// Load-balancing policies: given the pods that can serve a request, pick one. A new policy is a new
// object implementing BalancingPolicy, registered in `policies`.
import type { Pod } from './membership';

/** Picks a pod among candidates (never empty). */
export interface BalancingPolicy {
  readonly name: string;
  pick(candidates: readonly Pod[]): Pod;
}

/** Power of two choices: the less loaded (fewer outstanding requests) of two random candidates. */
export function powerOfTwoChoices(random: () => number = Math.random): BalancingPolicy {
  return {
    name: 'p2c',
    pick(candidates) {
      const n = candidates.length;
      if (n === 1) return candidates[0]!;
      const i = Math.floor(random() * n);
      let j = Math.floor(random() * (n - 1));
      if (j >= i) j++;
      const a = candidates[i]!;
      const b = candidates[j]!;
      return b.outstanding < a.outstanding ? b : a;
    },
  };
}

/** Round robin over the candidates, in pod-id order. */
export function roundRobin(): BalancingPolicy {
  let next = 0;
  return {
    name: 'round-robin',
    pick(candidates) {
      const sorted = [...candidates].sort((a, b) => a.id.localeCompare(b.id));
      return sorted[next++ % sorted.length]!;
    },
  };
}

/** The policies by name (INFERMESH_ROUTER_POLICY). */
export const policies: Record<string, () => BalancingPolicy> = {
  p2c: () => powerOfTwoChoices(),
  'round-robin': () => roundRobin(),
};
