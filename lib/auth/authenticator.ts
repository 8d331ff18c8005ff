// Who a call comes from, from its `authorization: Bearer <token>` header: an API key (checked
// against its record in KEYS_BUCKET) or a JWT (checked by jose against the issuer's JWKS). Verified
// tokens are cached (token-cache.ts) so that a known one costs one Map lookup; the cache follows the
// bucket through a KV watch, which evicts a key's entries the moment its record changes or goes, so
// a revoked key is refused everywhere within the watch's delay (milliseconds); the TTL is a
// backstop for a watch that broke. Messages never contain the token.
import type { KV, KvWatchEntry } from '@nats-io/kv';
import { errors } from '../errors';
import type { Logger } from '../log';
import { API_KEY_PREFIX, decodeKeyRecord, parseApiKey, secretMatches, type KeyRecord } from './api-keys';
import { parseGrants } from './grants';
import { JwtVerifier, type JwtSettings } from './jwt';
import type { Principal } from './principal';
import { TokenCache } from './token-cache';

/** Options of an Authenticator. */
export interface AuthenticatorOptions {
  /** KEYS_BUCKET (keysBucket()); undefined: API keys are not accepted. */
  keys?: KV;
  /** Where JWTs come from; undefined: JWTs are not accepted. */
  jwt?: JwtSettings;
  /** How long a verified token is used without a second look (INFERMESH_AUTH_CACHE_TTL_MS). */
  cacheTtlMs: number;
  /** Most tokens cached (INFERMESH_AUTH_CACHE_ENTRIES); 0: no cache. */
  cacheEntries: number;
  log: Logger;
  /** Clock, for tests; default Date.now. */
  now?: () => number;
  /** Wait before a broken watch of the bucket is started again; default 1 s. */
  rewatchDelayMs?: number;
  /**
   * Reads of the bucket in flight at once for keys the watch has not delivered
   * (INFERMESH_AUTH_MAX_KEY_READS; default 64); past it such a key is answered UNAVAILABLE, so a
   * flood of made-up key ids costs NATS no more than this.
   */
  maxKeyReads?: number;
}

/** The longest bearer token looked at (a JWT with many grants stays well below). */
const MAX_TOKEN_CHARS = 8192;
const BEARER = /^bearer +/i;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const DEFAULT_MAX_KEY_READS = 64;

export class Authenticator {
  private readonly cache: TokenCache;
  private readonly jwt: JwtVerifier | undefined;
  /** The bucket's records as the watch delivered them. */
  private readonly records = new Map<string, KeyRecord>();
  /** Counts watch deliveries: a record read while one arrived is used once and not cached. */
  private generation = 0;
  /** Record reads in flight, one per key id. */
  private readonly reads = new Map<string, Promise<KeyRecord | undefined>>();
  private watch: { stop(): void } | undefined;
  private stopped = false;
  private following: Promise<void> | undefined;

  constructor(private readonly opts: AuthenticatorOptions) {
    this.cache = new TokenCache(opts.cacheEntries, opts.cacheTtlMs, opts.now);
    this.jwt = opts.jwt ? new JwtVerifier(opts.jwt) : undefined;
  }

  /** Starts following the keys bucket (when there is one); returns at once. */
  start(): void {
    if (this.opts.keys && !this.following) this.following = this.follow(this.opts.keys);
  }

  /** Stops following the bucket. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.watch?.stop();
    await this.following;
  }

  /** Tokens cached now. */
  get cachedTokens(): number {
    return this.cache.size;
  }

  /**
   * The principal of a header value already verified and still fresh, or undefined: the hot path's
   * one Map lookup, before it pays for authenticate().
   */
  cached(authorization: string | undefined): Principal | undefined {
    return authorization === undefined ? undefined : this.cache.get(authorization);
  }

  /**
   * The principal an `authorization` header value proves. Throws UNAUTHENTICATED when it is
   * missing, malformed, unknown, revoked, expired or does not verify; UNAVAILABLE when the key
   * store or the JWKS cannot be read now.
   */
  async authenticate(authorization: string | undefined): Promise<Principal> {
    if (authorization === undefined || authorization === '') throw errors.unauthenticated('missing credentials: send the header authorization: Bearer <token>');
    const hit = this.cache.get(authorization);
    if (hit) return hit;
    const scheme = BEARER.exec(authorization);
    if (!scheme) throw errors.unauthenticated('authorization header is not a Bearer token');
    const token = authorization.slice(scheme[0].length).trimEnd();
    if (token.length === 0 || token.length > MAX_TOKEN_CHARS) throw errors.unauthenticated('malformed bearer token');
    if (token.startsWith(API_KEY_PREFIX)) return this.authenticateKey(authorization, token);
    if (JWT_SHAPE.test(token)) {
      if (!this.jwt) throw errors.unauthenticated('JWTs are not accepted here (no issuer configured)');
      const { principal, expiresAtMs } = await this.jwt.verify(token);
      this.cache.set(authorization, principal, undefined, expiresAtMs);
      return principal;
    }
    throw errors.unauthenticated('malformed bearer token: neither an API key nor a JWT');
  }

  private async authenticateKey(authorization: string, token: string): Promise<Principal> {
    if (!this.opts.keys) throw errors.unauthenticated('API keys are not accepted here');
    const { id, secret } = parseApiKey(token);
    let record = this.records.get(id);
    let cacheable = true;
    if (!record) {
      // Not (yet) delivered by the watch: a key made a moment ago, or a watch being restarted.
      const generation = this.generation;
      record = await this.read(id);
      cacheable = generation === this.generation;
      record = this.records.get(id) ?? record;
    }
    if (!record) throw errors.unauthenticated(`unknown API key ${id}`);
    if (!secretMatches(secret, record.hash)) throw errors.unauthenticated(`API key ${id} does not verify`);
    if (record.revokedAt !== undefined) throw errors.unauthenticated(`API key ${id} was revoked`);
    let principal: Principal;
    try {
      principal = { id: record.id, kind: 'key', grants: parseGrants(record.grants) };
    } catch (err) {
      this.opts.log.warn('API key record has invalid grants; the key is refused', { key: id, err: err instanceof Error ? err.message : String(err) });
      throw errors.unauthenticated(`API key ${id} has an invalid record`);
    }
    if (cacheable) this.cache.set(authorization, principal, id);
    return principal;
  }

  /** Reads one record from the bucket, one read per id at a time. */
  private read(id: string): Promise<KeyRecord | undefined> {
    let p = this.reads.get(id);
    if (!p) {
      if (this.reads.size >= (this.opts.maxKeyReads ?? DEFAULT_MAX_KEY_READS)) return Promise.reject(errors.unavailable('too many API key lookups at once; retry'));
      p = (async () => {
        let entry;
        try {
          entry = await this.opts.keys!.get(id);
        } catch (err) {
          this.opts.log.warn('cannot read the API keys bucket', { err: err instanceof Error ? err.message : String(err) });
          throw errors.unavailable('API keys cannot be read now; retry');
        }
        if (!entry || entry.operation !== 'PUT') return undefined;
        return this.decode(id, entry.value);
      })().finally(() => this.reads.delete(id));
      this.reads.set(id, p);
    }
    return p;
  }

  private decode(id: string, value: Uint8Array): KeyRecord | undefined {
    try {
      const record = decodeKeyRecord(value);
      if (record.id === id) return record;
      this.opts.log.warn('API key record is stored under another id; ignored', { key: id });
    } catch (err) {
      this.opts.log.warn('malformed API key record; ignored', { key: id, err: err instanceof Error ? err.message : String(err) });
    }
    return undefined;
  }

  /** Mirrors the bucket and evicts what changed; starts again (from scratch) when the watch ends. */
  private async follow(keys: KV): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        const watch = await keys.watch();
        this.watch = watch;
        if (this.stopped) watch.stop();
        failures = 0;
        for await (const e of watch) this.apply(e);
      } catch (err) {
        // Once per outage (the bucket may not exist until the registry has started).
        if (!this.stopped && failures++ === 0) this.opts.log.warn('watch of the API keys bucket failed; retrying', { err: err instanceof Error ? err.message : String(err) });
      }
      if (this.stopped) return;
      // Changes made while no watch ran are not known: start from nothing, the next watch replays the bucket.
      this.generation++;
      this.records.clear();
      this.cache.clear();
      await new Promise((r) => setTimeout(r, this.opts.rewatchDelayMs ?? 1_000));
    }
  }

  private apply(e: KvWatchEntry): void {
    this.generation++;
    const id = e.key;
    this.cache.evictKey(id);
    const record = e.operation === 'PUT' ? this.decode(id, e.value) : undefined;
    if (record) this.records.set(id, record);
    else this.records.delete(id);
  }
}
