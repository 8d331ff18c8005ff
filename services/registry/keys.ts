// API keys as the registry manages them: it is the only writer of the keys bucket (KEYS_BUCKET).
// A key is made by lib/auth (newApiKey), its token handed to the caller once, and only the hash of its
// secret stored; revoking sets revokedAt, which every router's watch sees. Every change is an event
// naming the principal, stored in the key's record by the same write (its outbox, as a model's:
// Registry.keyOutbox), so a registry killed before publishing it leaves it for the next flush.
// Nothing here logs or returns a secret or a hash.
import { kvKeys, type KV } from '../../lib/nats';
import { decodeKeyRecord, grantText, hashSecret, isKeyId, newApiKey, parseApiKey, parseGrants, secretMatches, type KeyRecord } from '../../lib/auth';
import { ErrorCode, MeshError, errors } from '../../lib/errors';
import { retry } from '../../lib/retry';
import { checkText } from '../../lib/text';
import type { Logger } from '../../lib/log';
import { announcing, type OutboxRecord, type PendingEvent } from './records';
import type { KeyOutbox } from './registry';

/** A key's record without its hash: what ListKeys and CreateKey show. */
export type KeyView = Omit<KeyRecord, 'hash'>;

/** A key just made: its token (shown once) and its record. */
export interface CreatedKey {
  token: string;
  key: KeyView;
}

/** Longest key name. */
export const MAX_KEY_NAME_LENGTH = 64;

/** The principal named as the creator of the key made from INFERMESH_AUTH_BOOTSTRAP_TOKEN_FILE. */
export const BOOTSTRAP_PRINCIPAL = 'bootstrap';
/** The bootstrap key's name and grants. */
const BOOTSTRAP_NAME = 'bootstrap';
const BOOTSTRAP_GRANTS = ['admin'];

function viewOf(r: KeyRecord): KeyView {
  const { hash: _hash, ...view } = r;
  return view;
}

/** JetStream's "wrong last sequence" / "key exists": someone else wrote the key first. */
const isConflict = (err: unknown) => err instanceof Error && /wrong last sequence|key exists/i.test(err.message);

/**
 * A key's record as this store writes it: lib/auth's fields and the events announcing its writes
 * (created, then revoked: two at most, within any outbox's bound). Readers of the bucket
 * (decodeKeyRecord) skip the outbox.
 */
type StoredKey = KeyRecord & OutboxRecord;
const encodeStored = (record: StoredKey) => Buffer.from(JSON.stringify(record), 'utf8');

export class KeyStore {
  constructor(
    private readonly kv: KV,
    /** Where each key's events wait until published (the registry's outbox code). */
    private readonly outbox: KeyOutbox,
    private readonly log: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * Makes a key named `name` with `grants` (checked by lib/auth's parseGrants, stored as written
   * canonically), created by `by`; publishes key.created. INVALID_ARGUMENT for a bad name or grant.
   */
  async create(name: string, grants: readonly string[], by: string): Promise<CreatedKey> {
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_KEY_NAME_LENGTH) {
      throw errors.invalidArgument(`key name must be 1-${MAX_KEY_NAME_LENGTH} printable characters`);
    }
    // The name shows in logs, events and terminals: the rule every stored name follows.
    checkText('key name', name, 'name');
    if (grants.length === 0) throw errors.invalidArgument('a key needs at least one grant (e.g. infer:mnist*, read, admin)');
    const canonical = [...new Set(parseGrants(grants).map(grantText))];
    for (let attempt = 0; ; attempt++) {
      const made = newApiKey();
      const record: KeyRecord = { id: made.id, name, hash: made.hash, grants: canonical, createdAt: this.now().toISOString(), createdBy: by };
      const stored = announcing<StoredKey>(record, { type: 'key.created', model: '', keyId: record.id, name, grants: canonical, principal: by });
      await this.outbox.mark(made.id);
      try {
        await retry(() => this.kv.create(made.id, encodeStored(stored)), { retryable: (e) => !isConflict(e) });
      } catch (err) {
        if (!isConflict(err)) throw err;
        // An attempt stored whose answer was lost (a JetStream leader election) makes the retry
        // conflict with the record it wrote: that key is this one, not a second whose token the
        // caller gets while the first's is shown to no one.
        if ((await this.read(made.id))?.value.hash !== made.hash) {
          // 64 random bits: a collision is all but impossible; try another id rather than overwrite.
          if (attempt < 3) continue;
          throw err;
        }
      }
      await this.outbox.announce(record.id);
      this.log.info('API key created', { keyId: record.id, name, grants: canonical, principal: by });
      return { token: made.token, key: viewOf(record) };
    }
  }

  /** Every key's record without its hash, oldest first; records that do not decode are skipped (and logged). */
  async list(): Promise<KeyView[]> {
    const ids = await kvKeys(this.kv);
    const records = await Promise.all(ids.map((id) => this.read(id)));
    return records
      .flatMap((r) => (r ? [viewOf(r.value)] : []))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  /**
   * Marks key `id` revoked and publishes key.revoked; a revoked key is returned unchanged.
   * INVALID_ARGUMENT for a malformed id, NOT_FOUND for an unknown one.
   */
  async revoke(id: string, by: string): Promise<KeyView> {
    if (!isKeyId(id)) throw errors.invalidArgument('a key id is 16 lowercase hex characters');
    let marked = false;
    for (let attempt = 0; attempt < 100; attempt++) {
      const cur = await this.read(id);
      if (!cur) throw new MeshError(ErrorCode.KeyNotFound, `API key '${id}' not found`);
      if (cur.value.revokedAt) return viewOf(cur.value);
      const revoked: KeyRecord = { ...cur.value, revokedAt: this.now().toISOString() };
      const stored = announcing<StoredKey>({ ...revoked, outbox: cur.outbox }, { type: 'key.revoked', model: '', keyId: id, name: revoked.name, principal: by });
      if (!marked) await this.outbox.mark(id);
      marked = true;
      try {
        await this.kv.update(id, encodeStored(stored), cur.revision);
      } catch (err) {
        if (isConflict(err)) continue;
        throw err;
      }
      await this.outbox.announce(id);
      this.log.info('API key revoked', { keyId: id, name: revoked.name, principal: by });
      return viewOf(revoked);
    }
    throw new MeshError(ErrorCode.Conflict, `too many concurrent writers of key '${id}'; try again`);
  }

  /**
   * Makes sure the admin key of `token` (INFERMESH_AUTH_BOOTSTRAP_TOKEN_FILE's content) exists: stores
   * its record (hash only) when missing. A key of that id that was revoked stays revoked (an
   * operator's revocation wins; a warning says so); one with another secret stops the start.
   * `source` names where the token came from in errors, which never show the token.
   */
  async ensureBootstrap(token: string, source: string): Promise<void> {
    let parsed: { id: string; secret: string };
    try {
      parsed = parseApiKey(token.trim());
    } catch {
      throw new Error(`${source} does not hold an API key (imk_<16 hex>_<43 base64url>)`);
    }
    const record: KeyRecord = {
      id: parsed.id, name: BOOTSTRAP_NAME, hash: hashSecret(parsed.secret), grants: BOOTSTRAP_GRANTS,
      createdAt: this.now().toISOString(), createdBy: BOOTSTRAP_PRINCIPAL,
    };
    for (let attempt = 0; attempt < 100; attempt++) {
      const cur = await this.read(parsed.id);
      if (cur) {
        if (!secretMatches(parsed.secret, cur.value.hash)) throw new Error(`${source}: key ${parsed.id} exists with another secret; refusing to replace it`);
        if (cur.value.revokedAt) this.log.warn('the bootstrap admin key is revoked; it stays revoked', { keyId: parsed.id });
        return;
      }
      const stored = announcing<StoredKey>(record, { type: 'key.created', model: '', keyId: record.id, name: record.name, grants: record.grants, principal: BOOTSTRAP_PRINCIPAL });
      await this.outbox.mark(parsed.id);
      try {
        await this.kv.create(parsed.id, encodeStored(stored));
      } catch (err) {
        if (isConflict(err)) continue; // another replica stored it: check it is the same
        throw err;
      }
      await this.outbox.announce(parsed.id);
      this.log.info('bootstrap admin key stored', { keyId: record.id });
      return;
    }
    throw new Error(`${source}: could not store key ${parsed.id}: too many concurrent writers`);
  }

  /**
   * A key's record, its events waiting (outbox) and revision; undefined when missing, deleted or
   * undecodable (logged without its content).
   */
  private async read(id: string): Promise<{ value: KeyRecord; outbox?: PendingEvent[]; revision: number } | undefined> {
    const e = await retry(() => this.kv.get(id));
    if (!e || e.operation !== 'PUT') return undefined;
    try {
      return { value: decodeKeyRecord(e.value), outbox: e.json<OutboxRecord>().outbox, revision: e.revision };
    } catch (err) {
      this.log.warn('skipping a key record that does not decode', { keyId: id, err });
      return undefined;
    }
  }
}
