// An Authenticator from Config, for the services that check tokens.
import type { Config } from '../config';
import { errors } from '../errors';
import type { Logger } from '../log';
import type { NatsConnection, NatsLiveness } from '../nats';
import { keysBucket } from './api-keys';
import { Authenticator } from './authenticator';
import type { JwtSettings } from './jwt';

/** The JWT settings of Config: undefined when no JWKS is set; a JWKS without issuer or audience stops the service. */
export function jwtSettingsOf(config: Pick<Config, 'authJwksUrl' | 'authJwtIssuer' | 'authJwtAudience'>): JwtSettings | undefined {
  if (!config.authJwksUrl) return undefined;
  if (!config.authJwtIssuer) throw errors.invalidArgument('INFERMESH_AUTH_JWKS_URL is set without INFERMESH_AUTH_JWT_ISSUER: a JWT from any issuer would be accepted');
  if (!config.authJwtAudience) throw errors.invalidArgument('INFERMESH_AUTH_JWKS_URL is set without INFERMESH_AUTH_JWT_AUDIENCE: a JWT made for any service would be accepted');
  let url: URL;
  try {
    url = new URL(config.authJwksUrl);
  } catch {
    throw errors.invalidArgument(`INFERMESH_AUTH_JWKS_URL=${JSON.stringify(config.authJwksUrl)} is invalid: expected an http(s) URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw errors.invalidArgument(`INFERMESH_AUTH_JWKS_URL=${JSON.stringify(config.authJwksUrl)} is invalid: expected an http(s) URL`);
  return { jwksUrl: config.authJwksUrl, issuer: config.authJwtIssuer, audience: config.authJwtAudience };
}

/**
 * A started Authenticator over KEYS_BUCKET and the configured JWT issuer, its watch proven current by
 * `liveness`'s round trips on `nc`. `createBucket`: the registry (the bucket's only writer) makes it
 * when missing; others bind to it and follow it once it exists.
 */
export async function startAuthenticator(config: Config, nc: NatsConnection, liveness: NatsLiveness, log: Logger, opts: { createBucket: boolean }): Promise<Authenticator> {
  const jwt = jwtSettingsOf(config);
  const keys = await keysBucket(nc, { replicas: config.jetstreamReplicas, create: opts.createBucket });
  const auth = new Authenticator({ keys, nc, liveness, jwt, cacheTtlMs: config.authCacheTtlMs, cacheEntries: config.authCacheEntries, maxKeyReads: config.authMaxKeyReads, log });
  auth.start();
  return auth;
}
