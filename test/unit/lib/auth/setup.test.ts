// JWT settings from Config: a JWKS without issuer or audience stops the service, naming the variable.
import { jwtSettingsOf } from '../../../../lib/auth';
import { loadConfig } from '../../../../lib/config';

describe('jwtSettingsOf', () => {
  const of = (env: Record<string, string>) => jwtSettingsOf(loadConfig(env));

  it('accepts no JWTs by default', () => {
    expect(of({})).toBeUndefined();
    expect(loadConfig({}).authEnabled).toBe(false);
  });

  it('takes all three settings', () => {
    expect(of({ INFERMESH_AUTH_JWKS_URL: 'https://idp.test/jwks', INFERMESH_AUTH_JWT_ISSUER: 'https://idp.test', INFERMESH_AUTH_JWT_AUDIENCE: 'infermesh' }))
      .toEqual({ jwksUrl: 'https://idp.test/jwks', issuer: 'https://idp.test', audience: 'infermesh' });
  });

  it.each([
    [{ INFERMESH_AUTH_JWKS_URL: 'https://idp.test/jwks', INFERMESH_AUTH_JWT_AUDIENCE: 'a' }, 'INFERMESH_AUTH_JWT_ISSUER'],
    [{ INFERMESH_AUTH_JWKS_URL: 'https://idp.test/jwks', INFERMESH_AUTH_JWT_ISSUER: 'i' }, 'INFERMESH_AUTH_JWT_AUDIENCE'],
    [{ INFERMESH_AUTH_JWKS_URL: 'not a url', INFERMESH_AUTH_JWT_ISSUER: 'i', INFERMESH_AUTH_JWT_AUDIENCE: 'a' }, 'INFERMESH_AUTH_JWKS_URL'],
    [{ INFERMESH_AUTH_JWKS_URL: 'file:///etc/passwd', INFERMESH_AUTH_JWT_ISSUER: 'i', INFERMESH_AUTH_JWT_AUDIENCE: 'a' }, 'INFERMESH_AUTH_JWKS_URL'],
  ])('refuses %p, naming %s', (env, name) => {
    expect(() => of(env)).toThrow(name);
  });

  it('bounds the cache settings', () => {
    expect(loadConfig({}).authCacheTtlMs).toBe(30_000);
    expect(loadConfig({}).authCacheEntries).toBe(10_000);
    expect(() => loadConfig({ INFERMESH_AUTH_CACHE_ENTRIES: '-1' })).toThrow('INFERMESH_AUTH_CACHE_ENTRIES');
    expect(() => loadConfig({ INFERMESH_AUTH: 'maybe' })).toThrow('INFERMESH_AUTH');
  });
});
