// Lingering close, as nginx's (lingering_close, lingering_time, lingering_timeout): a connection an
// HTTP door closes while its client may still be sending (a body refused unread, a request cut
// off, node:http's own close after `Connection: close`) is half-closed once its answer is written
// (FIN after the answer), and what its client still sends is read and dropped until it closes, or
// the lingering time passes in all or the lingering timeout between two reads; then it is destroyed.
// Destroyed with bytes unread, the kernel resets the connection, and a client still writing its
// body sees "connection reset" and loses the answer it had not read yet. Dropped bytes are not held:
// a lingering connection costs a socket, counted in the door's connection limit like any other.
import type { Duplex } from 'node:stream';

/** How long a door lingers (INFERMESH_HTTP_LINGERING_*, docs/rest.md). */
export interface LingeringLimits {
  /** The whole of it, from the close (INFERMESH_HTTP_LINGERING_TIME_MS, nginx lingering_time: 30 s); 0: no lingering. */
  lingeringTimeMs: number;
  /**
   * Between two reads, and for the answer to be taken before the first (INFERMESH_HTTP_LINGERING_TIMEOUT_MS,
   * nginx lingering_timeout: 5 s); 0: the connection is destroyed at once.
   */
  lingeringTimeoutMs: number;
}

/** The lingering closes of one door's connections, ended together when the door stops. */
export class LingeringClose {
  /** Connections being closed, and how to cut each short (the door stopping). */
  private readonly closing = new Map<Duplex, () => void>();
  private stopped = false;

  constructor(private readonly limits: LingeringLimits) {}

  /**
   * Closes a connection the door gives up on, after `last` (its last answer) when given: destroyed
   * at once with a lingering timeout of 0; otherwise half-closed, what its client sends read and
   * dropped, and destroyed when the client closes, or the lingering time or timeout runs out (with
   * a lingering time of 0: once its answer is flushed, within the timeout).
   */
  close(socket: Duplex, last?: string): void {
    if (socket.destroyed || this.closing.has(socket)) return;
    const { lingeringTimeMs, lingeringTimeoutMs } = this.limits;
    const destroy = () => void socket.destroy();
    if (lingeringTimeoutMs === 0) return destroy();
    const linger = lingeringTimeMs > 0 && !this.stopped;
    // A client that takes neither its answer nor sends anything for the timeout is not waited for.
    const idle = setTimeout(destroy, lingeringTimeoutMs);
    const total = linger ? setTimeout(destroy, lingeringTimeMs) : undefined;
    const flushed = (then: () => void) => (socket.writableFinished ? then() : socket.once('finish', then));
    this.closing.set(socket, () => flushed(destroy));
    socket.once('close', () => {
      clearTimeout(idle);
      clearTimeout(total);
      this.closing.delete(socket);
    });
    if (linger) {
      // node:http stops parsing the connection: a 'data' listener unhooks its parser from the
      // socket (node:http's wrapper of the socket's on() does so), and its own is taken off. The rest
      // of a body, and whatever follows it, is dropped unparsed, never taken for requests.
      const drop = () => void idle.refresh();
      socket.on('data', drop);
      for (const listener of socket.listeners('data')) if (listener !== drop) socket.off('data', listener as (...args: unknown[]) => void);
      // The client sent all it had: nothing is left unread to reset the connection.
      socket.once('end', () => flushed(destroy));
      socket.resume();
      readAgain(socket);
    } else {
      flushed(destroy);
    }
    if (!socket.writableEnded) {
      if (last === undefined) socket.end();
      else socket.end(last);
    }
  }

  /**
   * node:http's close of a connection after an answer that says `Connection: close` (its
   * destroySoon): ended, and closed as close() does once the answer is flushed, rather than
   * destroyed with what its client still sends unread.
   */
  closeAfterAnswer(socket: Duplex): void {
    if (socket.destroyed) return;
    if (socket.writable) socket.end();
    if (socket.writableFinished) this.close(socket);
    else socket.once('finish', () => this.close(socket));
  }

  /**
   * The door stops: every connection lingering is destroyed (once its answer is flushed), and
   * those closed from now on are destroyed once their answer is, without lingering.
   */
  stop(): void {
    this.stopped = true;
    for (const cut of this.closing.values()) cut();
  }
}

/**
 * Starts a connection reading again that node:http's parser had stopped: its parser reads the
 * socket's handle itself (not through the stream), and stops the handle while a request's body is
 * not taken; unhooked, the stream's resume() does not start it again (the stream thinks a read is
 * still under way). Started as node:http starts it when a body is taken.
 */
function readAgain(socket: Duplex): void {
  const handle = (socket as { _handle?: { reading?: boolean; readStart?: () => number } | null })._handle;
  if (handle?.readStart === undefined || handle.reading === true) return;
  handle.reading = true;
  handle.readStart();
}
