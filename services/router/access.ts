// Who may call the router, and for what. With INFERMESH_AUTH on, every call but grpc.health.v1
// carries `authorization: Bearer <token>`; RouterAccess.check is the one decision both transports
// make (the door's ModelInfer on lib/h2, the typed handlers on grpc-js), with the scope of each
// method from lib/auth's one table. A cached token is checked synchronously (one Map lookup), so
// the hot path pays no promise for it.
import * as grpc from '@grpc/grpc-js';
import { allows, authorizationOfMetadata, authorize, OIP_METHOD_SCOPES, type Authenticator, type OipMethod, type Principal } from '../../lib/auth';
import { toGrpcStatus } from '../../lib/errors';
import type { RouterHandlers } from './grpc-handlers';
import type { Logger } from '../../lib/log';


export class RouterAccess {
  constructor(private readonly auth: Authenticator) {}

  /**
   * The caller of `method` on `model`, allowed: the principal itself when its token is cached, a
   * promise of it otherwise. Throws (or rejects with) UNAUTHENTICATED, or PERMISSION_DENIED naming
   * the scope and the model. `model` undefined: a call about several models (statistics or the
   * index of every model), only authenticated here; its answer is filtered with `mayRead`.
   */
  check(authorization: string | undefined, method: OipMethod, model: string | undefined): Principal | Promise<Principal> {
    const cached = this.auth.cached(authorization);
    if (cached !== undefined) return allowed(cached, method, model);
    return this.auth.authenticate(authorization).then((p) => allowed(p, method, model));
  }

  /** Authenticates a call to any service (reflection included) without a scope: the typed handlers check theirs. */
  authenticate(authorization: string | undefined): Promise<Principal> {
    return this.auth.authenticate(authorization);
  }
}

function allowed(principal: Principal, method: OipMethod, model: string | undefined): Principal {
  const scope = OIP_METHOD_SCOPES[method];
  if (scope !== null && model !== undefined) authorize(principal, scope, model);
  return principal;
}

/** Whether `principal` may read `model` (lists hold only those). */
export function mayRead(principal: Principal, model: string): boolean {
  return allows(principal.grants, 'read', model);
}

/** Runs `then` with the check's principal, synchronously when it is known; `refused` with its error. */
export function afterCheck(check: () => Principal | Promise<Principal>, then: (p: Principal) => void, refused: (err: unknown) => void): void {
  let verdict: Principal | Promise<Principal>;
  try {
    verdict = check();
  } catch (err) {
    return refused(err);
  }
  if (verdict instanceof Promise) verdict.then(then, refused);
  else then(verdict);
}

/**
 * The grpc-js server's interceptor: every call but grpc.health.v1 (which load balancers and
 * Kubernetes probe without tokens) is authenticated before its handler sees it; UNAUTHENTICATED
 * otherwise. Scopes are the handlers' to check (guardedHandlers), as they know the model.
 */
export function authenticationInterceptor(access: RouterAccess, log: Logger): grpc.ServerInterceptor {
  return (method, call) => {
    if (method.path.startsWith('/grpc.health.v1.')) return new grpc.ServerInterceptingCall(call);
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => next({
        onReceiveMetadata: (metadata, pass) => afterCheck(
          () => access.authenticate(authorizationOfMetadata(metadata)),
          () => pass(metadata),
          (err) => call.sendStatus({ ...toGrpcStatus(err, log), metadata: new grpc.Metadata() }),
        ),
      }),
    });
  };
}

type UnaryHandler<Req, Res> = grpc.handleUnaryCall<Req, Res>;

/**
 * The typed handlers with the scope of each method checked on the model it names (from the one
 * table), and lists about several models filtered to those the caller may read. ModelStreamInfer
 * checks each request of its stream (routerHandlers' `access`).
 */
export function guardedHandlers(h: RouterHandlers, access: RouterAccess, log: Logger): RouterHandlers {
  function guard<Req, Res>(method: OipMethod, handler: UnaryHandler<Req, Res>, modelOf: (req: Req) => string | undefined, filter?: (p: Principal, res: Res) => Res): UnaryHandler<Req, Res> {
    return (call, cb) => afterCheck(
      () => access.check(authorizationOfMetadata(call.metadata), method, modelOf(call.request)),
      (p) => handler(call, filter ? (err, res, ...rest) => cb(err, res == null ? res : filter(p, res), ...rest) : cb),
      (err) => cb(toGrpcStatus(err, log)),
    );
  }
  const none = () => undefined;
  return {
    ServerLive: guard('ServerLive', h.ServerLive, none),
    ServerReady: guard('ServerReady', h.ServerReady, none),
    ServerMetadata: guard('ServerMetadata', h.ServerMetadata, none),
    ModelReady: guard('ModelReady', h.ModelReady, (r) => r.name),
    ModelMetadata: guard('ModelMetadata', h.ModelMetadata, (r) => r.name),
    ModelConfig: guard('ModelConfig', h.ModelConfig, (r) => r.name),
    ModelInfer: guard('ModelInfer', h.ModelInfer, (r) => r.model_name),
    ModelStatistics: guard('ModelStatistics', h.ModelStatistics, (r) => r.name || undefined,
      (p, res) => ({ ...res, model_stats: (res.model_stats ?? []).filter((s) => mayRead(p, s.name ?? '')) })),
    RepositoryIndex: guard('RepositoryIndex', h.RepositoryIndex, none,
      (p, res) => ({ ...res, models: (res.models ?? []).filter((m) => mayRead(p, m.name ?? '')) })),
    ModelStreamInfer: h.ModelStreamInfer,
  };
}
