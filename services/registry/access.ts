// Who may call what on the registry: one table maps each RPC of the Registry and Rollouts services
// to the scope it needs; the model a call names is checked against the caller's grants with lib/auth's
// authorize (health stays open: it is another service). With authentication off every caller is
// `anonymous` and may do everything, as before.
import type { Metadata } from '@grpc/grpc-js';
import { allows, ANONYMOUS, authorizationOfMetadata, authorize, parseGrants, type Authenticator, type Principal, type Scope } from '../../lib/auth';
import { spiffeIdsOf, TRUST_DOMAIN } from '../../lib/tls';
import { errors } from '../../lib/errors';
import { MODEL_NAME, MODEL_NAME_RULE } from './records';
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
  ListPods: 'read',
  CreateKey: 'admin',
  ListKeys: 'admin',
  RevokeKey: 'admin',
});

/** An RPC of the registry's services. */
export type RegistryRpc = keyof typeof SCOPE_OF;

/** The model of a call about no model (keys): only grants on every model (`admin`) match it. */
export const ALL_MODELS = '';

/** The RPCs about no model, checked on ALL_MODELS; every other one names a model. */
const ABOUT_NO_MODEL: ReadonlySet<RegistryRpc> = new Set<RegistryRpc>(['CreateKey', 'ListKeys', 'RevokeKey']);

/**
 * The principal named in audit events: `key:<id>`, `jwt:<subject>`, a service's SPIFFE ID, or
 * `anonymous` when authentication is off.
 */
export function principalName(p: Principal): string {
  if (p.kind === 'anonymous') return 'anonymous';
  if (p.kind === 'service') return p.id;
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

  /**
   * PERMISSION_DENIED, naming the scope and the model, unless the caller may call `rpc` on `model`.
   * A refused name that is no model name is INVALID_ARGUMENT instead, without being repeated: the
   * refusal would echo whatever (megabytes, control characters) a caller put there.
   */
  check(rpc: RegistryRpc, model: string): void {
    // An RPC about a model that names none (a push header without a model) is the caller's
    // mistake, not a scope it lacks: ALL_MODELS stands for "no model" only in the key RPCs.
    if (model === ALL_MODELS && !ABOUT_NO_MODEL.has(rpc)) {
      throw errors.invalidArgument(`no model named: the model name is empty (use ${MODEL_NAME_RULE})`);
    }
    if (model !== ALL_MODELS && !MODEL_NAME.test(model) && !this.may(rpc, model)) {
      throw errors.invalidArgument(`the model name is invalid: use ${MODEL_NAME_RULE}`);
    }
    authorize(this.principal, SCOPE_OF[rpc], model);
  }

  /** Whether the caller may call `rpc` on `model` (lists show only what the caller may read). */
  may(rpc: RegistryRpc, model: string): boolean {
    return allows(this.principal.grants, SCOPE_OF[rpc], model);
  }

  /**
   * Whether the caller may see `event`: a model's with `read` on it, a key's (about no model) only
   * with the scope that manages keys. WatchEvents and the console decide it here.
   */
  mayReadEvent(event: { model: string }): boolean {
    return event.model === ALL_MODELS ? this.may('ListKeys', ALL_MODELS) : this.may('WatchEvents', event.model);
  }

  /**
   * PERMISSION_DENIED unless the caller may read some model: what is about no one model (the pods,
   * a live stream of everything it may read) is shown only to a caller with `read` somewhere.
   */
  checkReadsSome(what: string): void {
    if (!this.principal.grants.some((g) => g.scope === 'read' || g.scope === 'admin')) {
      throw errors.permissionDeniedBecause(`${what} needs the read scope on some model`);
    }
  }
}

/**
 * The mesh services that call the registry with their certificate instead of a token, and what they
 * may do: pods read the models and versions they serve and pull artifacts; routers follow the models'
 * traffic. Neither may change anything.
 */
const SERVICE_GRANTS: Readonly<Record<string, ReturnType<typeof parseGrants>>> = Object.freeze({
  pod: parseGrants(['read']),
  router: parseGrants(['read']),
});
const SERVICE_ID = new RegExp(`^spiffe://${TRUST_DOMAIN}/(pod|router)/[^/]+$`);

/** A call as the door sees it: its metadata, and the TLS peer grpc-js verified. */
export interface CallContext {
  metadata: Metadata;
  getAuthContext(): { sslPeerCertificate?: { subjectaltname?: string } };
}

/** Options of RegistryAccess. */
export interface AccessOptions {
  /**
   * Whether a client certificate verified against the mesh's CA names its caller (TLS on with a CA;
   * the certificate is asked for, and required with INFERMESH_TLS_CLIENT_AUTH): a call without a
   * token from a pod or router certificate gets that service's grants.
   * Default false.
   */
  serviceCertificates?: boolean;
}

/** The registry's door: authenticates callers when authentication is on. */
export class RegistryAccess {
  /** `authenticator` undefined: INFERMESH_AUTH is off. */
  constructor(private readonly authenticator: Authenticator | undefined, private readonly opts: AccessOptions = {}) {}

  /**
   * The caller of a call: from its bearer token; without one, from its verified pod or router
   * certificate when those are trusted; else UNAUTHENTICATED (auth on).
   */
  async caller(call: CallContext): Promise<Caller> {
    if (!this.authenticator) return new Caller(ANONYMOUS);
    const header = authorizationOfMetadata(call.metadata);
    if (header === undefined && this.opts.serviceCertificates) {
      const service = this.serviceOf(call);
      if (service) return new Caller(service);
    }
    return this.callerOfToken(header);
  }

  /**
   * The caller that an `authorization` header names, for doors without certificates (the console):
   * ANONYMOUS with authentication off; else UNAUTHENTICATED without a valid token.
   */
  async callerOfToken(header: string | undefined): Promise<Caller> {
    if (!this.authenticator) return new Caller(ANONYMOUS);
    return new Caller(await this.authenticator.authenticate(header));
  }

  /** The service principal a verified client certificate proves, if it names a pod or router. */
  private serviceOf(call: CallContext): Principal | undefined {
    let cert: { subjectaltname?: string } | undefined;
    try {
      cert = call.getAuthContext().sslPeerCertificate;
    } catch {
      return undefined;
    }
    for (const id of spiffeIdsOf(cert)) {
      const kind = SERVICE_ID.exec(id)?.[1];
      const grants = kind === undefined ? undefined : SERVICE_GRANTS[kind];
      if (grants) return { id, kind: 'service', grants };
    }
    return undefined;
  }

  /**
   * Checks a long-lived call's token again every `everyMs` (a watch, a console stream), so a key
   * revoked or a JWT expired ends it rather than keeping it open: `onRefused` is called once with
   * the refusal. Nothing to check with authentication off, or for a caller known by certificate.
   * Returns how to stop checking.
   */
  recheck(header: string | undefined, caller: Caller, everyMs: number, onRefused: (err: unknown) => void): () => void {
    if (!this.authenticator || caller.principal.kind === 'service') return () => undefined;
    const timer = setInterval(() => {
      this.callerOfToken(header).catch((err: unknown) => {
        clearInterval(timer);
        onRefused(err);
      });
    }, everyMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** The caller of a call, once checked for `rpc` on `model` (UNAUTHENTICATED, PERMISSION_DENIED). */
  async authorize(call: CallContext, rpc: RegistryRpc, model: string): Promise<Caller> {
    const caller = await this.caller(call);
    caller.check(rpc, model);
    return caller;
  }
}
