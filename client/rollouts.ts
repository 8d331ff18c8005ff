// A typed client of infermesh's rollouts API (served by the registry).
import { rolloutsClient, unary } from '../lib/grpc/client';
import type { RolloutsClient, RolloutStatusOut } from '../lib/grpc/types';
import { wrap } from './errors';
import { clientOptions, type ConnectOptions } from './connection';

/** Options of a rollout; by default 10% to the canary, manual (no automatic analysis). */
export interface StartRolloutOptions {
  weight?: number;
  /** Planned weights for automatic analysis, ascending; promoted after the last. */
  steps?: number[];
  automatic?: boolean;
  analysis?: {
    minRequests?: number;
    maxErrorRateIncreasePoints?: number;
    maxP99LatencyRatio?: number;
    windowsToFail?: number;
    windowsToAdvance?: number;
    /** Roll back when no pod has had the canary ready for this long (default 5 minutes). */
    readyTimeoutMs?: number;
  };
}

export class RolloutApi {
  private readonly client: RolloutsClient;

  /** Connects to the registry at `address` (host:port); plaintext and without a token by default. */
  constructor(address: string, opts: ConnectOptions = {}) {
    this.client = rolloutsClient(address, clientOptions(address, opts));
  }

  /** Starts a canary of `version`. */
  start(model: string, version: number, opts: StartRolloutOptions = {}): Promise<RolloutStatusOut> {
    const a = opts.analysis ?? {};
    return unary<RolloutStatusOut>((cb) => this.client.StartRollout({
      model,
      version,
      weight: opts.weight ?? 10,
      steps: opts.steps ?? [],
      automatic: opts.automatic ?? false,
      analysis: {
        min_requests: a.minRequests ?? 0,
        max_error_rate_increase_points: a.maxErrorRateIncreasePoints ?? 0,
        max_p99_latency_ratio: a.maxP99LatencyRatio ?? 0,
        windows_to_fail: a.windowsToFail ?? 0,
        windows_to_advance: a.windowsToAdvance ?? 0,
        ready_timeout_ms: a.readyTimeoutMs ?? 0,
      },
    }, cb)).catch(wrap);
  }

  /** Sets the canary's weight (percent). */
  setWeight(model: string, weight: number): Promise<RolloutStatusOut> {
    return unary<RolloutStatusOut>((cb) => this.client.SetRolloutWeight({ model, weight }, cb)).catch(wrap);
  }

  /** The canary takes all traffic. */
  promote(model: string, reason = ''): Promise<RolloutStatusOut> {
    return unary<RolloutStatusOut>((cb) => this.client.PromoteRollout({ model, reason }, cb)).catch(wrap);
  }

  /** All traffic back to the stable version. */
  rollback(model: string, reason = ''): Promise<RolloutStatusOut> {
    return unary<RolloutStatusOut>((cb) => this.client.RollbackRollout({ model, reason }, cb)).catch(wrap);
  }

  /** Holds the weights. */
  pause(model: string, reason = ''): Promise<RolloutStatusOut> {
    return unary<RolloutStatusOut>((cb) => this.client.PauseRollout({ model, reason }, cb)).catch(wrap);
  }

  resume(model: string): Promise<RolloutStatusOut> {
    return unary<RolloutStatusOut>((cb) => this.client.ResumeRollout({ model, reason: '' }, cb)).catch(wrap);
  }

  /** Traffic in force, the latest rollout and its history. */
  status(model: string): Promise<RolloutStatusOut> {
    return unary<RolloutStatusOut>((cb) => this.client.GetRollout({ model, reason: '' }, cb)).catch(wrap);
  }

  close(): void {
    this.client.close();
  }
}
