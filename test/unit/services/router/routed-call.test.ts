// services/router/routed-call.ts, the one routing policy both transports use, driven through a
// transport written here that does what a test tells it: who gets the blame, what is retried,
// what the version's statistics count. Real Router, Membership, TrafficSplit and VersionStats.
import { silentLogger } from '../../../../lib/log';
import type { Heartbeat } from '../../../../lib/events';
import type { WindowReport } from '../../../../lib/window-stats';
import { roundRobin } from '../../../../services/router/balancer';
import { Membership, type Pod } from '../../../../services/router/membership';
import { Code, podOutcomeOf, RoutedCall, versionOutcomeOf, type RoutingDeps } from '../../../../services/router/routed-call';
import { Router } from '../../../../services/router/router';
import { TrafficSplit } from '../../../../services/router/traffic-split';
import { VersionStats } from '../../../../services/router/version-stats';
import { ColdStarts } from '../../../../services/router/cold-starts';

const hb = (pod: string, version = 1): Heartbeat => ({
  schema: 1, pod, address: `${pod}:1`, state: 'serving', inflight: 0, time: '',
  models: [{ name: 'm', version, state: 'READY', provider: 'cpu' }],
});

/** A transport that records what the policy asks of it; the test reports each attempt's end. */
class TestCall extends RoutedCall {
  readonly sent: string[] = [];
  aborted = 0;
  answer: { code: number; message: string; from: 'router' | 'pod' } | undefined;
  over: number | undefined;

  protected send(pod: Pod): void {
    this.sent.push(pod.id);
  }
  protected abort(): void {
    this.aborted++;
  }
  protected respond(code: number, message: string): void {
    this.answer = { code, message, from: 'router' };
  }
  protected deliver(): void {
    this.answer = { code: this.lastCode!, message: '', from: 'pod' };
  }
  protected override finished(code: number): void {
    this.over = code;
  }

  private lastCode: number | undefined;
  /** The pod answers with `code`. */
  podAnswers(code: number): void {
    this.lastCode = code;
    this.answered(code, `pod says ${code}`);
  }
  /** The attempt ends without an answer (connection refused or reset by the pod). */
  podFails(): void {
    this.unanswered('connection reset by the pod');
  }
}

function setup(pods = ['a', 'b', 'c'], ejectAfterFailures = 2) {
  let now = 1_000_000;
  const clock = () => now;
  const membership = new Membership(60_000, {}, clock);
  for (const p of pods) membership.update(hb(p));
  const router = new Router(membership, new TrafficSplit(() => 0.5), roundRobin(), {
    maxOutstanding: 100, maxOutstandingPerPod: 100, retryBudgetRatio: 0.2, retryBudgetMinPerSecond: 2,
    ejectAfterFailures, baseEjectionMs: 1_000, maxEjectionMs: 30_000,
  }, clock);
  const reports: WindowReport[] = [];
  const stats = new VersionStats('r', 1_000, (r) => reports.push(r), clock);
  const deps: RoutingDeps = { router, stats, log: silentLogger };
  const call = (version = '') => {
    const c = new TestCall(deps, 'm', version);
    c.start();
    return c;
  };
  /** The version window's counts so far (closes the window). */
  const counts = () => {
    now += 1_000;
    stats.roll();
    const v = reports.flatMap((r) => r.versions).reduce((acc, w) => ({ requests: acc.requests + w.requests, errors: acc.errors + w.errors }), { requests: 0, errors: 0 });
    reports.length = 0;
    return v;
  };
  const pod = (id: string) => membership.all().find((p) => p.id === id)!;
  return { router, membership, call, counts, pod, advance: (ms: number) => (now += ms) };
}

describe('RoutedCall: blame', () => {
  it('a client that cancels or lets its deadline pass, call after call, ejects no pod and spends no retry', () => {
    const { router, call, counts, pod, membership } = setup();
    for (let i = 0; i < 300; i++) {
      const c = call();
      if (i % 2) c.clientCancelled();
      else c.deadlineExpired();
      expect(c.aborted).toBe(1);
      expect(c.sent).toHaveLength(1);
      expect(c.over).toBe(i % 2 ? Code.CANCELLED : Code.DEADLINE_EXCEEDED);
      // Late news from the pod about the aborted attempt changes nothing.
      c.podFails();
      expect(c.sent).toHaveLength(1);
    }
    expect(membership.candidates('m', 1).map((p) => p.id).sort()).toEqual(['a', 'b', 'c']);
    expect(['a', 'b', 'c'].map((id) => [pod(id).failures, pod(id).outstanding])).toEqual([[0, 0], [0, 0], [0, 0]]);
    expect(router.inFlight).toBe(0);
    // The version had each expired call when its deadline passed: 150 of its errors; a cancel
    // counts nowhere; and the retry budget is whole: failing pods are retried.
    expect(counts()).toEqual({ requests: 150, errors: 150 });
    const c = call();
    c.podFails();
    expect(c.sent).toHaveLength(2);
  });

  it('only the deadline is answered by the router (a cancelled client is gone); the pod\'s CANCELLED or DEADLINE_EXCEEDED blames no pod, a deadline counts as the version\'s error', () => {
    const { call, pod, counts } = setup(['a']);
    const expired = call();
    expired.deadlineExpired();
    expect(expired.answer).toEqual({ code: Code.DEADLINE_EXCEEDED, message: 'deadline exceeded', from: 'router' });
    const cancelled = call();
    cancelled.clientCancelled();
    expect(cancelled.answer).toBeUndefined();
    expect(counts()).toEqual({ requests: 1, errors: 1 });
    pod('a').failures = 1;
    for (const code of [Code.CANCELLED, Code.DEADLINE_EXCEEDED]) {
      const c = call();
      c.podAnswers(code);
      expect(c.answer).toEqual({ code, message: '', from: 'pod' });
    }
    // Neither reset the pod's failures (it did not serve) nor added to them; the deadline the pod
    // enforced is the version's error, as the router's is.
    expect(pod('a').failures).toBe(1);
    expect(counts()).toEqual({ requests: 1, errors: 1 });
  });

  it('a pod that cannot be reached, resets or answers UNAVAILABLE is blamed, retried once elsewhere, and ejected after repeated failures', () => {
    const { call, pod, membership } = setup(['a', 'b'], 2);
    const first = call();
    expect(first.sent).toEqual(['a']);
    first.podFails();
    expect(first.sent).toEqual(['a', 'b']);
    first.podAnswers(Code.OK);
    expect(first.answer?.code).toBe(Code.OK);
    expect(pod('a').failures).toBe(1);
    expect(pod('b').failures).toBe(0);
    const second = call();
    expect(second.sent).toEqual(['a']);
    second.podAnswers(Code.UNAVAILABLE);
    expect(second.sent).toEqual(['a', 'b']);
    second.podAnswers(Code.OK);
    expect(membership.candidates('m', 1).map((p) => p.id)).toEqual(['b']); // a is ejected
  });

  it('a model\'s own errors show the pod serving: no blame, no retry, counted against the version', () => {
    const { call, pod, counts } = setup(['a', 'b']);
    pod('a').failures = 1;
    const c = call();
    c.podAnswers(13); // INTERNAL
    expect(c.sent).toEqual(['a']);
    expect(c.answer).toEqual({ code: 13, message: '', from: 'pod' });
    expect(pod('a').failures).toBe(0);
    expect(counts()).toEqual({ requests: 1, errors: 1 });
  });

  it('a call that names its version is answered and counted in the metrics, never in the window the rollout analysis judges', () => {
    // A caller allowed to infer must not choose which version's record its failures (or its
    // successes) go to: through the split they fall on stable and canary by their weights.
    const { call, counts } = setup(['a', 'b']);
    for (const code of [13, 4, 0]) { // INTERNAL, DEADLINE_EXCEEDED, OK
      const named = call('1');
      named.podAnswers(code);
      expect(named.answer).toEqual({ code, message: '', from: 'pod' });
    }
    expect(counts()).toEqual({ requests: 0, errors: 0 });
    call().podAnswers(13);
    expect(counts()).toEqual({ requests: 1, errors: 1 });
  });

  it('retries once: the second failure goes to the client with the pod\'s answer, counted against the version', () => {
    const { call, counts } = setup(['a', 'b', 'c']);
    const c = call();
    c.podAnswers(Code.UNAVAILABLE);
    c.podAnswers(Code.UNAVAILABLE);
    expect(c.sent).toHaveLength(2);
    expect(c.answer).toEqual({ code: Code.UNAVAILABLE, message: '', from: 'pod' });
    const d = call();
    d.podFails();
    d.podFails();
    expect(d.answer).toEqual({ code: Code.UNAVAILABLE, message: 'connection reset by the pod', from: 'router' });
    expect(counts()).toEqual({ requests: 2, errors: 2 });
  });

  it('a retry with no pod left for the version answers the pod\'s failure (UNAVAILABLE), never NOT_FOUND for a version the client did not ask for', () => {
    // The only pod fails and is ejected: the version is gone from the router's view for the retry.
    const { call, counts } = setup(['a'], 1);
    const answered = call();
    answered.podAnswers(Code.UNAVAILABLE);
    expect(answered.sent).toEqual(['a']);
    expect(answered.answer).toEqual({ code: Code.UNAVAILABLE, message: '', from: 'pod' });
    expect(answered.over).toBe(Code.UNAVAILABLE);
    // The other pod, restarted, no longer has version 1 when the retry looks for one.
    const { call: call2, membership, router, counts: counts2 } = setup(['a', 'b']);
    const unanswered = call2();
    expect(unanswered.sent).toEqual(['a']);
    membership.update(hb('b', 2));
    unanswered.podFails();
    expect(unanswered.sent).toEqual(['a']);
    expect(unanswered.answer).toEqual({ code: Code.UNAVAILABLE, message: 'connection reset by the pod', from: 'router' });
    expect(router.inFlight).toBe(0);
    // Each counted once against the version it was routed to, as a failure.
    expect(counts()).toEqual({ requests: 1, errors: 1 });
    expect(counts2()).toEqual({ requests: 1, errors: 1 });
  });

  it('a client that goes away during the retry blames the second pod for nothing', () => {
    const { call, pod } = setup(['a', 'b']);
    const c = call();
    c.podFails();
    c.clientCancelled();
    expect(c.sent).toEqual(['a', 'b']);
    expect(pod('a').failures).toBe(1);
    expect(pod('b').failures).toBe(0);
    expect(pod('b').outstanding).toBe(0);
  });

  it('answers the router\'s own refusals (unknown model, over the limit) without a version to count', () => {
    const { call, counts, router } = setup(['a']);
    const unknown = new TestCall({ router, stats: new VersionStats('r', 1_000, () => undefined), log: silentLogger }, 'nope', '');
    unknown.start();
    expect(unknown.answer).toMatchObject({ code: Code.NOT_FOUND, from: 'router' });
    const bad = call('x');
    expect(bad.answer).toMatchObject({ code: Code.INVALID_ARGUMENT, from: 'router' });
    expect(router.inFlight).toBe(0);
    expect(counts()).toEqual({ requests: 0, errors: 0 });
  });
});

describe('a version no pod holds, of a placed model (lazy loading)', () => {
  function placedSetup(maxWaiting = 8) {
    const membership = new Membership(60_000);
    const split = new TrafficSplit(() => 0.5);
    split.set('m', [{ version: 1, weight: 100 }], true);
    const demanded: string[] = [];
    const cold = new ColdStarts((model, version) => demanded.push(`${model}@${version}`), (model, version) => membership.candidates(model, version).length > 0,
      (model, version) => membership.loadFailure(model, version), { maxWaiting, maxWaitingPerVersion: maxWaiting, maxWaitMs: 10_000, repeatMs: 10_000 });
    const router = new Router(membership, split, roundRobin(), {
      maxOutstanding: 100, maxOutstandingPerPod: 100, retryBudgetRatio: 0.2, retryBudgetMinPerSecond: 2, ejectAfterFailures: 2, baseEjectionMs: 1_000, maxEjectionMs: 30_000,
    }, Date.now, cold);
    const deps: RoutingDeps = { router, stats: new VersionStats('r', 1_000, () => undefined), log: silentLogger };
    const call = (version = '') => {
      const c = new TestCall(deps, 'm', version);
      c.start();
      return c;
    };
    return { membership, cold, router, demanded, call };
  }

  it('waits for a pod to have it, then sends the call there; a named version too', () => {
    const { membership, cold, router, demanded, call } = placedSetup();
    const unnamed = call();
    const named = call('1');
    expect(unnamed.sent).toEqual([]);
    expect(named.sent).toEqual([]);
    expect(demanded).toEqual(['m@1']);
    expect(router.inFlight).toBe(2);
    membership.update(hb('a'));
    cold.check();
    expect(unnamed.sent).toEqual(['a']);
    expect(named.sent).toEqual(['a']);
    unnamed.podAnswers(Code.OK);
    expect(unnamed.answer).toMatchObject({ code: Code.OK, from: 'pod' });
    cold.close();
  });

  it('stops waiting when the client goes or its deadline passes, blaming nothing', () => {
    const { cold, router, call } = placedSetup();
    const gone = call();
    const late = call();
    gone.clientCancelled();
    late.deadlineExpired();
    expect(cold.size).toBe(0);
    expect(late.answer).toMatchObject({ code: Code.DEADLINE_EXCEEDED, from: 'router' });
    expect(router.inFlight).toBe(0);
  });

  it('answers RESOURCE_EXHAUSTED when too many wait, and a version that failed to load at once with why', () => {
    const { membership, cold, call } = placedSetup(1);
    call();
    const second = call();
    expect(second.answer).toMatchObject({ code: 8, from: 'router' });
    cold.close();
    membership.update({ ...hb('a'), models: [{ name: 'm', version: 1, state: 'UNAVAILABLE', provider: '', reason: 'bad graph' }] });
    const third = call();
    expect(third.answer).toMatchObject({ code: Code.UNAVAILABLE, from: 'router', message: "no inference pod has model 'm' version 1 ready: a: bad graph" });
  });

  it('answers at once, UNAVAILABLE, for a model whose versions are not placed (placement off: every pod loads them)', () => {
    const { call, cold, router } = placedSetup();
    (router as unknown as { split: TrafficSplit }).split.set('m', [{ version: 1, weight: 100 }], false);
    const c = call();
    expect(c.answer).toMatchObject({ code: Code.UNAVAILABLE, from: 'router', message: "no inference pod has model 'm' ready" });
    expect(cold.size).toBe(0);
  });
});

describe('outcome tables', () => {
  it.each([
    [Code.OK, 'ok', 'ok'],
    [Code.UNAVAILABLE, 'failed', 'error'],
    [Code.CANCELLED, 'neutral', undefined],
    [Code.DEADLINE_EXCEEDED, 'neutral', 'deadline_exceeded'],
    [Code.INVALID_ARGUMENT, 'ok', undefined],
    [Code.NOT_FOUND, 'ok', undefined],
    [8, 'ok', 'error'], // RESOURCE_EXHAUSTED: the pod's queue is full
    [13, 'ok', 'error'], // INTERNAL: the model failed
  ])('status %i: pod %s, version %s', (code, pod, version) => {
    expect(podOutcomeOf(code)).toBe(pod);
    expect(versionOutcomeOf(code)).toBe(version);
  });
});
