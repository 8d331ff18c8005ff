// infermesh.registry.v1.Rollouts handlers: check the caller, decode, call Rollouts, encode.
import { unaryHandler } from '../../../lib/grpc/handlers';
import type { Logger } from '../../../lib/log';
import type { RolloutsHandlers, RolloutStatus, RolloutAnalysisOut } from '../../../lib/grpc/types';
import type { Rollouts, RolloutStatus as Status } from './rollouts';
import type { RolloutAnalysis } from './rollout-state';
import type { CallContext, RegistryAccess, RegistryRpc } from '../access';

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

/** As sent: 0 (unset) takes the default and the rest is checked by Rollouts.start (rollout-validation.ts), NaN included. */
function analysisFromProto(a: RolloutAnalysisOut | null): Partial<RolloutAnalysis> {
  if (!a) return {};
  return {
    minRequests: a.min_requests,
    maxErrorRateIncreasePoints: a.max_error_rate_increase_points,
    maxP99LatencyRatio: a.max_p99_latency_ratio,
    windowsToFail: a.windows_to_fail,
    windowsToAdvance: a.windows_to_advance,
    readyTimeoutMs: a.ready_timeout_ms,
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

/**
 * The rollouts API's handlers over `rollouts`: each checks its caller for the RPC's scope on the
 * model (../access.ts) and names it in the rollout's events.
 */
export function rolloutHandlers(rollouts: Rollouts, access: RegistryAccess, log: Logger): RolloutsHandlers {
  const caller = (rpc: RegistryRpc, call: CallContext & { request: { model: string } }) => access.authorize(call, rpc, call.request.model);
  return {
    StartRollout: unaryHandler(log, async (call) => {
      const { name } = await caller('StartRollout', call);
      const r = call.request;
      return statusToProto(await rollouts.start(r.model, r.version, {
        weight: r.weight, steps: r.steps, automatic: r.automatic, analysis: analysisFromProto(r.analysis),
      }, name));
    }),
    SetRolloutWeight: unaryHandler(log, async (call) => {
      const { name } = await caller('SetRolloutWeight', call);
      return statusToProto(await rollouts.setWeight(call.request.model, call.request.weight, name));
    }),
    PromoteRollout: unaryHandler(log, async (call) => {
      const { name } = await caller('PromoteRollout', call);
      return statusToProto(await rollouts.promote(call.request.model, name, call.request.reason || undefined));
    }),
    RollbackRollout: unaryHandler(log, async (call) => {
      const { name } = await caller('RollbackRollout', call);
      return statusToProto(await rollouts.rollback(call.request.model, name, call.request.reason || undefined));
    }),
    PauseRollout: unaryHandler(log, async (call) => {
      const { name } = await caller('PauseRollout', call);
      return statusToProto(await rollouts.pause(call.request.model, name, call.request.reason || undefined));
    }),
    ResumeRollout: unaryHandler(log, async (call) => {
      const { name } = await caller('ResumeRollout', call);
      return statusToProto(await rollouts.resume(call.request.model, name));
    }),
    GetRollout: unaryHandler(log, async (call) => {
      await caller('GetRollout', call);
      return statusToProto(await rollouts.status(call.request.model));
    }),
  };
}
