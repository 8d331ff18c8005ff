// Bytes an HTTP/1.1 door holds for one exchange against one of its budgets (a request's body until
// its answer is sent, an answer until its client takes it), given back exactly once however the
// exchange ends. node:http emits neither 'finish' nor 'close' on an answer queued behind an earlier
// one (pipelining) when the connection dies, and after a client error (a 408) a request emits
// neither 'end' nor 'error': the connection's own 'close' is the one event every exchange on it is
// sure to see, so it ends every hold on it as well as the exchange's own events do.
import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { ByteBudget } from '../h2/budget';

/** An event that ends a hold: an emitter and the name of the event. */
export type HoldEnd = readonly [emitter: EventEmitter, event: string];

/** Bytes held against a budget for one exchange. */
export interface ByteHold {
  /** Bytes held now. */
  readonly held: number;
  /** Holds `bytes` more when they fit (true); false, holding nothing more, when not. Once the hold has ended it takes nothing and says true. */
  take(bytes: number): boolean;
  /**
   * Holds `bytes` in place of what it holds now (bytes made from the ones held, which are let go)
   * when they fit beside everything else (true); false, holding what it held, when not. Once the
   * hold has ended it takes nothing and says true.
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
  private readonly open = new WeakMap<Duplex, Set<ByteHold>>();

  /**
   * A hold on `budget` for an exchange on `socket`, ended by the first of `ends` to happen, by the
   * socket's close, or by its `release()`. A socket already destroyed gives a hold already ended.
   */
  hold(budget: ByteBudget, socket: Duplex, ends: readonly HoldEnd[] = []): ByteHold {
    let held = 0;
    let ended = socket.destroyed;
    const holds = ended ? undefined : this.holdsOf(socket);
    const hold: ByteHold = {
      get held() {
        return held;
      },
      take(bytes) {
        if (ended) return true;
        if (!budget.fits(bytes)) return false;
        budget.used += bytes;
        held += bytes;
        return true;
      },
      replace(bytes) {
        if (ended) return true;
        if (!budget.fits(bytes - held)) return false;
        budget.used += bytes - held;
        held = bytes;
        return true;
      },
      release,
    };
    function release(): void {
      if (ended) return;
      ended = true;
      budget.used -= held;
      held = 0;
      holds!.delete(hold);
      for (const [emitter, event] of ends) emitter.off(event, release);
    }
    if (!ended) {
      holds!.add(hold);
      for (const [emitter, event] of ends) emitter.once(event, release);
    }
    return hold;
  }

  private holdsOf(socket: Duplex): Set<ByteHold> {
    let holds = this.open.get(socket);
    if (!holds) {
      const all = new Set<ByteHold>();
      holds = all;
      this.open.set(socket, all);
      socket.once('close', () => {
        for (const h of [...all]) h.release();
        this.open.delete(socket);
      });
    }
    return holds;
  }
}
