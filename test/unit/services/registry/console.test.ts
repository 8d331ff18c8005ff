// The console's pure decisions: which Host a console without authentication answers (DNS
// rebinding), how a closed window becomes a chart point (the analysis' quantiles, "more than" the
// last bucket), and which actions a page may post.
import { hostAllowed } from '../../../../services/registry/console/console-server';
import { parseAction, windowPoint } from '../../../../services/registry/console/console-api';
import { emptyWindow, LATENCY_BUCKETS_MS } from '../../../../lib/window-stats';

describe('the console', () => {
  it.each([
    ['127.0.0.1:8004', [], true],
    ['127.0.0.1', [], true],
    ['[::1]:8004', [], true],
    ['localhost:8004', [], true],
    ['LOCALHOST', [], true],
    ['10.1.2.3:80', [], true],
    ['attacker.example:8004', [], false],
    ['attacker.example', ['console.example'], false],
    ['console.example:443', ['console.example'], true],
    ['localhost.attacker.example', [], false],
    ['127.0.0.1.attacker.example', [], false],
    [undefined, [], false],
    ['anything', ['*'], true],
  ] as const)('answers Host %p with allowed %p: %p', (host, allowed, expected) => {
    expect(hostAllowed(host, allowed)).toBe(expected);
  });

  it('draws a window as the analysis reads it: rps over the window, error rate, quantiles as bucket bounds, the last bucket as "more than"', () => {
    const w = { ...emptyWindow(2), requests: 100, errors: 10 };
    w.latency[LATENCY_BUCKETS_MS.indexOf(4)] = 88;
    w.latency[LATENCY_BUCKETS_MS.length - 1] = 2;
    const [v] = windowPoint(10_000, 2_000, new Map([[2, w]])).versions;
    expect(v).toEqual({ version: 2, requests: 100, errors: 10, rps: 50, error_rate: 0.1, p50_ms: 4, p99_ms: 8192, p50_over: false, p99_over: true });
    // A JSON round trip keeps every number (Infinity would have become null).
    expect(JSON.parse(JSON.stringify(v))).toEqual(v);
    expect(windowPoint(0, 1_000, new Map([[1, emptyWindow(1)]])).versions[0]).toMatchObject({ rps: 0, error_rate: 0, p50_ms: 0, p99_ms: 0, p99_over: false });
  });

  it('takes well-formed actions only', () => {
    expect(parseAction({ action: 'start', version: 2, weight: 10, steps: [10, 50, 100], automatic: true })).toEqual({ action: 'start', version: 2, weight: 10, steps: [10, 50, 100], automatic: true, reason: undefined });
    expect(parseAction({ action: 'rollback', reason: 'slow' })).toMatchObject({ action: 'rollback', reason: 'slow' });
    for (const bad of [null, 'start', [], { action: 'toString' }, { action: '__proto__' }, { action: 'start', version: 1.5 }, { action: 'weight', weight: -1 }, { action: 'start', steps: [1, 'x'] }]) {
      expect(() => parseAction(bad)).toThrow();
    }
  });
});
