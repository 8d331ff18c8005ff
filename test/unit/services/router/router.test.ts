import { Router, type RouterOptions } from '../../../../services/router/router';
import { Membership } from '../../../../services/router/membership';
import { TrafficSplit } from '../../../../services/router/traffic-split';
import { roundRobin } from '../../../../services/router/balancer';
import type { Heartbeat } from '../../../../lib/events';
import { MeshError } from '../../../../lib/errors';

const opts: RouterOptions = {
  maxOutstanding: 3, maxOutstandingPerPod: 2, retryBudgetRatio: 0.2, retryBudgetMinPerSecond: 1,
  ejectAfterFailures: 2, baseEjectionMs: 1000, maxEjectionMs: 4000,
};

const hb = (pod: string, models: [string, number][], state: Heartbeat['state'] = 'serving'): Heartbeat => ({
  schema: 1, pod, address: `${pod}:1`, state, inflight: 0, time: '',
  models: models.map(([name, version]) => ({ name, version, state: 'READY', provider: 'cpu' })),
});

function setup() {
  let now = 1_000_000;
  const clock = () => now;
  const membership = new Membership(5000, {}, clock);
  const split = new TrafficSplit(() => 0.5);
  const router = new Router(membership, split, roundRobin(), opts, clock);
  return { membership, split, router, advance: (ms: number) => (now += ms) };
}

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as MeshError).code;
  }
  return 'no error';
};

describe('Router', () => {
  it('routes a named version only to pods that have it ready', () => {
    const { membership, router } = setup();
    membership.update(hb('a', [['m', 1]]));
    membership.update(hb('b', [['m', 2]]));
    expect(router.route('m', '2').pod.id).toBe('b');
    expect(codeOf(() => router.route('m', '3'))).toBe('VersionNotFound');
    expect(codeOf(() => router.route('other', ''))).toBe('ModelNotFound');
    expect(codeOf(() => router.route('m', 'x'))).toBe('InvalidArgument');
  });

  it('follows the traffic split, and keeps a share on ready versions until the new one is ready', () => {
    const { membership, split, router } = setup();
    membership.update(hb('a', [['m', 1]]));
    split.set('m', [{ version: 2, weight: 100 }]);
    expect(router.route('m', '').version).toBe(1);
    membership.update(hb('b', [['m', 2]]));
    expect(router.route('m', '').version).toBe(2);
  });

  it('says UNAVAILABLE when the registry knows the model but no pod has it ready', () => {
    const { split, router } = setup();
    split.set('m', [{ version: 1, weight: 100 }]);
    expect(codeOf(() => router.route('m', ''))).toBe('Unavailable');
  });

  it('drops draining pods at once and expires silent ones', () => {
    const { membership, router, advance } = setup();
    membership.update(hb('a', [['m', 1]]));
    membership.update(hb('b', [['m', 1]]));
    membership.update(hb('a', [['m', 1]], 'draining'));
    expect(router.route('m', '1').pod.id).toBe('b');
    advance(6000);
    membership.expire();
    expect(membership.all()).toHaveLength(0);
  });

  it('rejects beyond the outstanding limits with Overloaded', () => {
    const { membership, router } = setup();
    membership.update(hb('a', [['m', 1]]));
    const r = router.route('m', '1');
    router.started(r.pod);
    router.started(r.pod);
    expect(codeOf(() => router.route('m', '1'))).toBe('Overloaded');
    router.admit(); router.admit(); router.admit();
    expect(codeOf(() => router.admit())).toBe('Overloaded');
  });

  it('ejects a failing pod for a growing back-off and takes it back after', () => {
    const { membership, router, advance } = setup();
    membership.update(hb('a', [['m', 1]]));
    membership.update(hb('b', [['m', 1]]));
    const a = membership.all().find((p) => p.id === 'a')!;
    for (let i = 0; i < 2; i++) { router.started(a); router.ended(a, 'failed'); }
    expect(new Set([1, 2, 3, 4].map(() => router.route('m', '1').pod.id))).toEqual(new Set(['b']));
    advance(1001);
    expect(membership.candidates('m', 1).map((p) => p.id).sort()).toEqual(['a', 'b']);
    for (let i = 0; i < 2; i++) { router.started(a); router.ended(a, 'failed'); }
    advance(1001);
    expect(membership.candidates('m', 1).map((p) => p.id)).toEqual(['b']);
    advance(1000);
    expect(membership.candidates('m', 1).map((p) => p.id).sort()).toEqual(['a', 'b']);
  });

  it('keeps pods while NATS is away, and counts their silence on from where it stood when it is back', () => {
    const { membership, advance } = setup();
    membership.update(hb('a', [['m', 1]]));
    membership.setHeartbeatsAvailable(false);
    advance(60_000);
    membership.expire();
    expect(membership.all().map((p) => p.id)).toEqual(['a']);
    membership.setHeartbeatsAvailable(true);
    advance(4_000);
    membership.expire();
    expect(membership.all().map((p) => p.id)).toEqual(['a']);
    advance(2_000);
    membership.expire();
    expect(membership.all()).toEqual([]);
  });

  it('sends nothing to a pod that fails its health checks', () => {
    const { membership, router } = setup();
    membership.update(hb('a', [['m', 1]]));
    membership.update(hb('b', [['m', 1]]));
    membership.all().find((p) => p.id === 'a')!.healthy = false;
    expect(new Set([1, 2, 3].map(() => router.route('m', '1').pod.id))).toEqual(new Set(['b']));
  });

  it('skips pods already tried', () => {
    const { membership, router } = setup();
    membership.update(hb('a', [['m', 1]]));
    membership.update(hb('b', [['m', 1]]));
    expect(router.route('m', '1', new Set(['a'])).pod.id).toBe('b');
    expect(codeOf(() => router.route('m', '1', new Set(['a', 'b'])))).toBe('Unavailable');
  });
});
