// JWTs from an OIDC issuer, verified with jose against the issuer's JWKS (fetched and cached by
// jose, refetched when a token names a key it does not hold). Issuer, audience, expiry and
// not-before are checked; grants come from the OAuth `scope` claim.
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { errors, MeshError } from '../errors';
import { parseGrant, type Grant } from './grants';
import type { Principal } from './principal';

/** Where JWTs come from; all three are required to accept any. */
export interface JwtSettings {
  jwksUrl: string;
  issuer: string;
  audience: string;
}

/** Signature algorithms accepted: asymmetric only, so a JWKS's public keys can never verify an HMAC forged with them. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
/** Clock skew tolerated on exp and nbf. */
const CLOCK_TOLERANCE_S = 5;

/** A verified JWT: who, what it may do, and until when (epoch ms, from its required exp). */
export interface VerifiedJwt {
  principal: Principal;
  expiresAtMs: number;
}

/**
 * Grants from a `scope` claim (space-separated, OAuth style). Entries that are not infermesh grants
 * (`openid`, `email`...) are left out: an issuer's tokens carry other services' scopes too.
 */
export function grantsOfScopeClaim(claim: unknown): Grant[] {
  if (typeof claim !== 'string') return [];
  const out: Grant[] = [];
  for (const item of claim.split(' ')) {
    if (!item) continue;
    try {
      out.push(parseGrant(item));
    } catch {
      // Not ours.
    }
  }
  return out;
}

export class JwtVerifier {
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;

  constructor(private readonly settings: JwtSettings) {
    this.jwks = createRemoteJWKSet(new URL(settings.jwksUrl), { timeoutDuration: 5_000, cooldownDuration: 30_000 });
  }

  /** Verifies `token`; throws UNAUTHENTICATED saying why (never the token), UNAVAILABLE when the JWKS cannot be fetched. */
  async verify(token: string): Promise<VerifiedJwt> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.jwks, {
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        algorithms: ALGORITHMS,
        clockTolerance: CLOCK_TOLERANCE_S,
        // A JWT without an end would be good forever: nothing can revoke it.
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      throw refusalOf(err);
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') throw errors.unauthenticated('JWT has no subject (sub)');
    return {
      principal: { id: payload.sub, kind: 'jwt', grants: grantsOfScopeClaim(payload.scope) },
      expiresAtMs: (payload.exp as number) * 1000,
    };
  }
}

/** jose's error as a status whose message says why in jose's words for claims, never quoting the token. */
function refusalOf(err: unknown): MeshError {
  if (err instanceof joseErrors.JWTExpired) return errors.unauthenticated('JWT expired');
  if (err instanceof joseErrors.JWTClaimValidationFailed) return errors.unauthenticated(`JWT ${err.claim} claim is not accepted (${err.reason})`);
  if (err instanceof joseErrors.JWKSNoMatchingKey) return errors.unauthenticated('JWT is signed by a key the issuer\'s JWKS does not hold');
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return errors.unauthenticated('JWT signature does not verify');
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return errors.unauthenticated('JWT algorithm is not accepted');
  // A bare JOSEError is jose's "Expected 200 OK from the JSON Web Key Set HTTP response".
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid || !(err instanceof joseErrors.JOSEError) || err.constructor === joseErrors.JOSEError) {
    // The issuer's keys could not be had: not the caller's fault, worth a retry.
    return errors.unavailable('cannot fetch the JWT issuer\'s JWKS to verify the token');
  }
  return errors.unauthenticated('malformed JWT');
}
