// The router's one token check: synchronous for a cached token, the scope from the table, and
// a request with two authorization headers refused.
import * as grpc from '@grpc/grpc-js';
import { Authenticator, parseGrants, type Principal } from '../../../../lib/auth';
import { ErrorCode, MeshError } from '../../../../lib/errors';
import { silentLogger } from '../../../../lib/log';
import { authorizationOfHeaders, authorizationOfMetadata } from '../../../../lib/auth';
import { mayRead, RouterAccess } from '../../../../services/router/access';

const header = 'Bearer imk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const principal: Principal = { id: '0123456789abcdef', kind: 'key', grants: parseGrants(['infer:mnist*', 'read:digits']) };

function access(): RouterAccess {
  const auth = new Authenticator({ cacheTtlMs: 60_000, cacheEntries: 10, log: silentLogger });
  // As a verified key is cached (no bucket here: an uncached key is refused).
  (auth as unknown as { cache: { set(h: string, p: Principal, id: string): void } }).cache.set(header, principal, principal.id);
  return new RouterAccess(auth);
}

function thrown(f: () => unknown): MeshError {
  try {
    f();
  } catch (err) {
    return err as MeshError;
  }
  throw new Error('expected a throw');
}

describe('RouterAccess.check', () => {
  it('answers a cached token synchronously, with the scope each method needs', () => {
    const a = access();
    expect(a.check(header, 'ModelInfer', 'mnist-v2')).toBe(principal);
    expect(a.check(header, 'ModelMetadata', 'digits')).toBe(principal);
    expect(a.check(header, 'ServerLive', undefined)).toBe(principal);
    const err = thrown(() => a.check(header, 'ModelInfer', 'digits'));
    expect(err.code).toBe(ErrorCode.PermissionDenied);
    expect(err.message).toBe("the caller has no 'infer' scope for model 'digits'");
    expect(thrown(() => a.check(header, 'ModelStreamInfer', 'digits')).code).toBe(ErrorCode.PermissionDenied);
    expect(thrown(() => a.check(header, 'ModelStatistics', 'mnist')).message).toBe("the caller has no 'read' scope for model 'mnist'");
  });

  it('verifies an unknown token asynchronously', async () => {
    const verdict = access().check(undefined, 'ModelInfer', 'mnist');
    expect(verdict).toBeInstanceOf(Promise);
    await expect(verdict).rejects.toMatchObject({ code: ErrorCode.Unauthenticated });
  });

  it('lets lists hold only what the caller may read', () => {
    expect(mayRead(principal, 'digits')).toBe(true);
    expect(mayRead(principal, 'mnist')).toBe(false);
  });
});

describe('the authorization header', () => {
  it('is read from a request, and two of them are refused', () => {
    expect(authorizationOfHeaders([[':path', '/x'], ['authorization', header]])).toBe(header);
    expect(authorizationOfHeaders([[':path', '/x']])).toBeUndefined();
    expect(thrown(() => authorizationOfHeaders([['authorization', header], ['authorization', 'Bearer other']])).code).toBe(ErrorCode.Unauthenticated);
    const md = new grpc.Metadata();
    md.add('authorization', header);
    expect(authorizationOfMetadata(md)).toBe(header);
    md.add('authorization', 'Bearer other');
    expect(thrown(() => authorizationOfMetadata(md)).code).toBe(ErrorCode.Unauthenticated);
  });
});
