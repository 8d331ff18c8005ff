// Grants: the table of what each grant allows, hostile grants refused by name, and a matcher that
// stays linear on hostile patterns.
import fc from 'fast-check';
import { allows, grantText, matchesPattern, parseGrant, parseGrants, SCOPES, type Scope } from '../../../../lib/auth';
import { ErrorCode, MeshError } from '../../../../lib/errors';

describe('parseGrant', () => {
  it.each([
    ['infer', { scope: 'infer', pattern: '*' }],
    ['read:mnist', { scope: 'read', pattern: 'mnist' }],
    ['infer:team-a/*', { scope: 'infer', pattern: 'team-a/*' }],
    ['push:resnet50_v1.5', { scope: 'push', pattern: 'resnet50_v1.5' }],
    ['admin', { scope: 'admin', pattern: '*' }],
    ['delete:*', { scope: 'delete', pattern: '*' }],
  ])('%p', (text, grant) => {
    expect(parseGrant(text)).toEqual(grant);
  });

  it.each([
    ['', 'expected <scope>'],
    ['Infer', 'unknown scope'],
    ['write:mnist', 'unknown scope'],
    ['infer:', 'model pattern'],
    [':mnist', 'unknown scope'],
    ['infer:mn ist', 'model pattern'],
    ['infer:mnist\nadmin', 'model pattern'],
    ['infer:a:b', 'model pattern'],
    ['infer:m?', 'model pattern'],
    ['infer:é', 'model pattern'],
    [`infer:${'a'.repeat(300)}`, 'at most 256'],
  ])('refuses %p, naming it', (text, why) => {
    let err: unknown;
    try {
      parseGrant(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MeshError);
    expect((err as MeshError).code).toBe(ErrorCode.InvalidArgument);
    expect((err as MeshError).message).toContain(why);
    expect((err as MeshError).message).toContain(JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text));
  });

  it('refuses a list with one bad grant, naming that one', () => {
    expect(() => parseGrants(['infer:mnist', 'read', 'fly:mnist'])).toThrow('grant "fly:mnist" is invalid');
    expect(() => parseGrants(Array(65).fill('read'))).toThrow('at most 64 grants');
  });

  it('writes grants back as they are read', () => {
    for (const t of ['infer', 'read:mnist*', 'admin']) expect(grantText(parseGrant(t))).toBe(t);
    expect(grantText(parseGrant('infer:*'))).toBe('infer');
  });
});

describe('allows', () => {
  const g = (...texts: string[]) => parseGrants(texts);
  it.each<[string[], Scope, string, boolean]>([
    [['infer'], 'infer', 'mnist', true],
    [['infer'], 'read', 'mnist', false],
    [['infer:mnist'], 'infer', 'mnist', true],
    [['infer:mnist'], 'infer', 'mnist2', false],
    [['infer:mnist'], 'infer', 'mnis', false],
    [['infer:mnist*'], 'infer', 'mnist', true],
    [['infer:mnist*'], 'infer', 'mnist-v2', true],
    [['infer:mnist*'], 'infer', 'xmnist', false],
    [['infer:*-onnx'], 'infer', 'densenet-onnx', true],
    [['infer:*-onnx'], 'infer', 'densenet-onnx2', false],
    [['infer:a*b*c'], 'infer', 'aXbYc', true],
    [['infer:a*b*c'], 'infer', 'abc', true],
    [['infer:a*b*c'], 'infer', 'acb', false],
    [['infer:team-a/*'], 'infer', 'team-a/m', true],
    [['infer:team-a/*'], 'infer', 'team-b/m', false],
    [['read:mnist', 'infer:resnet'], 'infer', 'mnist', false],
    [['read:mnist', 'infer:resnet'], 'read', 'mnist', true],
    [['admin'], 'infer', 'mnist', true],
    [['admin'], 'delete', 'anything', true],
    [['admin'], 'admin', '', true],
    [['admin:team-a*'], 'push', 'team-a-m', true],
    [['admin:team-a*'], 'push', 'team-b-m', false],
    [['admin:team-a*'], 'admin', '', false],
    [['infer'], 'infer', '', true],
    [['push'], 'rollout', 'mnist', false],
    [[], 'read', 'mnist', false],
  ])('%p %s on %p → %p', (grants, scope, model, expected) => {
    expect(allows(g(...grants), scope, model)).toBe(expected);
  });

  it('matches as a regular expression of its pattern would', () => {
    const pattern = fc.stringMatching(/^[ab*]{0,8}$/).filter((p) => p.length > 0);
    fc.assert(fc.property(pattern, fc.stringMatching(/^[ab]{0,10}$/), (p, name) => {
      const re = new RegExp(`^${p.replace(/\*/g, '.*')}$`);
      expect(matchesPattern(p, name)).toBe(re.test(name));
    }), { numRuns: 2000 });
  });

  it('stays fast on a hostile pattern', () => {
    const pattern = `${'*a'.repeat(100)}*b`;
    const name = 'a'.repeat(128);
    const start = process.hrtime.bigint();
    expect(matchesPattern(pattern, name)).toBe(false);
    expect(Number(process.hrtime.bigint() - start) / 1e6).toBeLessThan(50);
  });

  it('knows every scope', () => {
    expect([...SCOPES]).toEqual(['infer', 'read', 'push', 'rollout', 'delete', 'admin']);
  });
});
