import { changesFromProto, eventToProto, modelToProto } from '../../../../services/registry/grpc-handlers';
import { newEvent } from '../../../../lib/events';
import type { UpdateModelRequest__Output } from '../../../../lib/grpc/generated/infermesh/registry/v1/UpdateModelRequest';

const request = (r: Partial<UpdateModelRequest__Output>): UpdateModelRequest__Output => ({
  name: 'm', description: '', labels: {}, config: null, update_mask: [], expected_revision: '0', ...r,
});

const batching = { enabled: true, max_batch_size: 8, max_queue_delay_us: '100', preferred_batch_sizes: [], max_queue_size: 0 };

describe('UpdateModel request decoding', () => {
  it.each([
    ['without a mask: the fields that are set', request({ description: 'd', labels: { a: 'b' } }), { description: 'd', labels: { a: 'b' } }],
    ['without a mask: a config message', request({ config: { dynamic_batching: batching, warmup: [] } }), {
      config: { dynamicBatching: { enabled: true, maxBatchSize: 8, maxQueueDelayUs: 100, preferredBatchSizes: undefined, maxQueueSize: undefined } },
    }],
    ['a mask clears what it names and leaves the rest', request({ description: 'ignored', update_mask: ['labels', 'config'] }), { labels: {}, config: {} }],
    ['a mask naming an empty description', request({ update_mask: ['description'] }), { description: '' }],
  ])('%s', (_name, req, changes) => {
    expect(changesFromProto(req)).toEqual(changes);
  });

  it('rejects unknown fields and empty updates', () => {
    expect(() => changesFromProto(request({ update_mask: ['name'] }))).toThrow("update_mask: unknown field 'name' (use description, labels, config)");
    expect(() => changesFromProto(request({}))).toThrow(/nothing to update/);
  });
});

describe('registry protocol encoding', () => {
  it('reports the model record\'s revision', () => {
    const record = { schema: 1 as const, name: 'm', description: '', labels: {}, config: {}, latestVersion: 2, traffic: [{ version: 2, weight: 100 }], createdAt: 't' };
    expect(modelToProto({ ...record, revision: 42 }).revision).toBe('42');
    expect(modelToProto(record).revision).toBe('0');
  });

  it('sends an event with its sequence, common fields and whole JSON', () => {
    const e = newEvent({ type: 'version.archived', model: 'm', version: 3 });
    expect(eventToProto(e, 17)).toEqual({ sequence: '17', id: e.id, time: e.time, model: 'm', type: 'version.archived', json: JSON.stringify(e) });
  });
});
