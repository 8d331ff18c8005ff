// Who may call what on the registry: one table maps each RPC of the Registry and Rollouts services
// to the scope it needs; the model a call names is checked against the caller's grants with lib/auth's
// authorize (health stays open: it is another service). With authentication off every caller is
// `anonymous` and may do everything, as before.
import type { Metadata } from '@grpc/grpc-js';
import { allows, ANONYMOUS, authorize, type Authenticator, type Principal, type Scope } from '../../lib/auth';
import type { RegistryHandlers, RolloutsHandlers } from '../../lib/grpc/types';

/** The method names of a grpc-js handlers type, without its index signature. */
type MethodsOf<T> = keyof { [K in keyof T as string extends K ? never : K]: T[K] };

/**
 * The scope each RPC needs. Reads, lists and events need `read`; pushes (and writes of a model's
 * record: create, update) `push`; rollouts `rollout`; archive and delete `delete`; keys `admin`.
 * Typed over both services' handlers, so an RPC added to the proto does not compile without a row.
 */
export const SCOPE_OF: Readonly<Record<MethodsOf<RegistryHandlers> | MethodsOf<RolloutsHandlers>, Scope>> = Object.freeze({
  CreateModel: 'push',
  UpdateModel: 'push',
  PushVersion: 'push',
  GetModel: 'read',
  ListModels: 'read',
  ListVersions: 'read',
  GetVersion: 'read',
  PullArtifact: 'read',
  WatchEvents: 'read',
  ArchiveVersion: 'delete',
  DeleteVersion: 'delete',
  StartRollout: 'rollout',
  SetRolloutWeight: 'rollout',
  PromoteRollout: 'rollout',
  RollbackRollout: 'rollout',
  PauseRollout: 'rollout',
  ResumeRollout: 'rollout',
  GetRollout: 'read',
  CreateKey: 'admin',
  ListKeys: 'admin',
  RevokeKey: 'admin',
});

/** An RPC of the registry's services. */
export type RegistryRpc = keyof typeof SCOPE_OF;

/** The model of a call about no model (keys): only grants on every model (`admin`) match it. */
export const ALL_MODELS = '';

/**
 * The principal named in audit events: `key:<id>`, `jwt:<subject>`, or `anonymous` when
 * authentication is off.
 */
export function principalName(p: Principal): string {
  if (p.kind === 'anonymous') return 'anonymous';
  return `${p.kind}:${p.id}`;
}

/** The authenticated caller of one call. */
export class Caller {
  /** ANONYMOUS when authentication is off: everything is allowed. */
  constructor(readonly principal: Principal) {}

  /** The name audit events carry. */
  get name(): string {
    return principalName(this.principal);
  }

  /** PERMISSION_DENIED, naming the scope and the model, unless the caller may call `rpc` on `model`. */
  check(rpc: RegistryRpc, model: string): void {
    authorize(this.principal, SCOPE_OF[rpc], model);
  }

  /** Whether the caller may call `rpc` on `model` (lists show only what the caller may read). */
  may(rpc: RegistryRpc, model: string): boolean {
    return allows(this.principal.grants, SCOPE_OF[rpc], model);
  }
}

/** The registry's door: authenticates callers when authentication is on. */
export class RegistryAccess {
  /** `authenticator` undefined: INFERMESH_AUTH is off. */
  constructor(private readonly authenticator: Authenticator | undefined) {}

  /** The caller of a call from its metadata: UNAUTHENTICATED without a valid token (auth on). */
  async caller(metadata: Metadata): Promise<Caller> {
    if (!this.authenticator) return new Caller(ANONYMOUS);
    const header = metadata.get('authorization')[0];
    return new Caller(await this.authenticator.authenticate(typeof header === 'string' ? header : undefined));
  }

  /** The caller of a call, once checked for `rpc` on `model` (UNAUTHENTICATED, PERMISSION_DENIED). */
  async authorize(metadata: Metadata, rpc: RegistryRpc, model: string): Promise<Caller> {
    const caller = await this.caller(metadata);
    caller.check(rpc, model);
    return caller;
  }
}
