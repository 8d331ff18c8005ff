// The admission of WatchEvents streams (WatchSlots): per caller, in all, slots given back once;
// whom a watch counts against (watcherOf); and the settings that size it (lib/config.ts).
import { WatchSlots, watchLimitsOf, watcherOf } from '../../../../services/registry/grpc-handlers';
import { Caller } from '../../../../services/registry/access';
import { ANONYMOUS, parseGrants } from '../../../../lib/auth';
import { ErrorCode, MeshError } from '../../../../lib/errors';
import { loadConfig } from '../../../../lib/config';

/** What admit() threw. */
function refusal(slots: WatchSlots, watcher: string): MeshError {
  try {
    slots.admit(watcher);
  } catch (err) {
    if (err instanceof MeshError) return err;
    throw err;
  }
  throw new Error(`${watcher} was admitted`);
}

describe('WatchSlots', () => {
  it('admits perCaller watches of one watcher, then refuses it (Overloaded, naming the setting) while others are admitted', () => {
    const slots = new WatchSlots({ perCaller: 2, total: 10 });
    slots.admit('key:a');
    slots.admit('key:a');
    const err = refusal(slots, 'key:a');
    expect(err.code).toBe(ErrorCode.Overloaded);
    expect(err.message).toContain('INFERMESH_REGISTRY_MAX_WATCHES_PER_CALLER');
    slots.admit('key:b');
    expect(slots.size).toBe(3);
  });

  it('admits `total` watches of all watchers together, then refuses every watcher naming INFERMESH_REGISTRY_MAX_WATCHES', () => {
    const slots = new WatchSlots({ perCaller: 2, total: 3 });
    slots.admit('key:a');
    slots.admit('key:b');
    slots.admit('key:c');
    for (const w of ['key:a', 'key:d']) {
      const err = refusal(slots, w);
      expect(err.code).toBe(ErrorCode.Overloaded);
      expect(err.message).toContain('INFERMESH_REGISTRY_MAX_WATCHES');
      expect(err.message).not.toContain('PER_CALLER');
    }
  });

  it('gives a slot back once however often it is released', () => {
    const slots = new WatchSlots({ perCaller: 1, total: 2 });
    const release = slots.admit('key:a');
    release();
    release();
    expect(slots.size).toBe(0);
    const again = slots.admit('key:a');
    slots.admit('key:b');
    expect(refusal(slots, 'key:c').message).toContain('INFERMESH_REGISTRY_MAX_WATCHES');
    again();
    slots.admit('key:c');
    expect(slots.size).toBe(2);
  });
});

describe('watcherOf', () => {
  it.each([
    [{ id: 'k1', kind: 'key' as const, grants: parseGrants(['read']) }, '127.0.0.1:5000', 'key:k1'],
    [{ id: 'alice', kind: 'jwt' as const, grants: parseGrants(['read']) }, '127.0.0.1:5000', 'jwt:alice'],
    // Authentication off: everyone is anonymous, so a client is known by its address, any port.
    [ANONYMOUS, '10.0.0.7:5000', 'peer:10.0.0.7'],
    [ANONYMOUS, '10.0.0.7:5001', 'peer:10.0.0.7'],
    [ANONYMOUS, '::1:5000', 'peer:::1'],
  ])('counts %p calling from %p against %p', (principal, peer, watcher) => {
    expect(watcherOf(new Caller(principal), peer)).toBe(watcher);
  });
});

describe('the WatchEvents settings', () => {
  it('default to 16 per caller and half of INFERMESH_EVENT_STREAM_MAX_CONSUMERS in all', () => {
    expect(watchLimitsOf(loadConfig({}))).toEqual({ perCaller: 16, total: 512 });
    expect(watchLimitsOf(loadConfig({ INFERMESH_EVENT_STREAM_MAX_CONSUMERS: '64', INFERMESH_REGISTRY_MAX_WATCHES_PER_CALLER: '4' }))).toEqual({ perCaller: 4, total: 32 });
    expect(loadConfig({ INFERMESH_REGISTRY_MAX_WATCHES: '100' }).registryMaxWatches).toBe(100);
  });

  it('refuse a total that leaves routers and pods no consumer, naming the variable', () => {
    expect(() => loadConfig({ INFERMESH_EVENT_STREAM_MAX_CONSUMERS: '64', INFERMESH_REGISTRY_MAX_WATCHES: '64' }))
      .toThrow('INFERMESH_REGISTRY_MAX_WATCHES="64" is invalid: expected fewer than INFERMESH_EVENT_STREAM_MAX_CONSUMERS (64)');
    expect(() => loadConfig({ INFERMESH_REGISTRY_MAX_WATCHES_PER_CALLER: '0' })).toThrow('INFERMESH_REGISTRY_MAX_WATCHES_PER_CALLER="0" is invalid');
  });
});
