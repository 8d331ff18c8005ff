// A proven pod's heartbeat claims are asked of the pod (lib/heartbeat-confirmation.ts), here with
// the router's membership as the view: one question per pod in flight, at most one per interval,
// the latest claim kept meanwhile; the pod's answer is what the view applies; a goodbye without an
// answer is honoured, one the pod denies is not; an answer that does not come keeps what was known.
// The pod's answers here are functions of the test (the integration tests forged-heartbeats*.test.ts
// ask real pods; test/unit/services/registry/placement-pods.test.ts has placement as the view).
import { SCHEMA_VERSION, type Heartbeat, type PodModel } from '../../../lib/events';
import { createLogger } from '../../../lib/log';
import { ClaimWarnings } from '../../../lib/pod-claims';
import { Membership, type Pod } from '../../../services/router/membership';
import { HeartbeatConfirmation, type PodAnswers, type ServingAnswer } from '../../../lib/heartbeat-confirmation';
import { waitFor } from '../../helpers/wait';

const READY_1: PodModel = { name: 'm', version: 1, state: 'READY', provider: 'cpu', inflight: 0 };

function hb(models: PodModel[], state: Heartbeat['state'] = 'serving'): Heartbeat {
  return { schema: SCHEMA_VERSION, pod: 'a', address: '10.0.0.1:8002', state, models, inflight: 0, time: new Date().toISOString() };
}

/** A membership with identities required and a proven pod `a` (READY_1), wired to a confirmation over `answers`. */
function proven(answers: PodAnswers<Pod>, intervalMs: number, backoffMs?: number) {
  const lines: string[] = [];
  const log = createLogger('router', 'info', {}, (l) => lines.push(l));
  let confirmation: HeartbeatConfirmation<Pod> | undefined;
  const membership = new Membership(60_000, {
    claimed: (pod, claim) => confirmation?.claim(pod, claim),
    proven: (pod) => confirmation?.proven(pod),
    removed: (pod) => confirmation?.forget(pod),
  }, Date.now, true);
  let applied = 0;
  confirmation = new HeartbeatConfirmation(membership, answers, new ClaimWarnings(log, 0), log, { intervalMs, backoffMs, applied: () => applied++ });
  membership.update(hb([READY_1]));
  const pod = membership.all()[0]!;
  const versions = () => pod.models.map((m) => `${m.version}:${m.state}`);
  return { membership, confirmation, pod, lines, versions, applied: () => applied, warnings: () => lines.filter((l) => l.includes('"warn"')) };
}

/** Answers of a pod that has `models` and serves, each after `delayMs`, counting the questions. */
function pod(models: () => PodModel[], delayMs = 0) {
  const asked = { versions: 0, serving: 0, inFlight: 0, mostInFlight: 0 };
  const answer = async <T>(value: () => T, kind: 'versions' | 'serving'): Promise<T> => {
    asked[kind]++;
    asked.mostInFlight = Math.max(asked.mostInFlight, ++asked.inFlight);
    await new Promise((r) => setTimeout(r, delayMs));
    asked.inFlight--;
    return value();
  };
  const answers: PodAnswers<Pod> = {
    versions: (_p: Pod) => answer(() => models().map((m) => ({ ...m, provider: '' })), 'versions'),
    serving: (_p: Pod) => answer(() => ({ serving: true, answer: 'SERVING' }), 'serving'),
  };
  return { answers, asked };
}

it('asks a proven pod its versions on its proof, and applies its answer over what heartbeats said before', async () => {
  const p = pod(() => [{ name: 'm', version: 2, state: 'READY', provider: 'cpu' }]);
  const r = proven(p.answers, 0);
  r.membership.setVerified(r.pod, true);
  await waitFor('the answer applied', () => r.versions().join() === '2:READY');
  expect(p.asked.versions).toBe(1);
  expect(r.applied()).toBe(1);
  expect(r.warnings()).toEqual([expect.stringContaining('says other than the proven pod')]);
});

it('asks once at a time and at most once per interval however many heartbeats claim a change, the latest kept', async () => {
  const truth: PodModel[] = [READY_1];
  const p = pod(() => truth, 20);
  const r = proven(p.answers, 200);
  r.membership.setVerified(r.pod, true);
  await waitFor('the proof confirmed', () => p.asked.versions === 1 && p.asked.inFlight === 0);
  const started = Date.now();
  // A flood of claims for 600 ms, every one of them wrong.
  while (Date.now() - started < 600) {
    r.membership.update(hb([]));
    r.membership.update(hb([READY_1, { name: 'm', version: 9, state: 'READY', provider: 'cpu' }]));
    r.membership.update(hb([{ ...READY_1, state: 'UNAVAILABLE', reason: 'failed to load' }]));
    expect(r.membership.candidates('m', 1)).toEqual([r.pod]);
    expect(r.membership.candidates('m', 9)).toEqual([]);
    expect(r.membership.loadFailure('m', 1)).toBeUndefined();
    await new Promise((res) => setTimeout(res, 5));
  }
  await waitFor('the last claim confirmed', () => p.asked.inFlight === 0);
  // The proof's question, then one per 200 ms: at most 1 + 4 over 600 ms and the claim left after it.
  expect(p.asked.versions).toBeGreaterThanOrEqual(3);
  expect(p.asked.versions).toBeLessThanOrEqual(6);
  expect(p.asked.mostInFlight).toBe(1);
  expect(r.versions()).toEqual(['1:READY']);
  // A real change: the pod unloads version 1 and loads 2. Its heartbeat says so; the answer applies.
  truth.splice(0, 1, { name: 'm', version: 2, state: 'READY', provider: 'cpu' });
  r.membership.update(hb([{ name: 'm', version: 2, state: 'READY', provider: 'cpu', inflight: 4 }]));
  await waitFor('the change applied', () => r.versions().join() === '2:READY');
  // Load figures come from the heartbeat that listed the version.
  expect(r.pod.models[0]).toMatchObject({ provider: 'cpu', inflight: 4 });
  expect(r.membership.candidates('m', 1)).toEqual([]);
  expect(r.membership.candidates('m', 2)).toEqual([r.pod]);
  r.confirmation.stop();
});

it('honours a goodbye the pod does not deny, and keeps a pod that says it serves', async () => {
  let serving: { serving: boolean; answer: string } = { serving: true, answer: 'SERVING' };
  const answers: PodAnswers<Pod> = { versions: async () => [READY_1], serving: async () => serving };
  const r = proven(answers, 0);
  r.membership.setVerified(r.pod, true);
  r.membership.update(hb([READY_1], 'draining'));
  await waitFor('a warning about the goodbye', () => r.warnings().some((l) => l.includes('says a proven pod is leaving')));
  expect(r.membership.all()).toEqual([r.pod]);
  serving = { serving: false, answer: '14 UNAVAILABLE: No connection established' };
  r.membership.update(hb([READY_1], 'stopped'));
  await waitFor('the pod gone', () => r.membership.all().length === 0);
});

it('keeps what it knew of a pod that does not say which versions it has', async () => {
  const answers: PodAnswers<Pod> = { versions: () => Promise.reject(new Error('4 DEADLINE_EXCEEDED: Deadline exceeded')), serving: async () => ({ serving: true, answer: 'SERVING' }) };
  const r = proven(answers, 0);
  r.membership.setVerified(r.pod, true);
  r.membership.update(hb([]));
  await waitFor('a warning', () => r.warnings().some((l) => l.includes('did not say which versions it has') && l.includes('DEADLINE_EXCEEDED')));
  expect(r.versions()).toEqual(['1:READY']);
  expect(r.membership.candidates('m', 1)).toEqual([r.pod]);
});

it('asks about a real change of versions through a flood of forged goodbyes', async () => {
  const truth: PodModel[] = [READY_1];
  const p = pod(() => truth, 10);
  const r = proven(p.answers, 100);
  r.membership.setVerified(r.pod, true);
  await waitFor('the proof confirmed', () => p.asked.versions === 1 && p.asked.inFlight === 0);
  truth.splice(0, 1, { name: 'm', version: 2, state: 'READY', provider: 'cpu' });
  // Past the interval since that question:
  await new Promise((res) => setTimeout(res, 150));
  // A forged goodbye (asked about at once), the pod's own heartbeat while that question is in
  // flight, then forged goodbyes after it, each the latest heard.
  r.membership.update(hb([READY_1], 'draining'));
  expect(p.asked.serving).toBe(1);
  r.membership.update(hb(truth));
  const started = Date.now();
  while (Date.now() - started < 400) {
    r.membership.update(hb([READY_1], 'draining'));
    await new Promise((res) => setTimeout(res, 5));
  }
  await waitFor('the change applied', () => r.versions().join() === '2:READY', 5_000, 10);
  expect(r.membership.all()).toEqual([r.pod]);
  expect(p.asked.serving).toBeGreaterThan(0);
  expect(p.asked.serving).toBeLessThanOrEqual(6);
  r.confirmation.stop();
});

it('takes a goodbye whose health check missed its deadline once as no answer yet: asked again, the pod stays if it answers; a refusal is an answer', async () => {
  const said: ServingAnswer[] = [
    { serving: false, answer: '4 DEADLINE_EXCEEDED: Deadline exceeded', deadlineMissed: true },
    { serving: true, answer: 'SERVING' },
    { serving: false, answer: '4 DEADLINE_EXCEEDED: Deadline exceeded', deadlineMissed: true },
    { serving: false, answer: '4 DEADLINE_EXCEEDED: Deadline exceeded', deadlineMissed: true },
  ];
  let asked = 0;
  const answers: PodAnswers<Pod> = { versions: async () => [READY_1], serving: async () => said[asked++]! };
  const r = proven(answers, 0);
  r.membership.setVerified(r.pod, true);
  r.membership.update(hb([READY_1], 'draining'));
  await waitFor('a warning about the goodbye', () => r.warnings().some((l) => l.includes('says a proven pod is leaving')));
  expect(asked).toBe(2);
  expect(r.membership.all()).toEqual([r.pod]);
  // Two deadlines missed in a row, as the health checks need two failures: it goes.
  r.membership.update(hb([READY_1], 'draining'));
  await waitFor('the pod gone', () => r.membership.all().length === 0);
  expect(asked).toBe(4);
  // A refused connection or NOT_SERVING is an answer: honoured at the first question.
  for (const answer of [{ serving: false, answer: '14 UNAVAILABLE: No connection established' }, { serving: false, answer: 'NOT_SERVING' }]) {
    let once = 0;
    const other = proven({ versions: async () => [READY_1], serving: async () => (once++, answer) }, 0);
    other.membership.setVerified(other.pod, true);
    other.membership.update(hb([READY_1], 'stopped'));
    await waitFor('the pod gone', () => other.membership.all().length === 0);
    expect(once).toBe(1);
  }
});

it('asks a pod whose answers keep contradicting the heartbeats in its name less and less often, up to the backoff, and at the interval again once one agrees', async () => {
  let truth: PodModel[] = [READY_1];
  const p = pod(() => truth);
  const r = proven(p.answers, 20, 320);
  r.membership.setVerified(r.pod, true);
  await waitFor('the proof confirmed', () => p.asked.versions === 1 && p.asked.inFlight === 0);
  const started = Date.now();
  // Heartbeats in its name saying it has nothing, every 5 ms for 1.2 s, each contradicted.
  while (Date.now() - started < 1_200) {
    r.membership.update(hb([]));
    await new Promise((res) => setTimeout(res, 5));
  }
  // Every 20 ms would be 60 questions; waits of 20, 40, 80, 160, then 320 ms make 7 or 8.
  const contradicted = p.asked.versions - 1;
  expect(contradicted).toBeGreaterThanOrEqual(4);
  expect(contradicted).toBeLessThanOrEqual(9);
  expect(r.versions()).toEqual(['1:READY']);
  // A claim the pod bears out (a real change) is applied, and ends the backoff.
  truth = [{ name: 'm', version: 2, state: 'READY', provider: 'cpu' }];
  r.membership.update(hb(truth));
  await waitFor('the change applied', () => r.versions().join() === '2:READY', 2_000, 5);
  const before = p.asked.versions;
  truth = [READY_1];
  const changed = Date.now();
  r.membership.update(hb(truth));
  await waitFor('the next change applied', () => r.versions().join() === '1:READY', 2_000, 2);
  expect(p.asked.versions).toBe(before + 1);
  expect(Date.now() - changed).toBeLessThan(150);
  r.confirmation.stop();
});

it('logs how many versions a contradicted heartbeat and the answer list, and the first few only', async () => {
  const many = Array.from({ length: 5_000 }, (_, i): PodModel => ({ name: `model-${i}`, version: 1, state: 'READY', provider: 'cpu' }));
  const p = pod(() => many);
  const r = proven(p.answers, 0);
  r.membership.setVerified(r.pod, true);
  await waitFor('the answer applied', () => r.pod.models.length === 5_000);
  r.membership.update(hb(many.slice(1)));
  await waitFor('two warnings', () => r.warnings().length === 2);
  for (const line of r.warnings()) {
    expect(line.length).toBeLessThan(2_000);
    expect(line).toContain('"count":5000');
  }
  expect(r.warnings()[1]).toContain('"count":4999');
  r.confirmation.stop();
});
