// `infermesh rollout ...`: start, weight, promote, rollback, pause, resume, status.
import { RolloutApi, type ConnectOptions, type RolloutStatus } from '../client/index';

/** Flags the rollout commands read. */
export interface RolloutFlags {
  registry: string;
  /** --token and --ca. */
  connect: ConnectOptions;
  weight?: string;
  steps?: string;
  auto: boolean;
  reason?: string;
}

export const ROLLOUT_USAGE = `  infermesh rollout start <model> <version> [--weight P] [--steps P,P,...] [--auto]
                                                           canary: the version takes P% (default 10); --auto lets
                                                           window analysis step, promote or roll back
  infermesh rollout weight <model> <P>                     set the canary's share by hand
  infermesh rollout promote|rollback|pause|resume <model> [--reason TEXT]
  infermesh rollout status <model> [--json]                traffic, rollout and history (every rollout
                                                           action prints it; --json as JSON)`;

function int(name: string, raw: string | undefined): number {
  const n = Number(raw);
  if (raw === undefined || !Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number, got ${JSON.stringify(raw)}`);
  return n;
}

/** Runs one rollout subcommand; resolves to the status printed. */
export async function rolloutCommand(args: string[], flags: RolloutFlags): Promise<RolloutStatus> {
  const [action, model, arg] = args;
  if (!action || !model) throw new Error(`rollout needs an action and a model:\n${ROLLOUT_USAGE}`);
  const api = new RolloutApi(flags.registry, flags.connect);
  try {
    switch (action) {
      case 'start':
        return await api.start(model, int('version', arg), {
          weight: flags.weight === undefined ? 10 : int('--weight', flags.weight),
          steps: flags.steps ? flags.steps.split(',').map((s) => int('--steps', s.trim())) : [],
          automatic: flags.auto,
        });
      case 'weight': return await api.setWeight(model, int('weight', arg));
      case 'promote': return await api.promote(model, flags.reason);
      case 'rollback': return await api.rollback(model, flags.reason);
      case 'pause': return await api.pause(model, flags.reason);
      case 'resume': return await api.resume(model);
      case 'status': return await api.status(model);
      default: throw new Error(`unknown rollout action '${action}':\n${ROLLOUT_USAGE}`);
    }
  } finally {
    api.close();
  }
}
