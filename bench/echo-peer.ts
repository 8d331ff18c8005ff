// Another process that answers every byte it is sent with that byte, over one TCP connection on
// 127.0.0.1: a round trip to it after each in-process run is about the least a client over TCP
// adds to a closed loop (a wake-up of each process, one write and one read each way), so the
// `heavy` table can tell the machine's share of what a pod loses from the pod's own.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';

/** The echo process's whole program: listens on port 0, prints `port <n>`, echoes; ends with its stdin. */
const ECHO_PROGRAM = `
const net = require('node:net');
const server = net.createServer((c) => { c.setNoDelay(true); c.on('data', (d) => c.write(d)); c.on('error', () => c.destroy()); });
server.listen(0, '127.0.0.1', () => process.stdout.write('port ' + server.address().port + '\\n'));
process.stdin.on('end', () => process.exit(0)).resume();
`;

/** How long the echo process may take to listen, and to exit once asked. */
const START_TIMEOUT_MS = 10_000;

/** A running echo process and this process's connection to it. */
export class EchoPeer {
  private waiting: (() => void) | undefined;
  private failed: Error | undefined;
  private answered = 0;

  private constructor(private readonly child: ChildProcess, private readonly exited: Promise<void>, private readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      // One byte out, one byte back; a second byte would be an answer to nothing.
      for (let i = 0; i < d.length; i++) {
        const done = this.waiting;
        this.waiting = undefined;
        if (!done) return this.fail(new Error('echo peer answered a byte it was not sent'));
        this.answered++;
        done();
      }
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('echo peer closed the connection')));
  }

  /** Starts the process (its stdin closing ends it) and connects to it. */
  static async start(): Promise<EchoPeer> {
    const child = spawn(process.execPath, ['-e', ECHO_PROGRAM], { stdio: ['pipe', 'pipe', 'inherit'] });
    // Ending the stdin of a child that died fails with EPIPE: nothing to do then.
    child.stdin!.on('error', () => undefined);
    // Taken at once: a child that has exited (by a signal too) emits 'exit' only once.
    const exited = new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', () => resolve());
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`echo peer did not listen within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
        const settle = (fn: () => void) => { clearTimeout(timer); fn(); };
        child.once('error', (err) => settle(() => reject(err)));
        child.once('exit', (code, signal) => settle(() => reject(new Error(`echo peer exited (${code ?? signal}) before listening`))));
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const line = /^port (\d+)$/m.exec(out);
          if (line) settle(() => resolve(Number(line[1])));
        });
      });
      const socket = net.connect(port, '127.0.0.1');
      socket.setNoDelay(true);
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      return new EchoPeer(child, exited, socket);
    } catch (err) {
      child.kill();
      await exited;
      throw err;
    }
  }

  /** Round trips answered so far. */
  get roundTrips(): number {
    return this.answered;
  }

  private fail(err: Error): void {
    this.failed ??= err;
    const done = this.waiting;
    this.waiting = undefined;
    done?.();
  }

  /** Sends one byte and resolves once it is back; rejects once the peer has failed. */
  roundTrip(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.waiting) return Promise.reject(new Error('a round trip to the echo peer is already under way'));
    return new Promise<void>((resolve, reject) => {
      this.waiting = () => (this.failed ? reject(this.failed) : resolve());
      this.socket.write('x');
    });
  }

  /** Ends the connection and the process (killed if it has not exited a few seconds after its stdin ended). */
  async close(): Promise<void> {
    this.fail(new Error('echo peer closed'));
    this.socket.destroy();
    this.child.stdin!.end();
    const kill = setTimeout(() => this.child.kill('SIGKILL'), START_TIMEOUT_MS);
    await this.exited;
    clearTimeout(kill);
  }
}
