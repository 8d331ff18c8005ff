// Rollout commands out of their domain, over gRPC against a real registry and nats-server: analysis
// settings that are infinite or negative, version 0, weights over 100 and a reason over 1 MiB are
// INVALID_ARGUMENT naming the field, and leave the model's rollout as it was; settings in range
// come back as sent.
import fs from 'node:fs';
import { RegistryApi, RolloutApi, InfermeshError } from '../../client/index';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { startTestRegistry } from '../helpers/services';
import { modelPath } from '../helpers/models';
import type { RegistryService } from '../../services/registry/registry-service';
import type { StartRolloutOptions } from '../../client/index';

jest.setTimeout(60_000);

const INVALID_ARGUMENT = 3;

async function refusal(p: Promise<unknown>): Promise<InfermeshError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(InfermeshError);
  return err as InfermeshError;
}

describe('rollout validation over gRPC', () => {
  let nats: NatsServerProcess & { cleanup(): Promise<void> };
  let service: RegistryService;
  let registry: RegistryApi;
  let rollouts: RolloutApi;

  beforeAll(async () => {
    nats = await startTestNats();
    service = await startTestRegistry(nats.url);
    registry = new RegistryApi(`127.0.0.1:${service.port}`);
    rollouts = new RolloutApi(`127.0.0.1:${service.port}`);
    const model = fs.readFileSync(modelPath('fixtures/add_sub_fp32.onnx'));
    for (const name of ['m', 'r']) {
      await registry.push(name, model); // version 1: serving
      await registry.push(name, model); // version 2: stored
    }
  });

  // A rollout a row should not have started (the code before these checks took them) ends here, so
  // the next row is judged on its own.
  afterEach(async () => {
    const phase = (await rollouts.status('m')).rollout?.phase;
    if (phase === 'progressing' || phase === 'paused') await rollouts.rollback('m');
  });

  afterAll(async () => {
    rollouts?.close();
    registry?.close();
    await service?.shutdown(5_000);
    await nats?.cleanup();
  });

  it.each<[string, number, StartRolloutOptions, RegExp]>([
    ['no latency limit as Infinity, and negative error points', 2, { analysis: { maxP99LatencyRatio: Infinity, maxErrorRateIncreasePoints: -5 } },
      /analysis\.max_error_rate_increase_points -5 is not .*; analysis\.max_p99_latency_ratio Infinity is not a finite multiple .*a large ratio such as 1000/],
    ['NaN error points', 2, { analysis: { maxErrorRateIncreasePoints: NaN } }, /^analysis\.max_error_rate_increase_points NaN is not/],
    ['error points above 100', 2, { analysis: { maxErrorRateIncreasePoints: 150 } }, /^analysis\.max_error_rate_increase_points 150 is not/],
    ['version 0', 0, {}, /^version 0 is not a version number: versions are numbered from 1$/],
    ['a weight over 100', 2, { weight: 101 }, /^weight 101 is not a whole percentage in 0\.\.100$/],
    ['a step over 100', 2, { weight: 10, steps: [10, 200] }, /^step 200 is not a whole percentage in 0\.\.100$/],
  ])('StartRollout refuses %s with INVALID_ARGUMENT and starts nothing', async (_name, version, opts, message) => {
    const before = (await rollouts.status('m')).history.length;
    const err = await refusal(rollouts.start('m', version, opts));
    expect({ code: err.grpcCode, message: err.message }).toEqual({ code: INVALID_ARGUMENT, message: expect.stringMatching(message) });
    expect((await rollouts.status('m')).history).toHaveLength(before);
  });

  it('keeps settings in range as sent; refuses an over-long reason, records one at the bound; refuses a weight over 100', async () => {
    const started = await rollouts.start('r', 2, { weight: 10, steps: [10, 50], analysis: { maxP99LatencyRatio: 1000, maxErrorRateIncreasePoints: 100 } });
    expect(started.rollout?.analysis).toEqual({
      min_requests: 10, max_error_rate_increase_points: 100, max_p99_latency_ratio: 1000, windows_to_fail: 2, windows_to_advance: 3, ready_timeout_ms: 300_000,
    });

    const huge = 'x'.repeat(1024 * 1024 + 1);
    for (const command of ['pause', 'rollback', 'promote'] as const) {
      const err = await refusal(rollouts[command]('r', huge));
      expect([command, err.grpcCode, err.message]).toEqual([command, INVALID_ARGUMENT, `reason has ${huge.length} characters, more than 1024`]);
    }
    const unchanged = await rollouts.status('r');
    expect(unchanged.rollout).toMatchObject({ phase: 'progressing', weight: 10, reason: 'canary of version 2 at 10%' });
    expect(unchanged.history).toHaveLength(1);

    const reason = 'r'.repeat(1024);
    const paused = await rollouts.pause('r', reason);
    expect(paused.rollout).toMatchObject({ phase: 'paused', reason });
    expect(paused.history.at(-1)?.reason).toBe(reason);

    const weight = await refusal(rollouts.setWeight('r', 101));
    expect([weight.grpcCode, weight.message]).toEqual([INVALID_ARGUMENT, 'weight 101 is not a whole percentage in 0..100']);
  });
});
