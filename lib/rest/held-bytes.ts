// Bytes an HTTP/1.1 door holds for one exchange against one of its budgets (a request's body until
// its answer is sent, an answer until its client takes it), given back exactly once however the
// exchange ends. node:http emits neither 'finish' nor 'close' on an answer queued behind an earlier
// one (pipelining) when the connection dies, and after a client error (a 408) a request emits
// neither 'end' nor 'error': the connection's own 'close' is the one event every exchange on it is
// sure to see, so it ends every hold on it as well as the exchange's own events do. A connection's
// holds on one budget together stay within its share of it (pipelined exchanges add up), by the
// rule the gRPC doors' connections follow (lib/h2/budget.ts fitsShare).
import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { fitsShare, type ByteBudget } from '../h2/budget';

/** An event that ends a hold: an emitter and the name of the event. */
export type HoldEnd = readonly [emitter: EventEmitter, event: string];

/** Bytes held against a budget for one exchange. */
export interface ByteHold {
  /** Bytes held now. */
  readonly held: number;
  /** Holds `bytes` more when they fit the budget and its connection's share (true); false, holding nothing more, when not. Once the hold has ended it takes nothing and says true. */
  take(bytes: number): boolean;
  /**
   * Holds `bytes` in place of what it holds now (bytes made from the ones held, which are let go)
   * when they fit beside everything else, its connection's share included (true); false, holding
   * what it held, when not. Once the hold has ended it takes nothing and says true.
   */
  replace(bytes: number): boolean;
  /** Gives back every byte held and ends the hold; later calls and events do nothing. */
  release(): void;
}

/**
 * The holds of a door's connections: one 'close' listener per connection ends them all, however
 * many pipelined exchanges it carries (a listener per exchange would pass the emitter's limit).
 */
export class ConnectionHolds {
  private readonly open = new WeakMap<Duplex, Connection>();

  /**
   * A hold on `budget` for an exchange on `socket`, ended by the first of `ends` to happen, by the
   * socket's close, or by its `release()`; the socket's holds on `budget` together take at most
   * `perConnection` bytes (default: no share but the budget). A socket already destroyed gives a
   * hold already ended.
   */
  hold(budget: ByteBudget, socket: Duplex, ends: readonly HoldEnd[] = [], perConnection = Number.POSITIVE_INFINITY): ByteHold {
    let held = 0;
    let ended = socket.destroyed;
    const conn = ended ? undefined : this.connectionOf(socket);
    const grow = (bytes: number): boolean => {
      const share = conn!.held.get(budget) ?? 0;
      if (!fitsShare(share, perConnection, budget, bytes)) return false;
      conn!.held.set(budget, share + bytes);
      budget.used += bytes;
      held += bytes;
      return true;
    };
    const hold: ByteHold = {
      get held() {
        return held;
      },
      take(bytes) {
        return ended || grow(bytes);
      },
      replace(bytes) {
        return ended || grow(bytes - held);
      },
      release,
    };
    function release(): void {
      if (ended) return;
      ended = true;
      budget.used -= held;
      const share = (conn!.held.get(budget) ?? 0) - held;
      if (share === 0) conn!.held.delete(budget);
      else conn!.held.set(budget, share);
      held = 0;
      conn!.holds.delete(hold);
      for (const [emitter, event] of ends) emitter.off(event, release);
    }
    if (!ended) {
      conn!.holds.add(hold);
      for (const [emitter, event] of ends) emitter.once(event, release);
    }
    return hold;
  }

  /**
   * Whether `bytes` more would fit `budget` and `socket`'s share of it (`perConnection`) beside
   * what its holds take now: what a hold's first take would say, taking nothing (a declared
   * length, checked before any of it is read).
   */
  fits(budget: ByteBudget, socket: Duplex, bytes: number, perConnection = Number.POSITIVE_INFINITY): boolean {
    return fitsShare(this.open.get(socket)?.held.get(budget) ?? 0, perConnection, budget, bytes);
  }

  private connectionOf(socket: Duplex): Connection {
    let conn = this.open.get(socket);
    if (!conn) {
      const c: Connection = { holds: new Set(), held: new Map() };
      conn = c;
      this.open.set(socket, c);
      socket.once('close', () => {
        for (const h of [...c.holds]) h.release();
        this.open.delete(socket);
      });
    }
    return conn;
  }
}

/** A connection's open holds, and the bytes they hold of each budget together. */
interface Connection {
  holds: Set<ByteHold>;
  held: Map<ByteBudget, number>;
}
