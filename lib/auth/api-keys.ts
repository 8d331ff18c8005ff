// API keys: `imk_<id>_<secret>`, id 16 lowercase hex characters (8 random bytes, the key's name in
// the store), secret 43 base64url characters (32 random bytes). Only the secret's sha256 is stored,
// in the JetStream KV bucket KEYS_BUCKET under the id; only the registry writes it, routers read and
// watch it. Nothing here logs or echoes a token or a secret.
import crypto from 'node:crypto';
import { Kvm, type KV } from '@nats-io/kv';
import { StorageType } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { errors } from '../errors';
import { MAX_GRANTS } from './grants';

/** The KV bucket of key records (key: the key's id; value: a KeyRecord as JSON). */
export const KEYS_BUCKET = 'infermesh_keys';

/** The prefix that marks an infermesh API key among bearer tokens. */
export const API_KEY_PREFIX = 'imk_';
const ID_HEX = 16;
const SECRET_BYTES = 32;
const SECRET_CHARS = 43;
/** The whole token's length: 'imk_' + id + '_' + secret. */
export const API_KEY_LENGTH = API_KEY_PREFIX.length + ID_HEX + 1 + SECRET_CHARS;
const API_KEY = /^imk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const KEY_ID = /^[0-9a-f]{16}$/;
const HASH = /^[0-9a-f]{64}$/;

/** A key's stored record. Only the registry writes it; `revokedAt` set means refused everywhere. */
export interface KeyRecord {
  id: string;
  /** A name for people ("ci-pipeline"); not secret. */
  name: string;
  /** hashSecret(secret): sha256 of the secret's text, lowercase hex. */
  hash: string;
  /** Grants as written (grants.ts). */
  grants: string[];
  /** ISO 8601. */
  createdAt: string;
  /** The principal id that created it. */
  createdBy: string;
  /** ISO 8601; present once revoked. */
  revokedAt?: string;
}

/** A new key: the token goes to its owner once; the record keeps only `hash`. */
export interface NewApiKey {
  id: string;
  secret: string;
  token: string;
  hash: string;
}

/** Makes a new random key (crypto.randomBytes). */
export function newApiKey(): NewApiKey {
  const id = crypto.randomBytes(ID_HEX / 2).toString('hex');
  const secret = crypto.randomBytes(SECRET_BYTES).toString('base64url');
  return { id, secret, token: `${API_KEY_PREFIX}${id}_${secret}`, hash: hashSecret(secret) };
}

/** True for a string shaped as an API key's id (a KV key in KEYS_BUCKET). */
export function isKeyId(id: string): boolean {
  return KEY_ID.test(id);
}

/**
 * Splits a token into id and secret, checking its exact format: the prefix, 16 lowercase hex, and
 * a secret that is the canonical base64url of exactly 32 bytes. Throws UNAUTHENTICATED, never
 * repeating the token.
 */
export function parseApiKey(token: string): { id: string; secret: string } {
  const m = typeof token === 'string' && token.length === API_KEY_LENGTH ? API_KEY.exec(token) : null;
  // Canonical only: 43 characters carry 258 bits, the last 2 must be zero.
  if (!m || Buffer.from(m[2]!, 'base64url').toString('base64url') !== m[2]) {
    throw errors.unauthenticated(`malformed API key: expected ${API_KEY_PREFIX}<16 hex>_<43 base64url>`);
  }
  return { id: m[1]!, secret: m[2]! };
}

/** sha256 of a secret's text, lowercase hex: what a KeyRecord stores. */
export function hashSecret(secret: string): string {
  return crypto.createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Whether `secret` hashes to `hash`, compared in constant time. */
export function secretMatches(secret: string, hash: string): boolean {
  if (!HASH.test(hash)) return false;
  return crypto.timingSafeEqual(crypto.createHash('sha256').update(secret, 'utf8').digest(), Buffer.from(hash, 'hex'));
}

const isIsoDate = (v: unknown): v is string => typeof v === 'string' && v.length <= 64 && !Number.isNaN(Date.parse(v));

/**
 * A KeyRecord from the bucket's bytes, checked field by field (a record is only as trusted as the
 * bucket's permissions); throws with what is wrong, never with the record's hash.
 */
export function decodeKeyRecord(data: Uint8Array): KeyRecord {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch {
    throw new Error('key record is not JSON');
  }
  const r = v as Partial<Record<keyof KeyRecord, unknown>>;
  if (typeof v !== 'object' || v === null) throw new Error('key record is not an object');
  if (typeof r.id !== 'string' || !KEY_ID.test(r.id)) throw new Error('key record has no valid id');
  if (typeof r.hash !== 'string' || !HASH.test(r.hash)) throw new Error(`key record ${r.id} has no valid hash`);
  if (typeof r.name !== 'string') throw new Error(`key record ${r.id} has no name`);
  if (!Array.isArray(r.grants) || r.grants.length > MAX_GRANTS || !r.grants.every((g) => typeof g === 'string')) throw new Error(`key record ${r.id} has no valid grants`);
  if (!isIsoDate(r.createdAt)) throw new Error(`key record ${r.id} has no valid createdAt`);
  if (typeof r.createdBy !== 'string') throw new Error(`key record ${r.id} has no createdBy`);
  if (r.revokedAt !== undefined && !isIsoDate(r.revokedAt)) throw new Error(`key record ${r.id} has an invalid revokedAt`);
  const record: KeyRecord = { id: r.id, name: r.name, hash: r.hash, grants: r.grants as string[], createdAt: r.createdAt, createdBy: r.createdBy };
  if (r.revokedAt !== undefined) record.revokedAt = r.revokedAt;
  return record;
}

/** A KeyRecord as the bucket stores it. */
export function encodeKeyRecord(record: KeyRecord): Uint8Array {
  return Buffer.from(JSON.stringify(record), 'utf8');
}

/**
 * Opens KEYS_BUCKET, file-backed with one value per key. `create` (the registry, its only writer):
 * creates it when missing. Without it (routers) the bucket is bound as it is, so a reader needs no
 * right to create streams; reads fail until the registry has made it.
 */
export function keysBucket(nc: NatsConnection, opts: { replicas: number; create: boolean }): Promise<KV> {
  const kvm = new Kvm(nc);
  return opts.create ? kvm.create(KEYS_BUCKET, { replicas: opts.replicas, history: 1, storage: StorageType.File }) : kvm.open(KEYS_BUCKET);
}
