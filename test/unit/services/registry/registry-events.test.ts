// The schemas of the events the registry's version lifecycle publishes (lib/events.ts).
import { decodeEvent, encodeEvent, newEvent, SchemaError, subjects } from '../../../../lib/events';

const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const base = { schema: 1, id: 'a', time: 't', model: 'm' };

describe('registry lifecycle events', () => {
  it('round-trips model.config.changed, version.archived and version.deleted', () => {
    const events = [
      newEvent({ type: 'model.config.changed', model: 'm', description: '', labels: { team: 'ml' }, config: {} }),
      newEvent({ type: 'model.config.changed', model: 'm', description: 'd', labels: {}, config: { dynamicBatching: { enabled: true, maxBatchSize: 8, preferredBatchSizes: [2, 4] } } }),
      newEvent({ type: 'version.archived', model: 'm', version: 3 }),
      newEvent({ type: 'version.deleted', model: 'm', version: 3, sha256: 'ab', artifactDeleted: false }),
    ];
    for (const e of events) expect(decodeEvent(encodeEvent(e))).toEqual(e);
    expect(subjects.event('m', 'model.config.changed')).toBe('infermesh.events.m.model.config.changed');
    expect(subjects.eventsOf('m')).toBe('infermesh.events.m.>');
  });

  it.each([
    ['config.changed without labels', { ...base, type: 'model.config.changed', description: '', config: {} }, 'model.config.changed: bad labels'],
    ['config.changed with a label that is not a string', { ...base, type: 'model.config.changed', description: '', labels: { a: 1 }, config: {} }, 'model.config.changed: bad labels'],
    ['config.changed with a bad batch size', { ...base, type: 'model.config.changed', description: '', labels: {}, config: { dynamicBatching: { maxBatchSize: -1 } } }, 'model.config.changed: bad config'],
    ['config.changed with a description that is not a string', { ...base, type: 'model.config.changed', description: 3, labels: {}, config: {} }, 'model.config.changed: bad description'],
    ['archived without a version', { ...base, type: 'version.archived' }, 'version.archived: bad version'],
    ['deleted without artifactDeleted', { ...base, type: 'version.deleted', version: 1, sha256: 'ab' }, 'version.deleted: bad version, sha256 or artifactDeleted'],
  ])('rejects %s', (_n, event, message) => {
    expect(() => decodeEvent(bytes(event))).toThrow(SchemaError);
    expect(() => decodeEvent(bytes(event))).toThrow(message);
  });
});
