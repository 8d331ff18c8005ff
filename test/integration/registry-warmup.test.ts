// Warm-up samples in a model's serving config (ServingConfig.warmup), against a real registry and
// nats-server: set by UpdateModel (and CreateModel), stored and answered exactly, carried by the
// model.config.changed event, kept when only batching changes, and refused with INVALID_ARGUMENT
// naming the sample when they could never be run or would not fit in the record.
import { RegistryApi, InfermeshError, type Model } from '../../client/index';
import { registryClient, unary } from '../../lib/grpc/client';
import type { ServingConfig } from '../../lib/grpc/types';
import type { ModelConfigChangedEvent } from '../../lib/events';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { startTestRegistry } from '../helpers/services';
import { modelPath } from '../helpers/models';
import type { RegistryService } from '../../services/registry/registry-service';

jest.setTimeout(60_000);

const raw = Buffer.from(Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8).buffer);
const samples: NonNullable<ServingConfig['warmup']> = [
  { name: 'two rows', count: 3, inputs: [{ name: 'INPUT0', dims: [2, 4], raw_data: raw }, { name: 'INPUT1', dims: [2, 4] }] },
  { name: '', inputs: [{ name: 'INPUT0', dims: [0, 4] }, { name: 'INPUT1', dims: [0, 4] }] },
];

describe('warm-up samples in the registry', () => {
  let nats: NatsServerProcess & { cleanup(): Promise<void> };
  let service: RegistryService;
  let client: RegistryApi;

  beforeAll(async () => {
    nats = await startTestNats();
    service = await startTestRegistry(nats.url, { INFERMESH_MAX_WARMUP_CONFIG_BYTES: '4096', INFERMESH_MAX_WARMUP_RUNS: '10', INFERMESH_MAX_WARMUP_ELEMENTS: '100000' });
    client = new RegistryApi(`127.0.0.1:${service.port}`);
    await client.push('add-sub', modelPath('fixtures/add_sub_fp32.onnx'));
  });

  afterAll(async () => {
    client?.close();
    await service?.shutdown(5_000);
    await nats?.cleanup();
  });

  const asStored = (m: Model) => m.config!.warmup.map((s) => ({ name: s.name, count: s.count, inputs: s.inputs.map((i) => ({ name: i.name, dims: i.dims, raw: i.raw_data.toString('hex') })) }));
  const expected = [
    { name: 'two rows', count: 3, inputs: [{ name: 'INPUT0', dims: ['2', '4'], raw: raw.toString('hex') }, { name: 'INPUT1', dims: ['2', '4'], raw: '' }] },
    { name: '', count: 0, inputs: [{ name: 'INPUT0', dims: ['0', '4'], raw: '' }, { name: 'INPUT1', dims: ['0', '4'], raw: '' }] },
  ];

  it('stores the samples UpdateModel sets, answers them exactly and announces them', async () => {
    const watch = client.watchEvents({ model: 'add-sub', onlyNew: true });
    await watch.ready;
    const updated = await client.updateModel('add-sub', { config: { warmup: samples } });
    expect(asStored(updated)).toEqual(expected);
    expect(asStored(await client.model('add-sub'))).toEqual(expected);
    let changed: ModelConfigChangedEvent | undefined;
    for await (const { event } of watch) {
      if (event.type !== 'model.config.changed') continue;
      changed = event;
      break;
    }
    watch.cancel();
    expect(changed!.config.warmup).toEqual([
      { name: 'two rows', count: 3, inputs: [{ name: 'INPUT0', dims: [2, 4], rawData: raw.toString('base64') }, { name: 'INPUT1', dims: [2, 4] }] },
      { name: '', inputs: [{ name: 'INPUT0', dims: [0, 4] }, { name: 'INPUT1', dims: [0, 4] }] },
    ]);
  });

  it('keeps the samples when a client changes only batching over what it read (as `infermesh update` does)', async () => {
    const current = await client.model('add-sub');
    const m = await client.updateModel('add-sub', { config: { ...current.config, dynamic_batching: { enabled: true, max_batch_size: 4 } } }, { expectedRevision: current.revision });
    expect(m.config!.dynamic_batching).toMatchObject({ enabled: true, max_batch_size: 4 });
    expect(asStored(m)).toEqual(expected);
    // And an explicit empty list clears them.
    expect((await client.updateModel('add-sub', { config: { ...m.config, warmup: [] } })).config!.warmup).toEqual([]);
  });

  it('takes them at CreateModel too', async () => {
    const raw2 = registryClient(`127.0.0.1:${service.port}`);
    try {
      await unary((cb) => raw2.CreateModel({ name: 'created', config: { warmup: samples } }, cb));
    } finally {
      raw2.close();
    }
    expect(asStored(await client.model('created'))).toEqual(expected);
  });

  it.each<[string, NonNullable<ServingConfig['warmup']>, RegExp]>([
    ['a negative dimension', [{ name: 's', inputs: [{ name: 'INPUT0', dims: [-1, 4] }] }], /^warm-up sample 's': input 'INPUT0' has dimension -1; warm-up shapes are fixed, each dimension an integer >= 0$/],
    ['no inputs', [{ name: 's', inputs: [] }], /^warm-up sample 's' has no inputs/],
    ['an input twice', [{ name: '', inputs: [{ name: 'INPUT0', dims: [1] }, { name: 'INPUT0', dims: [1] }] }], /^warm-up sample 1 gives input 'INPUT0' more than once$/],
    ['an input without a name', [{ name: 's', inputs: [{ name: '', dims: [1] }] }], /^warm-up sample 's' has an input without a name$/],
    ['too many runs in one sample', [{ name: 's', count: 11, inputs: [{ name: 'INPUT0', dims: [1] }] }], /^warm-up sample 's' takes the warm-up past the registry's maximum of 10 runs, every sample's count together \(INFERMESH_MAX_WARMUP_RUNS\)$/],
    ['too many runs, every sample together (a count of 0 runs once)', [
      { name: 'a', count: 6, inputs: [{ name: 'INPUT0', dims: [1] }] }, { name: 'b', count: 0, inputs: [{ name: 'INPUT0', dims: [1] }] },
      { name: 'c', count: 4, inputs: [{ name: 'INPUT0', dims: [1] }] },
    ], /^warm-up sample 'c' takes the warm-up past the registry's maximum of 10 runs/],
    ['a tensor of more elements than the warm-up may hold', [{ name: 's', inputs: [{ name: 'INPUT0', dims: [1, 67108864] }] }], /^warm-up sample 's': input 'INPUT0' takes the warm-up samples past the registry's maximum of 100000 elements \(INFERMESH_MAX_WARMUP_ELEMENTS\)$/],
    ['more elements than the warm-up may hold, every sample together', [
      { name: 'a', inputs: [{ name: 'INPUT0', dims: [1, 60000] }] }, { name: 'b', inputs: [{ name: 'INPUT0', dims: [0, 4] }, { name: 'INPUT1', dims: [1, 40001] }] },
    ], /^warm-up sample 'b': input 'INPUT1' takes the warm-up samples past the registry's maximum of 100000 elements/],
    ['more elements than a tensor holds', [{ name: 's', inputs: [{ name: 'INPUT0', dims: [2 ** 30, 2 ** 30, 2 ** 30] }] }], /has more elements than any tensor can hold/],
    ['a sample\'s name holding a terminal control', [{ name: 's\x1b]0;t\x07', inputs: [{ name: 'INPUT0', dims: [1] }] }], /^warm-up sample 1's name holds a control character \(U\+001B\) at character 2: names and labels take printable characters only/],
    ['an input\'s name holding a bidi override', [{ name: 's', inputs: [{ name: 'INPUT0', dims: [1] }, { name: 'IN\u202ePUT1', dims: [1] }] }], /^warm-up sample 's': input 2's name holds a bidirectional override \(U\+202E\) at character 3/],
    ['more than the registry stores', [{ name: 's', inputs: [{ name: 'INPUT0', dims: [1024, 4], raw_data: Buffer.alloc(4096) }] }], /^the warm-up samples take \d+ bytes as stored, above the registry's maximum of 4096 \(INFERMESH_MAX_WARMUP_CONFIG_BYTES\)$/],
  ])('refuses %s with INVALID_ARGUMENT and keeps the config', async (_what, bad, message) => {
    const before = await client.model('add-sub');
    const err = (await client.updateModel('add-sub', { config: { warmup: bad } }).catch((e: unknown) => e)) as InfermeshError;
    expect(err).toBeInstanceOf(InfermeshError);
    expect(err.grpcCode).toBe(3);
    expect(err.message).toMatch(message);
    expect((await client.model('add-sub')).revision).toBe(before.revision);
  });
});
