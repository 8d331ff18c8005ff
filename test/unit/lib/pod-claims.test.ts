// The policy routers and the registry share about pods' claims: how many probes run and wait,
// which are refused, and how often a refused claim is logged.
import { createLogger } from '../../../lib/log';
import { claimLimitsOf, ClaimWarnings, DEFAULT_CLAIM_LIMITS, newPodRefusal, ProbeQueue } from '../../../lib/pod-claims';

/** A probe run that ends when the test says, per address. */
function controlled(): { run: (address: string) => Promise<string>; started: string[]; finish(address: string, ok?: boolean): void } {
  const pending = new Map<string, { resolve(v: string): void; reject(e: Error): void }>();
  const started: string[] = [];
  return {
    started,
    run: (address) => {
      started.push(address);
      return new Promise((resolve, reject) => pending.set(address, { resolve, reject }));
    },
    finish(address, ok = true) {
      const p = pending.get(address)!;
      pending.delete(address);
      if (ok) p.resolve(`ids of ${address}`);
      else p.reject(new Error('handshake failed'));
    },
  };
}
const settle = () => new Promise((r) => setImmediate(r));

describe('ProbeQueue', () => {
  it('runs at most its concurrency, queues up to its queue in order, and refuses beyond', async () => {
    const c = controlled();
    const q = new ProbeQueue(c.run, { identityProbeConcurrency: 2, identityProbeQueue: 2 });
    const results: string[] = [];
    for (const a of ['a', 'b', 'c', 'd']) void q.probe(a)!.then((v) => results.push(v), (e: Error) => results.push(`${a}: ${e.message}`));
    expect(q.admits('e')).toBe(false);
    expect(q.probe('e')).toBeUndefined();
    expect(c.started).toEqual(['a', 'b']);
    expect(q.load).toEqual({ running: 2, waiting: 2 });
    c.finish('b', false);
    await settle();
    expect(c.started).toEqual(['a', 'b', 'c']);
    expect(q.admits('e')).toBe(true);
    c.finish('a');
    await settle();
    expect(c.started).toEqual(['a', 'b', 'c', 'd']);
    c.finish('c');
    c.finish('d');
    await settle();
    expect(results).toEqual(['b: handshake failed', 'ids of a', 'ids of c', 'ids of d']);
    expect(q.load).toEqual({ running: 0, waiting: 0 });
  });

  it('shares one probe among claims naming the same address, running or waiting, even when full', async () => {
    const c = controlled();
    const q = new ProbeQueue(c.run, { identityProbeConcurrency: 1, identityProbeQueue: 1 });
    const first = q.probe('a')!;
    const queued = q.probe('b')!;
    expect(q.admits('a')).toBe(true);
    expect(q.probe('a')).toBe(first);
    expect(q.probe('b')).toBe(queued);
    expect(q.probe('c')).toBeUndefined();
    c.finish('a');
    await settle();
    c.finish('b');
    expect(await queued).toBe('ids of b');
    expect(c.started).toEqual(['a', 'b']);
  });

  it('takes a probe that throws at once as a failed one, and goes on', async () => {
    const q = new ProbeQueue<string>((a) => {
      if (a === 'bad') throw new Error('no such address');
      return Promise.resolve(a);
    }, { identityProbeConcurrency: 1, identityProbeQueue: 0 });
    await expect(q.probe('bad')).rejects.toThrow('no such address');
    expect(await q.probe('good')).toBe('good');
  });
});

describe('ClaimWarnings', () => {
  it('logs each kind at most once per interval, the next line counting those it stands for', () => {
    const lines: Record<string, unknown>[] = [];
    let now = 0;
    const w = new ClaimWarnings(createLogger('t', 'warn', {}, (l) => lines.push(JSON.parse(l) as Record<string, unknown>)), 5_000, () => now);
    // Whether each line was written: a caller marks a pod warned only then, so one kept back is tried again.
    const written = Array.from({ length: 1_000 }, (_, i) => w.warn('does not prove', { pod: `fake-${i}` }));
    expect(written.filter(Boolean).length).toBe(1);
    expect(written[0]).toBe(true);
    expect(w.warn('full', { pod: 'x' })).toBe(true);
    now += 5_000;
    expect(w.warn('does not prove', { pod: 'fake-last' })).toBe(true);
    expect(lines.map((l) => [l.msg, l.pod, l.alikeNotLogged])).toEqual([
      ['does not prove', 'fake-0', undefined],
      ['full', 'x', undefined],
      ['does not prove', 'fake-last', 999],
    ]);
  });

  it('logs every one at interval 0', () => {
    const lines: string[] = [];
    const w = new ClaimWarnings(createLogger('t', 'warn', {}, (l) => lines.push(l)), 0, () => 0);
    for (let i = 0; i < 3; i++) w.warn('does not prove', { pod: `p${i}` });
    expect(lines).toHaveLength(3);
  });
});

it('refuses a new pod only at the bound, and fills unset limits with the defaults', () => {
  expect(newPodRefusal(9, 10)).toBeUndefined();
  expect(newPodRefusal(10, 10)).toBe('10 pods are known, the most kept');
  expect(claimLimitsOf(undefined)).toEqual(DEFAULT_CLAIM_LIMITS);
  expect(claimLimitsOf({ identityProbeQueue: 0 })).toEqual({ ...DEFAULT_CLAIM_LIMITS, identityProbeQueue: 0 });
});
