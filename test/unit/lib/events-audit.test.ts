// Audit fields of registry events (lib/events.ts): the principal, added to schema 1 as an optional
// field, and the key events, which concern no model.
import { decodeEvent, encodeEvent, newEvent, SchemaError, subjects } from '../../../lib/events';

const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const base = { schema: 1, id: 'a', time: '2026-01-01T00:00:00Z' };

describe('event audit fields', () => {
  it('round-trips key events and the principal of any event', () => {
    const events = [
      newEvent({ type: 'key.created', model: '', keyId: '0123456789abcdef', name: 'ci', grants: ['infer:mnist*'], principal: 'key:fedcba9876543210' }),
      newEvent({ type: 'key.revoked', model: '', keyId: '0123456789abcdef', name: 'ci', principal: 'jwt:alice' }),
      newEvent({ type: 'version.archived', model: 'm', version: 2, principal: 'controller' }),
    ];
    for (const e of events) expect(decodeEvent(encodeEvent(e))).toEqual(e);
    expect(subjects.event('', 'key.created')).toBe('infermesh.events.=.key.created');
  });

  it('still reads events stored before the principal existed', () => {
    const old = { ...base, model: 'm', type: 'version.published', version: 1, sha256: 'ab', sizeBytes: 3 };
    expect(decodeEvent(bytes(old))).toEqual(old);
  });

  it.each([
    ['a model event without a model', { ...base, model: '', type: 'version.archived', version: 1 }, 'event without id, time or model'],
    ['a principal that is not a string', { ...base, model: 'm', type: 'model.created', principal: 7 }, 'event with a bad principal'],
    ['an empty principal', { ...base, model: 'm', type: 'model.created', principal: '' }, 'event with a bad principal'],
    ['key.created without grants', { ...base, model: '', type: 'key.created', keyId: 'k', name: 'n' }, 'key.created: bad keyId, name or grants'],
    ['key.revoked without a key id', { ...base, model: '', type: 'key.revoked', name: 'n' }, 'key.revoked: bad keyId or name'],
  ])('rejects %s', (_n, event, message) => {
    expect(() => decodeEvent(bytes(event))).toThrow(SchemaError);
    expect(() => decodeEvent(bytes(event))).toThrow(message);
  });
});
