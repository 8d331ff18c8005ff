// Authentication and authorization shared by the router and the registry: grants, API keys, the
// Authenticator (API keys and JWTs, cached and kept right by a watch of the keys bucket) and the one
// authorization check.
export { SCOPES, MAX_GRANTS, MAX_GRANT_LENGTH, parseGrant, parseGrants, grantText, allows, matchesPattern, type Scope, type Grant } from './grants';
export { KEYS_BUCKET, API_KEY_PREFIX, API_KEY_LENGTH, newApiKey, parseApiKey, hashSecret, secretMatches, isKeyId, decodeKeyRecord, encodeKeyRecord, keysBucket, type KeyRecord, type NewApiKey } from './api-keys';
export { ANONYMOUS, authorize, type Principal } from './principal';
export { Authenticator, type AuthenticatorOptions } from './authenticator';
export { JwtVerifier, grantsOfScopeClaim, type JwtSettings, type VerifiedJwt } from './jwt';
export { TokenCache } from './token-cache';
export { startAuthenticator, jwtSettingsOf } from './setup';
export { OIP_METHOD_SCOPES, type OipMethod } from './oip-scopes';
export { AUTHORIZATION_HEADER, authorizationOfHeaders, authorizationOfMetadata, authorizationOfRawHeaders } from './authorization-header';
