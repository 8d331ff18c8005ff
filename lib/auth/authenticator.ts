// Who a call comes from, from its `authorization: Bearer <token>` header: an API key (checked
// against its record in KEYS_BUCKET) or a JWT (checked by jose against the issuer's JWKS). Verified
// tokens are cached (token-cache.ts) so that a known one costs one Map lookup; the cache follows the
// bucket through a KV watch, which evicts a key's entries the moment its record changes or goes, so
// a revoked key is refused everywhere within the watch's delay (milliseconds). The watch's mirror
// is trusted only while the watch is known current: a round trip on its connection, made while the
// watch ran, proves it current at that moment, and what the mirror says (and each entry cached from
// it) is used no longer than the TTL past the last such proof. Past it a key is read from the
// bucket, which fails closed (UNAVAILABLE) while NATS is away; when the connection comes back the
// watch starts again from the bucket's contents, so what changed meanwhile is seen. The round trips
// are the connection's NatsLiveness probes (lib/nats.ts), not a loop of its own. Messages never
// contain the token.
import type { KV, KvWatchEntry } from '@nats-io/kv';
import { errors } from '../errors';
import type { Logger } from '../log';
import type { NatsConnection, NatsLiveness } from '../nats';
import { API_KEY_PREFIX, decodeKeyRecord, parseApiKey, secretMatches, type KeyRecord } from './api-keys';
import { parseGrants } from './grants';
import { JwtVerifier, type JwtSettings } from './jwt';
import type { Principal } from './principal';
import { TokenCache } from './token-cache';

/** Options of an Authenticator. */
export interface AuthenticatorOptions {
  /** KEYS_BUCKET (keysBucket()); undefined: API keys are not accepted. */
  keys?: KV;
  /**
   * The connection `keys` is on, and its liveness: the liveness's round trips and the connection's
   * disconnects tell how long the watch's mirror may be trusted. Without both the mirror is never
   * trusted and every key not in the cache is read from the bucket.
   */
  nc?: Pick<NatsConnection, 'status'>;
  liveness?: Pick<NatsLiveness, 'sent' | 'onAnswered' | 'probeSoon'>;
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
/**
 * Longest round trip that proves the watch current: a quarter of the TTL, within these bounds. The
 * round trips come every INFERMESH_NATS_PROBE_INTERVAL_MS (1 s by default): a TTL shorter than
 * that leaves the mirror untrusted between them, and keys are read from the bucket meanwhile.
 */
const MAX_PROBE_MS = 5_000;
const MIN_PROBE_MS = 25;

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
  /** When the watch was last proven current (epoch ms): the mirror is trusted until this plus the TTL. */
  private currentAtMs = -Infinity;
  /** True while a watch runs on a connection not known to be down. */
  private watching = false;
  /** False from a disconnect until the reconnect. */
  private connected = true;
  /** Counts watches and disconnects: a round trip that spans one proves nothing. */
  private epoch = 0;
  /** The epoch and the liveness's round-trip count when it began: a proof is a round trip sent since, in it. */
  private proving = { epoch: 0, fromSeq: Infinity };
  private readonly probeMs: number;
  private stopProofs: (() => void) | undefined;
  private status: AsyncIterable<unknown> | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: AuthenticatorOptions) {
    this.cache = new TokenCache(opts.cacheEntries, opts.cacheTtlMs, opts.now);
    this.jwt = opts.jwt ? new JwtVerifier(opts.jwt) : undefined;
    this.now = opts.now ?? Date.now;
    this.probeMs = Math.min(MAX_PROBE_MS, Math.max(MIN_PROBE_MS, Math.floor(opts.cacheTtlMs / 4)));
  }

  /** Starts following the keys bucket (when there is one); returns at once. */
  start(): void {
    if (!this.opts.keys || this.following) return;
    this.following = this.follow(this.opts.keys);
    const liveness = this.opts.liveness;
    if (this.opts.nc && liveness) {
      void this.followConnection(this.opts.nc);
      // A TTL of 0 trusts the mirror never: nothing to prove.
      if (this.opts.cacheTtlMs > 0) {
        this.stopProofs = liveness.onAnswered(({ seq, sentAtMs }) => {
          if (this.proving.epoch !== this.epoch || seq < this.proving.fromSeq || !this.watching || !this.connected || this.stopped) return;
          if (this.now() - sentAtMs <= this.probeMs && sentAtMs > this.currentAtMs) this.currentAtMs = sentAtMs;
        });
      }
    }
  }

  /** Stops following the bucket. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopProofs?.();
    (this.status as { stop?(): void } | undefined)?.stop?.();
    this.watch?.stop();
    await this.following;
  }

  /** Until when the watch's mirror is trusted without a read of the bucket (epoch ms; -Infinity: never yet). */
  get mirrorTrustedUntilMs(): number {
    return this.currentAtMs + this.opts.cacheTtlMs;
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
    // The mirror, while it is known current; each entry cached from it ends with that knowledge.
    let trustedUntil = this.currentAtMs + this.opts.cacheTtlMs;
    let record = this.now() < trustedUntil ? this.records.get(id) : undefined;
    let cacheable = true;
    if (!record) {
      // Not (yet) delivered by the watch (a key made a moment ago, a watch being restarted), or the
      // watch is not known current: the bucket says. With NATS away nothing can be known: refused.
      if (!this.connected) throw errors.unavailable('API keys cannot be read now (NATS is unreachable); retry');
      const generation = this.generation;
      record = await this.read(id);
      cacheable = generation === this.generation;
      trustedUntil = this.currentAtMs + this.opts.cacheTtlMs;
      if (this.now() < trustedUntil) record = this.records.get(id) ?? record;
      else trustedUntil = Infinity; // read just now: the cache's own TTL bounds it
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
    if (cacheable) this.cache.set(authorization, principal, id, trustedUntil);
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
        this.epoch++;
        this.watching = true;
        this.probe();
        for await (const e of watch) this.apply(e);
      } catch (err) {
        // Once per outage (the bucket may not exist until the registry has started).
        if (!this.stopped && failures++ === 0) this.opts.log.warn('watch of the API keys bucket failed; retrying', { err: err instanceof Error ? err.message : String(err) });
      }
      if (this.stopped) return;
      this.forget();
      await new Promise((r) => setTimeout(r, this.opts.rewatchDelayMs ?? 1_000));
    }
  }

  /**
   * Changes made while no watch ran are not known: start from nothing (the next watch replays the
   * bucket), and trust no mirror until a round trip proves the new watch current.
   */
  private forget(): void {
    this.watching = false;
    this.epoch++;
    this.currentAtMs = -Infinity;
    this.generation++;
    this.records.clear();
    this.cache.clear();
  }

  /**
   * Follows the connection: a disconnect stops the proofs (the mirror is trusted the TTL past the
   * last one), a reconnect drops the mirror and the cache and restarts the watch, which replays the
   * bucket as it is now (a key revoked during the outage comes back revoked).
   */
  private async followConnection(nc: Pick<NatsConnection, 'status'>): Promise<void> {
    const status = nc.status();
    this.status = status;
    try {
      for await (const s of status) {
        if (this.stopped) return;
        if (s.type === 'disconnect' || s.type === 'staleConnection') {
          this.connected = false;
          this.epoch++;
        } else if (s.type === 'reconnect') {
          this.connected = true;
          this.forget();
          this.watch?.stop(); // follow() starts a fresh one
        }
      }
    } catch (err) {
      this.opts.log.warn('cannot follow the NATS connection; API keys are read from the bucket', { err: err instanceof Error ? err.message : String(err) });
    }
  }

  /**
   * Asks the liveness for a round trip now that the watch runs: one sent from here on that comes
   * back within probeMs, with no disconnect or new watch between, proves the watch current when it
   * was sent (up to JetStream's delivery delay, milliseconds); so does each of its later probes.
   */
  private probe(): void {
    const liveness = this.opts.liveness;
    if (!liveness || this.opts.cacheTtlMs <= 0 || !this.watching || !this.connected || this.stopped) return;
    this.proving = { epoch: this.epoch, fromSeq: liveness.sent };
    liveness.probeSoon();
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
