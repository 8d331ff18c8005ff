// ConnectionHolds: every hold given back exactly once, by its exchange's events or its
// connection's close, whichever comes first.
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { ByteBudget } from '../../../../lib/h2/budget';
import { ConnectionHolds } from '../../../../lib/rest/held-bytes';

const closed = (s: PassThrough) => new Promise((r) => s.once('close', r));

describe('ConnectionHolds', () => {
  it('holds what fits, refuses what does not, and gives back all of it once on its first end', () => {
    const budget = new ByteBudget(100);
    const socket = new PassThrough();
    const res = new EventEmitter();
    const hold = new ConnectionHolds().hold(budget, socket, [[res, 'finish'], [res, 'close']]);
    expect(hold.take(60)).toBe(true);
    expect(hold.take(41)).toBe(false);
    expect(hold.take(40)).toBe(true);
    expect({ used: budget.used, held: hold.held }).toEqual({ used: 100, held: 100 });
    res.emit('finish');
    expect({ used: budget.used, held: hold.held }).toEqual({ used: 0, held: 0 });
    // The other ends, a release and the connection's close give back nothing more.
    res.emit('close');
    hold.release();
    socket.emit('close');
    expect(budget.used).toBe(0);
    expect(res.listenerCount('finish') + res.listenerCount('close')).toBe(0);
  });

  it('gives back every hold of a connection when it closes, with one listener however many there are', async () => {
    const budget = new ByteBudget(Infinity);
    const socket = new PassThrough();
    const holds = new ConnectionHolds();
    // Pipelined exchanges whose answers never finish nor close.
    const queued = Array.from({ length: 50 }, () => holds.hold(budget, socket, [[new EventEmitter(), 'close']]));
    for (const h of queued) h.take(10);
    expect(budget.used).toBe(500);
    expect(socket.listenerCount('close')).toBeLessThanOrEqual(2);
    socket.destroy();
    await closed(socket);
    expect(budget.used).toBe(0);
    expect(queued.every((h) => h.held === 0)).toBe(true);
  });

  it('holds bytes made from the ones it holds in their place when they fit beside the rest, and gives those back', () => {
    const budget = new ByteBudget(100);
    const socket = new PassThrough();
    const res = new EventEmitter();
    const holds = new ConnectionHolds();
    holds.hold(budget, socket).take(30);
    const hold = holds.hold(budget, socket, [[res, 'finish']]);
    hold.take(20);
    // 20 held become 70: 30 + 70 fit.
    expect(hold.replace(70)).toBe(true);
    expect({ used: budget.used, held: hold.held }).toEqual({ used: 100, held: 70 });
    // 71 would not: the 70 stay held.
    expect(hold.replace(71)).toBe(false);
    expect({ used: budget.used, held: hold.held }).toEqual({ used: 100, held: 70 });
    res.emit('finish');
    expect(budget.used).toBe(30);
    expect(hold.replace(1_000)).toBe(true);
    expect(budget.used).toBe(30);
  });

  it('gives a connection already destroyed a hold already ended, which holds nothing', () => {
    const budget = new ByteBudget(10);
    const socket = new PassThrough();
    socket.destroy();
    const hold = new ConnectionHolds().hold(budget, socket);
    expect(hold.take(1_000)).toBe(true);
    expect({ used: budget.used, held: hold.held }).toEqual({ used: 0, held: 0 });
  });

  it('keeps the holds of other connections when one closes', async () => {
    const budget = new ByteBudget(Infinity);
    const holds = new ConnectionHolds();
    const [a, b] = [new PassThrough(), new PassThrough()];
    holds.hold(budget, a).take(3);
    holds.hold(budget, b).take(4);
    a.destroy();
    await closed(a);
    expect(budget.used).toBe(4);
  });

  it('keeps a connection\'s holds on one budget within its share, pipelined ones together, and gives it back as they end', () => {
    const budget = new ByteBudget(1_000);
    const holds = new ConnectionHolds();
    const [a, b] = [new PassThrough(), new PassThrough()];
    // A hold that ends having taken nothing leaves the share as it was.
    holds.hold(budget, a, [], 100).release();
    const first = holds.hold(budget, a, [], 100);
    expect(first.take(60)).toBe(true);
    const second = holds.hold(budget, a, [], 100);
    expect(second.take(41)).toBe(false);
    expect(second.take(40)).toBe(true);
    // What is made of a body in its place counts against the share too.
    expect(first.replace(61)).toBe(false);
    // Another connection has a share of its own.
    expect(holds.hold(budget, b, [], 100).take(100)).toBe(true);
    // A declared length is checked by the same rule, taking nothing.
    expect([holds.fits(budget, a, 40, 100), holds.fits(budget, a, 1, 100), holds.fits(budget, new PassThrough(), 100, 100)]).toEqual([false, false, true]);
    first.release();
    expect(holds.fits(budget, a, 60, 100)).toBe(true);
    expect(second.replace(100)).toBe(true);
    expect(budget.used).toBe(200);
  });
});
