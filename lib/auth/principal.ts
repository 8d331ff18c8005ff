// Who is calling, and the one authorization decision every path takes.
import { errors } from '../errors';
import { allows, type Grant, type Scope } from './grants';

/**
 * An authenticated caller: a key (id: the key's id), a JWT (id: its `sub`), a mesh service proven by
 * its client certificate (id: its SPIFFE ID; the registry's pods and routers), or anyone when
 * authentication is off.
 */
export interface Principal {
  readonly id: string;
  readonly kind: 'key' | 'jwt' | 'service' | 'anonymous';
  readonly grants: readonly Grant[];
}

/** The caller when authentication is off (INFERMESH_AUTH=false): everything is allowed, as before tokens existed. */
export const ANONYMOUS: Principal = Object.freeze({ id: 'anonymous', kind: 'anonymous', grants: Object.freeze([{ scope: 'admin', pattern: '*' } as const]) });

/** Throws PERMISSION_DENIED naming `scope` and `model` unless `principal`'s grants allow it. */
export function authorize(principal: Principal, scope: Scope, model: string): void {
  if (!allows(principal.grants, scope, model)) throw errors.permissionDenied(scope, model);
}
