// Verified credentials, so that a call with a known token costs one Map lookup: keyed by the
// `authorization` header's value as it came, bounded in entries (the oldest goes first) and in
// time (each entry until its TTL or its token's own expiry). Entries of an API key are indexed by
// the key's id, so a change to the key's record evicts them at once.
import type { Principal } from './principal';

interface Entry {
  principal: Principal;
  /** Epoch ms after which the entry is not used. */
  expiresAtMs: number;
  /** The API key's id; undefined for a JWT. */
  keyId: string | undefined;
}

export class TokenCache {
  private readonly entries = new Map<string, Entry>();
  private readonly byKey = new Map<string, Set<string>>();

  /** `maxEntries` 0 turns caching off. */
  constructor(private readonly maxEntries: number, private readonly ttlMs: number, private readonly now: () => number = Date.now) {}

  get size(): number {
    return this.entries.size;
  }

  /** The principal cached for this header value, or undefined (unknown or past its time). */
  get(header: string): Principal | undefined {
    const e = this.entries.get(header);
    if (e === undefined) return undefined;
    if (e.expiresAtMs > this.now()) return e.principal;
    this.delete(header, e);
    return undefined;
  }

  /** Caches `principal` for `header` for the TTL, or until `expiresAtMs` when sooner. */
  set(header: string, principal: Principal, keyId: string | undefined, expiresAtMs = Infinity): void {
    if (this.maxEntries <= 0) return;
    const old = this.entries.get(header);
    if (old) this.delete(header, old);
    while (this.entries.size >= this.maxEntries) {
      const [oldest, e] = this.entries.entries().next().value as [string, Entry];
      this.delete(oldest, e);
    }
    this.entries.set(header, { principal, expiresAtMs: Math.min(this.now() + this.ttlMs, expiresAtMs), keyId });
    if (keyId !== undefined) {
      let set = this.byKey.get(keyId);
      if (!set) this.byKey.set(keyId, (set = new Set()));
      set.add(header);
    }
  }

  /** Forgets every entry of API key `keyId` (its record changed or went). */
  evictKey(keyId: string): void {
    const set = this.byKey.get(keyId);
    if (!set) return;
    this.byKey.delete(keyId);
    for (const header of set) this.entries.delete(header);
  }

  /** Forgets everything. */
  clear(): void {
    this.entries.clear();
    this.byKey.clear();
  }

  private delete(header: string, e: Entry): void {
    this.entries.delete(header);
    if (e.keyId === undefined) return;
    const set = this.byKey.get(e.keyId);
    set?.delete(header);
    if (set?.size === 0) this.byKey.delete(e.keyId);
  }
}
