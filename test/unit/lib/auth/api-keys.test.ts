// API keys: the token format, strict parsing of hostile strings, hashing and record decoding.
import fc from 'fast-check';
import { API_KEY_LENGTH, decodeKeyRecord, encodeKeyRecord, hashSecret, newApiKey, parseApiKey, secretMatches, type KeyRecord } from '../../../../lib/auth';
import { ErrorCode, MeshError } from '../../../../lib/errors';

describe('newApiKey', () => {
  it('makes imk_<16 hex>_<43 base64url> tokens with the secret\'s sha256', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const k = newApiKey();
      expect(k.token).toMatch(/^imk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
      expect(k.token).toBe(`imk_${k.id}_${k.secret}`);
      expect(k.token).toHaveLength(API_KEY_LENGTH);
      expect(Buffer.from(k.secret, 'base64url')).toHaveLength(32);
      expect(k.hash).toBe(hashSecret(k.secret));
      expect(k.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(parseApiKey(k.token)).toEqual({ id: k.id, secret: k.secret });
      seen.add(k.id).add(k.secret);
    }
    expect(seen.size).toBe(400);
  });

  it('hashes with sha256 of the secret text', () => {
    expect(hashSecret('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('parseApiKey', () => {
  const refuses = (token: string) => {
    let err: unknown;
    try {
      parseApiKey(token);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MeshError);
    expect((err as MeshError).code).toBe(ErrorCode.Unauthenticated);
    // The token is never repeated, nor its secret part.
    if (token.length > 4) expect((err as MeshError).message).not.toContain(token.slice(4));
  };

  it.each([
    ['', 'empty'],
    ['imk_', 'prefix only'],
    [`IMK_0123456789abcdef_${'A'.repeat(43)}`, 'upper-case prefix'],
    [`imk_0123456789ABCDEF_${'A'.repeat(43)}`, 'upper-case hex'],
    [`imk_0123456789abcde_${'A'.repeat(44)}`, '15 hex'],
    [`imk_0123456789abcdef_${'A'.repeat(42)}`, 'short secret'],
    [`imk_0123456789abcdef_${'A'.repeat(44)}`, 'long secret'],
    [`imk_0123456789abcdef_${'A'.repeat(42)}=`, 'padding'],
    [`imk_0123456789abcdef_${'A'.repeat(42)}+`, 'base64 (not url) character'],
    [`imk_0123456789abcdef_${'A'.repeat(42)}B`, 'non-canonical last character (bits past 32 bytes)'],
    [`imk_0123456789abcdef_${'A'.repeat(43)}\n`, 'trailing newline'],
    [` imk_0123456789abcdef_${'A'.repeat(43)}`, 'leading space'],
    [`imk-0123456789abcdef_${'A'.repeat(43)}`, 'wrong separator'],
  ])('refuses %p (%s)', (token) => refuses(token));

  it('accepts exactly the generated shape (fuzzed)', () => {
    const hex = fc.stringMatching(/^[0-9a-f]{16}$/);
    const bytes = fc.uint8Array({ minLength: 32, maxLength: 32 });
    fc.assert(fc.property(hex, bytes, (id, b) => {
      const secret = Buffer.from(b).toString('base64url');
      expect(parseApiKey(`imk_${id}_${secret}`)).toEqual({ id, secret });
    }), { numRuns: 500 });
  });

  it('refuses every other string without throwing anything but UNAUTHENTICATED (fuzzed)', () => {
    const valid = /^imk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/;
    fc.assert(fc.property(fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.string({ unit: 'binary', maxLength: 80 }),
      // Near misses: a valid token with one character changed, dropped or added.
      fc.tuple(fc.nat(63), fc.string({ minLength: 0, maxLength: 2, unit: 'binary' })).map(([i, s]) => {
        const t = newApiKey().token;
        return t.slice(0, i) + s + t.slice(i + 1);
      }),
    ), (token) => {
      let parsed: unknown;
      try {
        parsed = parseApiKey(token);
      } catch (err) {
        expect(err).toBeInstanceOf(MeshError);
        expect((err as MeshError).code).toBe(ErrorCode.Unauthenticated);
        return;
      }
      // Accepted only when it is the exact shape, canonical.
      expect(token).toMatch(valid);
      const { secret } = parsed as { secret: string };
      expect(Buffer.from(secret, 'base64url').toString('base64url')).toBe(secret);
    }), { numRuns: 3000 });
  });
});

describe('secretMatches', () => {
  it('compares a secret with its stored hash', () => {
    const k = newApiKey();
    expect(secretMatches(k.secret, k.hash)).toBe(true);
    expect(secretMatches(newApiKey().secret, k.hash)).toBe(false);
    expect(secretMatches(k.secret, 'not hex')).toBe(false);
    expect(secretMatches(k.secret, k.hash.toUpperCase())).toBe(false);
    expect(secretMatches(k.secret, k.hash.slice(2))).toBe(false);
  });
});

describe('key records', () => {
  const record: KeyRecord = { id: '0123456789abcdef', name: 'ci', hash: hashSecret('s'), grants: ['infer:mnist'], createdAt: '2026-01-01T00:00:00.000Z', createdBy: 'admin' };

  it('round-trip, with and without revokedAt', () => {
    expect(decodeKeyRecord(encodeKeyRecord(record))).toEqual(record);
    const revoked = { ...record, revokedAt: '2026-02-01T00:00:00.000Z' };
    expect(decodeKeyRecord(encodeKeyRecord(revoked))).toEqual(revoked);
  });

  it.each([
    ['not json', Buffer.from('{')],
    ['not an object', Buffer.from('[]')],
    ['bad id', encodeKeyRecord({ ...record, id: 'XYZ' })],
    ['bad hash', encodeKeyRecord({ ...record, hash: 'abc' })],
    ['grants not strings', Buffer.from(JSON.stringify({ ...record, grants: [1] }))],
    ['bad createdAt', encodeKeyRecord({ ...record, createdAt: 'yesterday' })],
    ['bad revokedAt', encodeKeyRecord({ ...record, revokedAt: 'soon' })],
  ])('refuses %s, without repeating the hash', (_what, bytes) => {
    expect(() => decodeKeyRecord(bytes)).toThrow();
    try {
      decodeKeyRecord(bytes);
    } catch (err) {
      expect((err as Error).message).not.toContain(record.hash);
    }
  });
});
