// Bytes a front door holds against a limit: the request bytes it has read and not yet passed on,
// or the answer bytes waiting for clients to read them. One per door (every connection of its
// server adds to it) and one of each per connection; lib/h2/connection.ts keeps them, so the
// check on the hot path is a sum and a comparison.

export class ByteBudget {
  /** Bytes held now. */
  used = 0;

  /** `max`: the most it may hold (Infinity: no limit). */
  constructor(readonly max: number) {}

  /** Whether `bytes` more fit. */
  fits(bytes: number): boolean {
    return this.used + bytes <= this.max;
  }
}

/**
 * Whether `bytes` more fit a connection that holds `held` of its share (`perConnection`) and its
 * door's budget: the one rule of every front door (lib/h2's streams, the REST door's bodies), so
 * that no one connection holds the whole door.
 */
export function fitsShare(held: number, perConnection: number, door: ByteBudget, bytes: number): boolean {
  return held + bytes <= perConnection && door.fits(bytes);
}

/** A door's two budgets, every connection's together: request bytes held, answer bytes unread. */
export interface DoorBudgets {
  requests: ByteBudget;
  answers: ByteBudget;
}

/**
 * The budgets of a door of these limits (INFERMESH_H2_MAX_REQUEST_BYTES and
 * INFERMESH_H2_MAX_RESPONSE_BYTES), made before the door when something beside it (a pod's
 * ModelStreamInfer, on its grpc-js server) must count against the same totals.
 */
export function doorBudgetsOf(limits: { maxRequestBytes: number; maxResponseBytes: number }): DoorBudgets {
  return { requests: new ByteBudget(limits.maxRequestBytes), answers: new ByteBudget(limits.maxResponseBytes) };
}
