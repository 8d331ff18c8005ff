// The registry's one table of scopes (services/registry/access.ts): every RPC of the Registry and
// Rollouts services as loaded from the proto has exactly one row, and a caller is checked against it.
import { protos } from '../../../../lib/grpc/proto';
import { parseGrants } from '../../../../lib/auth/grants';
import { ANONYMOUS } from '../../../../lib/auth/principal';
import { MeshError } from '../../../../lib/errors';
import { ALL_MODELS, Caller, SCOPE_OF, principalName } from '../../../../services/registry/access';

describe('registry access', () => {
  it('has one scope for every RPC the registry serves, and none for RPCs it does not', () => {
    const served = [...Object.keys(protos().registry.Registry.service), ...Object.keys(protos().rollouts.Rollouts.service)].sort();
    expect(Object.keys(SCOPE_OF).sort()).toEqual(served);
  });

  it.each([
    ['PushVersion', 'push'], ['CreateModel', 'push'], ['UpdateModel', 'push'], ['ArchiveVersion', 'delete'], ['DeleteVersion', 'delete'],
    ['StartRollout', 'rollout'], ['PromoteRollout', 'rollout'], ['GetRollout', 'read'], ['ListModels', 'read'], ['WatchEvents', 'read'],
    ['PullArtifact', 'read'], ['CreateKey', 'admin'], ['ListKeys', 'admin'], ['RevokeKey', 'admin'],
  ] as const)('%s needs %s', (rpc, scope) => {
    expect(SCOPE_OF[rpc]).toBe(scope);
  });

  it('checks a caller\'s grants on the model a call names, naming scope and model when refused', () => {
    const caller = new Caller({ id: '0123456789abcdef', kind: 'key', grants: parseGrants(['push:team-a-*', 'read']) });
    expect(() => caller.check('PushVersion', 'team-a-mnist')).not.toThrow();
    expect(() => caller.check('GetModel', 'anything')).not.toThrow();
    let refused: unknown;
    try {
      caller.check('PushVersion', 'team-b-mnist');
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(MeshError);
    expect((refused as MeshError).code).toBe('PermissionDenied');
    expect((refused as MeshError).message).toContain("'push'");
    expect((refused as MeshError).message).toContain("'team-b-mnist'");
    expect(caller.may('DeleteVersion', 'team-a-mnist')).toBe(false);
    expect(caller.may('CreateKey', ALL_MODELS)).toBe(false);
    expect(new Caller({ id: 'x', kind: 'key', grants: parseGrants(['admin']) }).may('CreateKey', ALL_MODELS)).toBe(true);
    expect(new Caller({ id: 'x', kind: 'key', grants: parseGrants(['admin:team-a-*']) }).may('CreateKey', ALL_MODELS)).toBe(false);
  });

  it('refuses a name that is no model name without repeating it', () => {
    const caller = new Caller({ id: '0123456789abcdef', kind: 'key', grants: parseGrants(['read:mnist*']) });
    const hostile = `x${'\u0007'.repeat(10)}${'y'.repeat(100_000)}`;
    let refused: unknown;
    try {
      caller.check('GetModel', hostile);
    } catch (err) {
      refused = err;
    }
    expect((refused as MeshError).code).toBe('InvalidArgument');
    expect((refused as MeshError).message.length).toBeLessThan(200);
    // Allowed callers reach the registry, which answers for the name as before.
    expect(() => new Caller(ANONYMOUS).check('GetModel', hostile)).not.toThrow();
  });

  it('names principals for the audit', () => {
    expect(principalName({ id: '0123456789abcdef', kind: 'key', grants: [] })).toBe('key:0123456789abcdef');
    expect(principalName({ id: 'alice', kind: 'jwt', grants: [] })).toBe('jwt:alice');
    expect(principalName(ANONYMOUS)).toBe('anonymous');
  });
});
