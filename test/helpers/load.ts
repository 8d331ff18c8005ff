// Closed-loop client load for tests: `concurrency` callers each sending requests back to back.
import type { InferenceApi, InferInput, InferResult } from '../../client/index';

/** What a load run saw. */
export interface LoadResult {
  ok: number;
  failed: number;
  /** Distinct errors ('<gRPC code>: <message>') with their counts. */
  errors: Map<string, number>;
  /** Responses' model versions with their counts. */
  versions: Map<string, number>;
}

/** Sends `inputs` to `model` until `stop()` resolves (or `count` requests were sent, if given). */
export async function runLoad(api: InferenceApi, model: string, inputs: InferInput[], opts: { concurrency: number; count?: number; until?: Promise<unknown>; timeoutMs?: number }): Promise<LoadResult> {
  const result: LoadResult = { ok: 0, failed: 0, errors: new Map(), versions: new Map() };
  let stopped = false;
  void opts.until?.then(() => (stopped = true));
  let sent = 0;
  const caller = async () => {
    while (!stopped && (opts.count === undefined || sent < opts.count)) {
      sent++;
      try {
        const res: InferResult = await api.infer(model, inputs, { timeoutMs: opts.timeoutMs ?? 10_000 });
        result.ok++;
        result.versions.set(res.modelVersion, (result.versions.get(res.modelVersion) ?? 0) + 1);
      } catch (err) {
        result.failed++;
        const code = (err as { grpcCode?: number }).grpcCode ?? '?';
        const msg = `${code}: ${err instanceof Error ? err.message : String(err)}`;
        result.errors.set(msg, (result.errors.get(msg) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, caller));
  return result;
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
