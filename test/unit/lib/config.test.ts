import { loadConfig, knownVariables, MAX_TIMER_MS } from '../../../lib/config';

describe('loadConfig', () => {
  it('gives documented defaults and a frozen object', () => {
    const c = loadConfig({});
    expect(c.routerPort).toBe(8001);
    expect(c.rolloutMaxUncountedWindows).toBe(10);
    expect(c.podName).toMatch(/-\d+$/);
    expect(c.executionProviders).toEqual(['cuda', 'cpu']);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('parses values and honours NATS_URL when INFERMESH_NATS_URL is unset', () => {
    const c = loadConfig({ INFERMESH_ROUTER_PORT: '9001', INFERMESH_EXECUTION_PROVIDERS: 'cpu', NATS_URL: 'nats://n:4222', INFERMESH_WARMUP: 'false' });
    expect(c.routerPort).toBe(9001);
    expect(c.executionProviders).toEqual(['cpu']);
    expect(c.natsUrl).toBe('nats://n:4222');
    expect(c.warmup).toBe(false);
  });

  it.each([
    ['INFERMESH_ROUTER_PORT', '80a', 'INFERMESH_ROUTER_PORT="80a" is invalid: expected an integer in [0, 65535]'],
    ['INFERMESH_EXECUTION_PROVIDERS', 'cuda,tpu', 'INFERMESH_EXECUTION_PROVIDERS="cuda,tpu" is invalid'],
    ['INFERMESH_LOG_LEVEL', 'loud', 'INFERMESH_LOG_LEVEL="loud" is invalid: expected one of debug, info, warn, error'],
    ['INFERMESH_TLS_MIN_VERSION', 'TLSv1.1', 'INFERMESH_TLS_MIN_VERSION="TLSv1.1" is invalid: expected one of TLSv1.2, TLSv1.3'],
    ['INFERMESH_WARMUP', 'maybe', 'INFERMESH_WARMUP="maybe" is invalid: expected true or false'],
    ['INFERMESH_POD_IDENTITY', 'team/inference', 'INFERMESH_POD_IDENTITY="team/inference" is invalid: expected 1 to 253 letters'],
    // A router's name goes into its window reports, which the registry refuses with any other.
    ['INFERMESH_POD_NAME', 'router 1', 'INFERMESH_POD_NAME="router 1" is invalid: expected 1 to 253 letters'],
    ['INFERMESH_POD_NAME', 'r'.repeat(254), 'INFERMESH_POD_NAME="rrr'],
    ['INFERMESH_ROLLOUT_MAX_UNCOUNTED_WINDOWS', '0', 'INFERMESH_ROLLOUT_MAX_UNCOUNTED_WINDOWS="0" is invalid: expected an integer in [1, 1000000]'],
    ['INFERMESH_INTRA_OP_SPINNING', 'sometimes', 'INFERMESH_INTRA_OP_SPINNING="sometimes" is invalid: expected one of on, runs, off'],
  ])('rejects a bad %s naming the variable', (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(message);
  });

  it.each([
    [undefined, 'on'], ['on', 'on'], ['runs', 'runs'], ['off', 'off'], ['true', 'on'], ['false', 'off'], ['ON', 'on'], ['Off', 'off'], ['TRUE', 'on'],
  ])('reads INFERMESH_INTRA_OP_SPINNING=%p as %p (true and false as they meant before there were policies)', (raw, policy) => {
    expect(loadConfig(raw === undefined ? {} : { INFERMESH_INTRA_OP_SPINNING: raw }).intraOpSpinning).toBe(policy);
  });

  it('lists every variable it reads, all with one prefix', () => {
    expect(knownVariables.length).toBeGreaterThan(10);
    for (const v of knownVariables) expect(v).toMatch(/^INFERMESH_[A-Z0-9_]+$/);
  });

  it('refuses a REST request budget below the message limit, naming both, unless the REST door is off', () => {
    const MiB = 1024 * 1024;
    expect(() => loadConfig({ INFERMESH_HTTP_MAX_REQUEST_BYTES: String(16 * MiB) }))
      .toThrow(`INFERMESH_HTTP_MAX_REQUEST_BYTES="${16 * MiB}" is invalid: expected at least INFERMESH_MAX_MESSAGE_BYTES (${64 * MiB})`);
    expect(() => loadConfig({ INFERMESH_MAX_MESSAGE_BYTES: String(512 * MiB) })).toThrow('INFERMESH_HTTP_MAX_REQUEST_BYTES="268435456" is invalid');
    // One connection's share of it too.
    expect(() => loadConfig({ INFERMESH_HTTP_MAX_REQUEST_BYTES_PER_CONNECTION: String(16 * MiB) }))
      .toThrow(`INFERMESH_HTTP_MAX_REQUEST_BYTES_PER_CONNECTION="${16 * MiB}" is invalid: expected at least INFERMESH_MAX_MESSAGE_BYTES (${64 * MiB})`);
    // Equal is enough: the largest body fits.
    expect(loadConfig({ INFERMESH_HTTP_MAX_REQUEST_BYTES: String(16 * MiB), INFERMESH_MAX_MESSAGE_BYTES: String(16 * MiB) }).httpMaxRequestBytes).toBe(16 * MiB);
    // A service without the REST door (a pod, the registry, a router with it off) is not held to it.
    const doorBudgets = { INFERMESH_H2_MAX_REQUEST_BYTES_PER_CONNECTION: String(512 * MiB), INFERMESH_H2_MAX_REQUEST_BYTES: String(512 * MiB) };
    expect(loadConfig({ INFERMESH_MAX_MESSAGE_BYTES: String(512 * MiB), INFERMESH_ROUTER_HTTP: 'false', ...doorBudgets }).maxMessageBytes).toBe(512 * MiB);
  });

  it('refuses a gRPC door\'s request budget below the message limit, naming both', () => {
    const MiB = 1024 * 1024;
    expect(() => loadConfig({ INFERMESH_H2_MAX_REQUEST_BYTES_PER_CONNECTION: String(16 * MiB) }))
      .toThrow(`INFERMESH_H2_MAX_REQUEST_BYTES_PER_CONNECTION="${16 * MiB}" is invalid: expected at least INFERMESH_MAX_MESSAGE_BYTES (${64 * MiB})`);
    expect(() => loadConfig({ INFERMESH_H2_MAX_REQUEST_BYTES: String(32 * MiB) }))
      .toThrow(`INFERMESH_H2_MAX_REQUEST_BYTES="${32 * MiB}" is invalid: expected at least INFERMESH_MAX_MESSAGE_BYTES (${64 * MiB})`);
    // Raising the message limit alone leaves the per-connection default (64 MiB) below it.
    expect(() => loadConfig({ INFERMESH_MAX_MESSAGE_BYTES: String(128 * MiB) })).toThrow('INFERMESH_H2_MAX_REQUEST_BYTES_PER_CONNECTION="67108864" is invalid');
    // Budgets lowered with the message limit are fine; answer budgets may be below it (one answer of any size is taken).
    expect(loadConfig({
      INFERMESH_MAX_MESSAGE_BYTES: String(16 * MiB), INFERMESH_H2_MAX_REQUEST_BYTES_PER_CONNECTION: String(16 * MiB), INFERMESH_H2_MAX_REQUEST_BYTES: String(16 * MiB),
      INFERMESH_H2_MAX_RESPONSE_BYTES_PER_CONNECTION: String(MiB), INFERMESH_H2_MAX_RESPONSE_BYTES: String(MiB),
    })).toMatchObject({ h2MaxRequestBytesPerConnection: 16 * MiB, h2MaxRequestBytes: 16 * MiB, h2MaxResponseBytes: MiB });
  });

  it('bounds the outbox\'s call wait and flush budget by half the event stream\'s duplicate window, 5 s and 60 s by default', () => {
    expect(loadConfig({})).toMatchObject({ registryOutboxCallWaitMs: 5_000, registryOutboxFlushBudgetMs: 60_000 });
    expect(loadConfig({ INFERMESH_REGISTRY_OUTBOX_CALL_WAIT_MS: '2000', INFERMESH_REGISTRY_OUTBOX_FLUSH_BUDGET_MS: '30000' })).toMatchObject({ registryOutboxCallWaitMs: 2_000, registryOutboxFlushBudgetMs: 30_000 });
    // Longer, a copy sent late could outlive the window of another flush's and be stored twice.
    expect(() => loadConfig({ INFERMESH_REGISTRY_OUTBOX_FLUSH_BUDGET_MS: '60001' })).toThrow('INFERMESH_REGISTRY_OUTBOX_FLUSH_BUDGET_MS="60001" is invalid: expected an integer in [1000, 60000]');
    expect(() => loadConfig({ INFERMESH_REGISTRY_OUTBOX_CALL_WAIT_MS: '60001' })).toThrow('INFERMESH_REGISTRY_OUTBOX_CALL_WAIT_MS="60001" is invalid: expected an integer in [100, 60000]');
  });

  it('makes the outbox\'s publish attempts and its give-up of a version\'s write settings, the give-up no shorter than the write\'s retries', () => {
    expect(loadConfig({})).toMatchObject({ registryOutboxPublishTimeoutMs: 5_000, registryOutboxPublishAttempts: 6, registryOutboxVersionWriteGraceMs: 40_000 });
    expect(loadConfig({ INFERMESH_REGISTRY_OUTBOX_PUBLISH_TIMEOUT_MS: '2000', INFERMESH_REGISTRY_OUTBOX_PUBLISH_ATTEMPTS: '3', INFERMESH_REGISTRY_OUTBOX_VERSION_WRITE_GRACE_MS: '120000' }))
      .toMatchObject({ registryOutboxPublishTimeoutMs: 2_000, registryOutboxPublishAttempts: 3, registryOutboxVersionWriteGraceMs: 120_000 });
    expect(() => loadConfig({ INFERMESH_REGISTRY_OUTBOX_PUBLISH_ATTEMPTS: '0' })).toThrow('INFERMESH_REGISTRY_OUTBOX_PUBLISH_ATTEMPTS="0" is invalid: expected an integer in [1, 100]');
    expect(() => loadConfig({ INFERMESH_REGISTRY_OUTBOX_PUBLISH_TIMEOUT_MS: '60001' })).toThrow('INFERMESH_REGISTRY_OUTBOX_PUBLISH_TIMEOUT_MS="60001" is invalid: expected an integer in [100, 60000]');
    // Shorter than a registry's 6 attempts of up to 5 s and the 6 s of waits between, plus 4 s for
    // another replica's clock, a write held up by a leader election could be fenced while its
    // registry is still on its way.
    expect(loadConfig({ INFERMESH_REGISTRY_OUTBOX_VERSION_WRITE_GRACE_MS: '40000' }).registryOutboxVersionWriteGraceMs).toBe(40_000);
    for (const grace of ['39999', '36000']) {
      expect(() => loadConfig({ INFERMESH_REGISTRY_OUTBOX_VERSION_WRITE_GRACE_MS: grace }))
        .toThrow(`INFERMESH_REGISTRY_OUTBOX_VERSION_WRITE_GRACE_MS="${grace}" is invalid: expected at least 40000: 36000, the longest a registry retries a version's write (6 attempts of up to 5000 ms and the waits between), plus 4000 for replicas' clocks that disagree`);
    }
  });

  it('probes NATS within the pod TTL: a fifth of it each by default, and refuses a probe that would notice a hung NATS too late', () => {
    expect(loadConfig({})).toMatchObject({ natsProbeIntervalMs: 1_000, natsProbeTimeoutMs: 1_000 });
    expect(loadConfig({ INFERMESH_POD_TTL_MS: '1500' })).toMatchObject({ natsProbeIntervalMs: 300, natsProbeTimeoutMs: 300 });
    expect(loadConfig({ INFERMESH_NATS_PROBE_INTERVAL_MS: '2000', INFERMESH_NATS_PROBE_TIMEOUT_MS: '500' })).toMatchObject({ natsProbeIntervalMs: 2_000, natsProbeTimeoutMs: 500 });
    expect(() => loadConfig({ INFERMESH_NATS_PROBE_TIMEOUT_MS: '4000' }))
      .toThrow('INFERMESH_NATS_PROBE_TIMEOUT_MS="4000" is invalid: expected a value with INFERMESH_NATS_PROBE_INTERVAL_MS plus INFERMESH_NATS_PROBE_TIMEOUT_MS less than INFERMESH_POD_TTL_MS (5000)');
    expect(() => loadConfig({ INFERMESH_NATS_PROBE_INTERVAL_MS: '1000', INFERMESH_POD_TTL_MS: '1200' })).toThrow('INFERMESH_NATS_PROBE_INTERVAL_MS="1000" is invalid');
  });

  it('lingers as nginx by default (30 s in all, 5 s between reads), 0 turning it off, and refuses more than an hour', () => {
    expect(loadConfig({})).toMatchObject({ httpLingeringTimeMs: 30_000, httpLingeringTimeoutMs: 5_000 });
    expect(loadConfig({ INFERMESH_HTTP_LINGERING_TIME_MS: '0', INFERMESH_HTTP_LINGERING_TIMEOUT_MS: '0' })).toMatchObject({ httpLingeringTimeMs: 0, httpLingeringTimeoutMs: 0 });
    expect(() => loadConfig({ INFERMESH_HTTP_LINGERING_TIME_MS: '3600001' })).toThrow('INFERMESH_HTTP_LINGERING_TIME_MS="3600001" is invalid: expected an integer in [0, 3600000]');
    expect(() => loadConfig({ INFERMESH_HTTP_LINGERING_TIMEOUT_MS: '-1' })).toThrow('INFERMESH_HTTP_LINGERING_TIMEOUT_MS="-1" is invalid');
  });

  it('refuses a duration longer than Node\'s timers can wait, which would fire after 1 ms instead', () => {
    expect(loadConfig({ INFERMESH_H2_IDLE_TIMEOUT_MS: String(MAX_TIMER_MS) }).h2IdleTimeoutMs).toBe(MAX_TIMER_MS);
    expect(() => loadConfig({ INFERMESH_H2_IDLE_TIMEOUT_MS: String(MAX_TIMER_MS + 1) }))
      .toThrow(`INFERMESH_H2_IDLE_TIMEOUT_MS="${MAX_TIMER_MS + 1}" is invalid: expected an integer in [0, ${MAX_TIMER_MS}]`);
    expect(() => loadConfig({ INFERMESH_SHUTDOWN_TIMEOUT_MS: '99999999999' })).toThrow('INFERMESH_SHUTDOWN_TIMEOUT_MS="99999999999" is invalid');
    const durations = knownVariables.filter((v) => v.endsWith('_MS'));
    expect(durations.length).toBeGreaterThan(50);
    for (const name of durations) {
      // Some durations must stay below others; each alone past the timers' limit is refused whatever they say.
      expect(() => loadConfig({ [name]: String(MAX_TIMER_MS + 1) })).toThrow(name);
    }
  });
});
