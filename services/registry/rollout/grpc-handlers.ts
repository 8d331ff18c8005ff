// infermesh.registry.v1.Rollouts handlers: decode, call Rollouts, encode.
import { unaryHandler } from '../../../lib/grpc/handlers';
import type { Logger } from '../../../lib/log';
import type { RolloutsHandlers, RolloutStatus, RolloutAnalysisOut } from '../../../lib/grpc/types';
import type { Rollouts, RolloutStatus as Status } from './rollouts';
import type { RolloutAnalysis } from './rollout-state';

function analysisToProto(a: RolloutAnalysis) {
  return {
    min_requests: a.minRequests,
    max_error_rate_increase_points: a.maxErrorRateIncreasePoints,
    max_p99_latency_ratio: a.maxP99LatencyRatio,
    windows_to_fail: a.windowsToFail,
    windows_to_advance: a.windowsToAdvance,
    ready_timeout_ms: a.readyTimeoutMs,
  };
}

function analysisFromProto(a: RolloutAnalysisOut | null): Partial<RolloutAnalysis> {
  if (!a) return {};
  return {
    minRequests: a.min_requests || undefined,
    maxErrorRateIncreasePoints: a.max_error_rate_increase_points || undefined,
    maxP99LatencyRatio: a.max_p99_latency_ratio || undefined,
    windowsToFail: a.windows_to_fail || undefined,
    windowsToAdvance: a.windows_to_advance || undefined,
    readyTimeoutMs: a.ready_timeout_ms || undefined,
  };
}

/** Domain status → protocol RolloutStatus. */
export function statusToProto(s: Status): RolloutStatus {
  const r = s.rollout;
  return {
    model: s.model,
    traffic: s.traffic,
    rollout: r ? {
      stable: r.stable, canary: r.canary, weight: r.weight, steps: r.steps, phase: r.phase, automatic: r.automatic,
      analysis: analysisToProto(r.analysis), passes: r.passes, fails: r.fails, reason: r.reason,
    } : null,
    history: s.history,
  };
}

/** The rollouts API's handlers over `rollouts`. */
export function rolloutHandlers(rollouts: Rollouts, log: Logger): RolloutsHandlers {
  return {
    StartRollout: unaryHandler(log, async ({ request: r }) => statusToProto(await rollouts.start(r.model, r.version, {
      weight: r.weight, steps: r.steps, automatic: r.automatic, analysis: analysisFromProto(r.analysis),
    }))),
    SetRolloutWeight: unaryHandler(log, async ({ request: r }) => statusToProto(await rollouts.setWeight(r.model, r.weight))),
    PromoteRollout: unaryHandler(log, async ({ request: r }) => statusToProto(await rollouts.promote(r.model, r.reason || undefined))),
    RollbackRollout: unaryHandler(log, async ({ request: r }) => statusToProto(await rollouts.rollback(r.model, r.reason || undefined))),
    PauseRollout: unaryHandler(log, async ({ request: r }) => statusToProto(await rollouts.pause(r.model, r.reason || undefined))),
    ResumeRollout: unaryHandler(log, async ({ request: r }) => statusToProto(await rollouts.resume(r.model))),
    GetRollout: unaryHandler(log, async ({ request: r }) => statusToProto(await rollouts.status(r.model))),
  };
}
