// What the listing commands print for people (cli/views.ts), from the client's own types: the
// models table with traffic, rollout and the pods' states and reasons; versions with size, sha256
// and signature; keys; a rollout's status block and history; one-line events.
import type { ApiKey, Model, ModelIndexEntry, Pod, RegistryEvent, RolloutStatus, Version } from '../../../client/index';
import { eventLine, formatSignature, formatTraffic, keysView, modelsView, podsView, rolloutView, versionsView } from '../../../cli/views';

/** What a terminal acts on instead of showing: C0 (line breaks too, in one line or cell), DEL, C1, bidi controls. */
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const OSC52 = '\x1b]52;c;cm0gLXJmIH4=\x07';
const CLEAR = '\x1b[2J\x1b[H';

const model = (name: string, latest: number, traffic: { version: number; weight: number }[]): Model => ({
  name, description: '', labels: {}, config: null, latest_version: latest, traffic, created_at: '2025-06-01T12:00:00Z', revision: '1', placement: [], placed: false, placement_revision: '0',
});

const status = (m: string, rollout: RolloutStatus['rollout'], history: RolloutStatus['history'] = []): RolloutStatus => ({
  model: m, traffic: [{ version: 1, weight: 90 }, { version: 2, weight: 10 }], rollout, history,
});

const rollout = (over: Partial<NonNullable<RolloutStatus['rollout']>> = {}): NonNullable<RolloutStatus['rollout']> => ({
  stable: 1, canary: 2, weight: 10, steps: [10, 50], phase: 'progressing', automatic: true, passes: 1, fails: 0, reason: 'canary of version 2 at 10%',
  analysis: { min_requests: 10, max_error_rate_increase_points: 5, max_p99_latency_ratio: 3, windows_to_fail: 2, windows_to_advance: 3, ready_timeout_ms: 300_000 },
  ...over,
});

describe('formatTraffic and formatSignature', () => {
  it('write a split as version:weight% and a signature as name:DATATYPE[dims], ? for dynamic', () => {
    expect(formatTraffic([{ version: 1, weight: 90 }, { version: 2, weight: 10 }])).toBe('1:90% 2:10%');
    expect(formatTraffic([])).toBe('');
    expect(formatSignature([{ name: 'input', datatype: 'FP32', shape: ['-1', '784'] }])).toBe('input:FP32[?,784]');
    expect(formatSignature([{ name: 'a', datatype: 'INT64', shape: [] }, { name: 'b', datatype: 'BOOL', shape: [2, -1] }])).toBe('a:INT64[] b:BOOL[2,?]');
  });
});

describe('modelsView', () => {
  const models = [model('broken', 1, [{ version: 1, weight: 100 }]), model('mnist', 2, [{ version: 1, weight: 90 }, { version: 2, weight: 10 }])];
  const serving: ModelIndexEntry[] = [
    { name: 'broken', version: '1', state: 'UNAVAILABLE', reason: 'pod-a: model failed to load (failed 2 times in a row; next try in 2 s)' },
    { name: 'mnist', version: '1', state: 'READY', reason: '' },
    { name: 'mnist', version: '2', state: 'LOADING', reason: '' },
    { name: 'other', version: '1', state: 'UNAVAILABLE', reason: 'not in the registry' },
  ];
  const rollouts = new Map([['broken', status('broken', null)], ['mnist', status('mnist', rollout())]]);

  it('lists name, latest, traffic, a rollout in progress and the pods\' states, then the reasons', () => {
    expect(modelsView(models, serving, rollouts).split('\n')).toEqual([
      'NAME    LATEST  TRAFFIC      ROLLOUT          PODS',
      'broken  1       1:100%       -                v1 UNAVAILABLE',
      'mnist   2       1:90% 2:10%  progressing 10%  v1 READY, v2 LOADING',
      '',
      'broken v1 UNAVAILABLE: pod-a: model failed to load (failed 2 times in a row; next try in 2 s)',
    ]);
  });

  it('shows a finished rollout as -, unknown pods (no router) and rollouts (unreadable) as ?', () => {
    const done = new Map([['mnist', status('mnist', rollout({ phase: 'promoted', weight: 100 }))]]);
    expect(modelsView([models[1]!], [], done).split('\n')[1]).toBe('mnist  2       1:90% 2:10%  -        -');
    expect(modelsView([models[1]!], undefined, new Map()).split('\n')[1]).toBe('mnist  2       1:90% 2:10%  ?        ?');
  });

  it('with placement on, lists how many pods hold each served version', () => {
    const none = new Map([['broken', status('broken', null)], ['mnist', status('mnist', null)]]);
    const placed: Model = { ...models[1]!, placed: true, placement: [{ version: 1, pods: ['pod-1', 'pod-2'], memory_bytes: '9000000' }] };
    const cold: Model = { ...models[0]!, placed: true, placement: [] };
    expect(modelsView([cold, placed], [], none).split('\n')).toEqual([
      'NAME    LATEST  TRAFFIC      COPIES     ROLLOUT  PODS',
      'broken  1       1:100%       -          -        -',
      'mnist   2       1:90% 2:10%  v1×2 v2×0  -        -',
    ]);
  });

  it('says how to start when there are no models, and colours states on a terminal', () => {
    expect(modelsView([], undefined, new Map())).toMatch(/^No models yet: push one with `infermesh push/);
    const coloured = modelsView(models, serving, rollouts, { color: true });
    expect(coloured).toContain('\x1b[31mv1 UNAVAILABLE\x1b[39m');
    expect(coloured).toContain('\x1b[33mv1 READY, v2 LOADING\x1b[39m');
  });
});

describe('versionsView', () => {
  const version = (v: number, over: Partial<Version> = {}): Version => ({
    model: 'mnist', version: v, sha256: '64c36da4b88a6aeaaa6ca625b0ea19b6984fa822d2254cac59c2d348353392a9', size_bytes: '407622', created_at: '2025-06-01T12:00:03.120Z',
    inputs: [{ name: 'input', datatype: 'FP32', shape: ['-1', '784'] }],
    outputs: [{ name: 'logits', datatype: 'FP32', shape: ['-1', '10'] }, { name: 'probabilities', datatype: 'FP32', shape: ['-1', '10'] }],
    state: 'VERSION_STATE_AVAILABLE', ...over,
  });

  it('lists version, state, human size, sha256 prefix, created time and the signature', () => {
    expect(versionsView([version(1), version(2, { state: 'VERSION_STATE_ARCHIVED', size_bytes: '64000172' })]).split('\n')).toEqual([
      'VERSION  STATE          SIZE  SHA256        CREATED               INPUTS             OUTPUTS',
      '1        AVAILABLE  407.6 kB  64c36da4b88a  2025-06-01 12:00:03Z  input:FP32[?,784]  logits:FP32[?,10] probabilities:FP32[?,10]',
      '2        ARCHIVED    64.0 MB  64c36da4b88a  2025-06-01 12:00:03Z  input:FP32[?,784]  logits:FP32[?,10] probabilities:FP32[?,10]',
    ]);
  });
});

describe('text from the network, stored before the registry refused it or sent by a pod', () => {
  it('versions: a tensor name\'s controls show as escapes', () => {
    const v: Version = {
      model: 'evil', version: 1, sha256: 'ab'.repeat(32), size_bytes: '100', created_at: '2025-06-01T12:00:03Z', state: 'VERSION_STATE_AVAILABLE',
      inputs: [{ name: `x${OSC52}`, datatype: 'FP32', shape: ['-1'] }], outputs: [{ name: `y${CLEAR}`, datatype: 'FP32', shape: ['-1'] }],
    };
    const out = versionsView([v]);
    expect(out).not.toMatch(RAW_CONTROL);
    expect(out.split('\n')[1]).toMatch(/ {2}x\\x1b\]52;c;cm0gLXJmIH4=\\x07:FP32\[\?\] {2}y\\x1b\[2J\\x1b\[H:FP32\[\?\]$/);
  });

  it('models and pods: a pod\'s reason is one line, its controls escaped', () => {
    const serving: ModelIndexEntry[] = [{ name: 'evil', version: '1', state: 'UNAVAILABLE', reason: `pod-a: failed\nevil v2 READY: fine${CLEAR}` }];
    const models = modelsView([model('evil', 1, [{ version: 1, weight: 100 }])], serving, new Map([['evil', status('evil', null)]]));
    expect(models).not.toMatch(RAW_CONTROL);
    expect(models.split('\n').at(-1)).toBe('evil v1 UNAVAILABLE: pod-a: failed\\x0aevil v2 READY: fine\\x1b[2J\\x1b[H');
    const pod: Pod = {
      name: 'pod-a', address: '10.0.0.1:8002', state: 'serving', inflight: 0, seen_at: '2025-06-01T12:00:03Z', memory_budget_bytes: '0', memory_used_bytes: '0', rss_bytes: '0',
      versions: [{ model: 'evil', version: 1, state: 'UNAVAILABLE', provider: 'cpu', reason: `warm-up failed${OSC52}`, memory_bytes: '0' }],
    } as Pod;
    const pods = podsView([pod]);
    expect(pods).not.toMatch(RAW_CONTROL);
    expect(pods.split('\n').at(-1)).toBe('pod-a evil:1 UNAVAILABLE: warm-up failed\\x1b]52;c;cm0gLXJmIH4=\\x07');
  });

  it('rollout status: the reason and the history\'s reasons', () => {
    const s = status('evil', rollout({ reason: `ok${CLEAR}${OSC52}` }), [{ time: '2025-06-01T12:00:00Z', action: 'paused', stable: 1, canary: 2, weight: 10, reason: `ok\u009b2J` }]);
    const out = rolloutView(s, { color: true });
    expect(out.replace(/\x1b\[\d+m/g, '')).not.toMatch(RAW_CONTROL);
    expect(out).toContain('Reason:    ok\\x1b[2J\\x1b[H\\x1b]52;c;cm0gLXJmIH4=\\x07');
    expect(out.split('\n').at(-1)).toMatch(/ {2}ok\\x9b2J$/);
  });

  it('events: labels, description, reason, model and principal', () => {
    const base = { schema: 1 as const, id: 'e', time: '2025-06-01T12:00:03Z', model: `evil${CLEAR}`, principal: `key:\u202e` };
    const config: RegistryEvent = { ...base, type: 'model.config.changed', description: 'd\u009b2J', labels: { team: `a${OSC52}` }, config: {} };
    const paused: RegistryEvent = { ...base, type: 'rollout.changed', action: 'paused', stable: 1, canary: 2, weight: 10, phase: 'paused', reason: `ok${CLEAR}` };
    for (const e of [config, paused]) expect(eventLine(3, e, { color: true }).replace(/\x1b\[(1|22)m/g, '')).not.toMatch(RAW_CONTROL);
    expect(eventLine(3, config)).toBe('#3    2025-06-01 12:00:03Z  evil\\x1b[2J\\x1b[H  model.config.changed  description "d\\x9b2J", labels team=a\\x1b]52;c;cm0gLXJmIH4=\\x07  by key:\\u202e');
    expect(eventLine(3, paused)).toMatch(/paused: v1 -> v2 at 10% \(paused\): ok\\x1b\[2J\\x1b\[H {2}by key:\\u202e$/);
  });
});

describe('keysView', () => {
  it('lists id, name, grants, created, by whom and when revoked, never a secret', () => {
    const keys: ApiKey[] = [
      { id: '0123456789abcdef', name: 'ci', grants: ['infer:mnist*', 'read'], created_at: '2025-06-01T12:00:00Z', created_by: 'bootstrap', revoked_at: '' },
      { id: 'fedcba9876543210', name: 'old', grants: ['admin'], created_at: '2025-06-01T12:00:01Z', created_by: 'key:0123456789abcdef', revoked_at: '2025-06-02T08:00:00Z' },
    ];
    expect(keysView(keys).split('\n')).toEqual([
      'ID                NAME  GRANTS             CREATED               CREATED BY            REVOKED',
      '0123456789abcdef  ci    infer:mnist*,read  2025-06-01 12:00:00Z  bootstrap             -',
      'fedcba9876543210  old   admin              2025-06-01 12:00:01Z  key:0123456789abcdef  2025-06-02 08:00:00Z',
    ]);
    expect(keysView([])).toBe('No keys.');
  });
});

describe('rolloutView', () => {
  it('shows stable, canary, weight, phase, step, analysis, reason and the history', () => {
    const s = status('mnist', rollout(), [
      { time: '2025-06-01T12:00:00Z', action: 'started', stable: 1, canary: 2, weight: 10, reason: 'canary of version 2 at 10%' },
      { time: '2025-06-01T12:00:30Z', action: 'paused', stable: 1, canary: 2, weight: 10, reason: '' },
    ]);
    expect(rolloutView(s).split('\n')).toEqual([
      'Model:     mnist',
      'Traffic:   1:90% 2:10%',
      'Stable:    v1',
      'Canary:    v2',
      'Weight:    10%',
      'Phase:     progressing',
      'Step:      1 of 2 (10%, 50%, then promote)',
      'Analysis:  automatic: 1 passing, 0 failing windows in a row; advance after 3 passing windows, roll back after 2 failing',
      'Reason:    canary of version 2 at 10%',
      '',
      'History:',
      'TIME                  ACTION   STABLE  CANARY  WEIGHT  REASON',
      '2025-06-01 12:00:00Z  started  v1      v2         10%  canary of version 2 at 10%',
      '2025-06-01 12:00:30Z  paused   v1      v2         10%  -',
    ]);
  });

  it('says when there is no rollout, and shows a manual or finished one\'s step as planned', () => {
    expect(rolloutView({ model: 'm', traffic: [{ version: 1, weight: 100 }], rollout: null, history: [] })).toBe([
      'Model:    m',
      'Traffic:  1:100%',
      'Rollout:  none yet (start one: infermesh rollout start <model> <version>)',
    ].join('\n'));
    const manual = rolloutView(status('m', rollout({ automatic: false, steps: [], weight: 30, phase: 'paused' }))).split('\n');
    expect(manual).toContain('Step:      none planned');
    expect(manual).toContain('Analysis:  off (manual: weight, promote and rollback by hand)');
    expect(rolloutView(status('m', rollout({ phase: 'rolled_back', weight: 0 }))).split('\n')).toContain('Step:      planned 10%, 50%, then promote');
  });
});

describe('eventLine', () => {
  const base = { schema: 1 as const, id: 'e', time: '2025-06-01T12:00:03.5Z', model: 'mnist', principal: 'key:0123456789abcdef' };
  it.each<[RegistryEvent, string]>([
    [{ ...base, type: 'version.published', version: 2, sha256: 'ab'.repeat(32), sizeBytes: 407_622 }, 'version.published     v2 407.6 kB sha256 abababababab  by key:0123456789abcdef'],
    [{ ...base, type: 'traffic.changed', traffic: [{ version: 1, weight: 90 }, { version: 2, weight: 10 }] }, 'traffic.changed       1:90% 2:10%  by key:0123456789abcdef'],
    [{ ...base, type: 'rollout.changed', action: 'rolled_back', stable: 1, canary: 2, weight: 0, phase: 'rolled_back', reason: 'error rate up 9 points' }, 'rollout.changed       rolled_back: v1 -> v2 at 0% (rolled_back): error rate up 9 points  by key:0123456789abcdef'],
    [{ ...base, type: 'model.config.changed', description: 'digits', labels: { team: 'ml' }, config: { dynamicBatching: { enabled: true, maxBatchSize: 32 }, warmup: [] } }, 'model.config.changed  description "digits", labels team=ml, batching on max 32, 0 warm-up samples  by key:0123456789abcdef'],
    [{ ...base, type: 'version.deleted', version: 1, sha256: 'ab', artifactDeleted: false }, 'version.deleted       v1 (artifact kept: another version has it)  by key:0123456789abcdef'],
    [{ ...base, type: 'model.created' }, 'model.created         by key:0123456789abcdef'],
    [{ ...base, type: 'placement.changed', version: 3, pods: ['pod-1', 'pod-2'], placed: ['pod-2'], removed: [], evicted: [], reason: 'demand' }, 'placement.changed     v3 on pod-1,pod-2 [+pod-2]: demand  by key:0123456789abcdef'],
    [{ ...base, type: 'placement.changed', version: 1, pods: [], placed: [], removed: ['pod-1'], evicted: ['pod-1'], reason: 'min_copies' }, 'placement.changed     v1 on no pod [-pod-1 (evicted)]: min copies  by key:0123456789abcdef'],
  ])('%#: one line with sequence, time, model, type, the salient fields and the principal', (event, rest) => {
    expect(eventLine(7, event)).toBe(`#7    2025-06-01 12:00:03Z  mnist     ${rest}`);
  });

  it('writes - for an event about no model, and leaves out a missing principal', () => {
    const e: RegistryEvent = { schema: 1, id: 'e', time: '2025-06-01T12:00:03Z', model: '', type: 'key.created', keyId: '0123456789abcdef', name: 'ci', grants: ['read'] };
    expect(eventLine(12, e)).toBe('#12   2025-06-01 12:00:03Z  -         key.created           0123456789abcdef "ci" read');
  });
});
