import { decodeEvent, decodeHeartbeat, decodePlacementDemand, encodeEvent, encodeHeartbeat, encodePlacementDemand, newEvent, SchemaError, subjects } from '../../../lib/events';

const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

describe('events', () => {
  it('round-trips every event type with id and time filled in', () => {
    const events = [
      newEvent({ type: 'model.created', model: 'm' }),
      newEvent({ type: 'version.published', model: 'm', version: 3, sha256: 'ab', sizeBytes: 10 }),
      newEvent({ type: 'traffic.changed', model: 'm', traffic: [{ version: 3, weight: 90 }, { version: 4, weight: 10 }] }),
      newEvent({ type: 'placement.changed', model: 'm', version: 3, pods: ['pod-1'], placed: ['pod-1'], removed: ['pod-2'], evicted: ['pod-2'], reason: 'demand', principal: 'controller' }),
    ];
    for (const e of events) {
      expect(e.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(decodeEvent(encodeEvent(e))).toEqual(e);
    }
    expect(subjects.event('m', 'traffic.changed')).toBe('infermesh.events.m.traffic.changed');
  });

  it.each([
    ['not JSON', new TextEncoder().encode('{'), 'not JSON'],
    ['another schema', bytes({ schema: 2, id: 'a', time: 't', model: 'm', type: 'model.created' }), 'unsupported schema 2'],
    ['an unknown type', bytes({ schema: 1, id: 'a', time: 't', model: 'm', type: 'model.exploded' }), 'unknown event type model.exploded'],
    ['a bad version', bytes({ schema: 1, id: 'a', time: 't', model: 'm', type: 'version.published', version: -1, sha256: 'x', sizeBytes: 1 }), 'version.published: bad version'],
    ['bad traffic', bytes({ schema: 1, id: 'a', time: 't', model: 'm', type: 'traffic.changed', traffic: [{ version: 1 }] }), 'traffic.changed: bad traffic'],
    ...[
      ['a placement without pods', { pods: undefined }],
      ['a placement with a pod that is no name', { pods: [''] }],
      ['a placement with a pod name too long', { placed: ['p'.repeat(254)] }],
      ['a placement with an unknown reason', { reason: 'whim' }],
      ['a placement with a bad version', { version: 1.5 }],
      ['a placement whose evicted is no list', { evicted: 'pod-1' }],
    ].map(([name, change]): [string, Uint8Array, string] => [name as string, bytes({ schema: 1, id: 'a', time: 't', model: 'm', type: 'placement.changed', version: 1, pods: ['pod-1'], placed: [], removed: [], evicted: [], reason: 'demand', ...(change as object) }), 'placement.changed: bad version, pods or reason']),
  ])('rejects %s', (_n, data, message) => {
    expect(() => decodeEvent(data)).toThrow(SchemaError);
    expect(() => decodeEvent(data)).toThrow(message);
  });

  it('validates heartbeats', () => {
    const hb = { schema: 1 as const, pod: 'p', address: '127.0.0.1:1', state: 'serving' as const, models: [{ name: 'm', version: 1, state: 'READY' as const, provider: 'cpu' }], inflight: 0, time: 't' };
    expect(decodeHeartbeat(encodeHeartbeat(hb))).toEqual(hb);
    expect(() => decodeHeartbeat(bytes({ ...hb, state: 'sleeping' }))).toThrow('heartbeat: bad state');
    expect(() => decodeHeartbeat(bytes({ ...hb, models: [{ name: 'm' }] }))).toThrow('heartbeat: bad models');
  });

  it('bounds what a heartbeat may carry: long names and addresses are refused, a long reason is cut', () => {
    const hb = { schema: 1 as const, pod: 'p', address: '127.0.0.1:1', state: 'serving' as const, models: [{ name: 'm', version: 1, state: 'READY' as const, provider: 'cpu' }], inflight: 0, time: 't' };
    expect(() => decodeHeartbeat(bytes({ ...hb, pod: 'p'.repeat(254) }))).toThrow('heartbeat: pod name or address too long');
    expect(() => decodeHeartbeat(bytes({ ...hb, address: `${'a'.repeat(300)}:1` }))).toThrow('heartbeat: pod name or address too long');
    expect(() => decodeHeartbeat(bytes({ ...hb, models: [{ ...hb.models[0], name: 'm'.repeat(129) }] }))).toThrow('heartbeat: bad models');
    expect(() => decodeHeartbeat(bytes({ ...hb, models: [{ ...hb.models[0], provider: 'p'.repeat(65) }] }))).toThrow('heartbeat: bad models');
    expect(() => decodeHeartbeat(bytes({ ...hb, models: [{ ...hb.models[0], reason: 7 }] }))).toThrow('heartbeat: bad models');
    const reason = decodeHeartbeat(bytes({ ...hb, models: [{ ...hb.models[0], state: 'UNAVAILABLE', reason: 'r'.repeat(100_000) }] })).models[0]!.reason!;
    expect(reason).toBe(`${'r'.repeat(4096)}…`);
    expect(decodeHeartbeat(bytes({ ...hb, pod: 'p'.repeat(253) })).pod).toHaveLength(253);
    // As many versions as the bound, and one more.
    const versions = (n: number) => Array.from({ length: n }, (_, i) => ({ name: 'm', version: i, state: 'READY' }));
    expect(decodeHeartbeat(bytes({ ...hb, models: versions(16_384) })).models).toHaveLength(16_384);
    expect(() => decodeHeartbeat(bytes({ ...hb, models: versions(16_385) }))).toThrow('heartbeat: more than 16384 versions');
  });

  it('takes what placement reads from a heartbeat\'s versions: requests, idleness and requests in flight, each a count', () => {
    const hb = { schema: 1 as const, pod: 'p', address: '127.0.0.1:1', state: 'serving' as const, models: [{ name: 'm', version: 1, state: 'READY' as const, provider: 'cpu', memoryBytes: 9, requests: 40, idleMs: 1200, inflight: 2 }], inflight: 2, time: 't' };
    expect(decodeHeartbeat(encodeHeartbeat(hb))).toEqual(hb);
    for (const bad of [{ requests: -1 }, { idleMs: 1.5 }, { inflight: '2' }, { requests: 2 ** 60 }]) {
      expect(() => decodeHeartbeat(bytes({ ...hb, models: [{ ...hb.models[0], ...bad }] }))).toThrow('heartbeat: bad models');
    }
  });

  it('validates a router\'s placement demand, and bounds it', () => {
    const d = { schema: 1 as const, router: 'router-1', model: 'm', version: 2, waiting: 3 };
    expect(decodePlacementDemand(encodePlacementDemand(d))).toEqual(d);
    // Extra fields are not passed on.
    expect(decodePlacementDemand(bytes({ ...d, pods: ['x'] }))).toEqual(d);
    for (const bad of [{ version: 0 }, { version: -1 }, { model: '' }, { model: 'm'.repeat(129) }, { router: 'r'.repeat(254) }, { waiting: -1 }, { schema: 2 }]) {
      expect(() => decodePlacementDemand(bytes({ ...d, ...bad }))).toThrow(SchemaError);
    }
    expect(() => decodePlacementDemand(new Uint8Array(4097).fill(32))).toThrow('placement demand: too large');
    expect(() => decodePlacementDemand(new TextEncoder().encode('[1]'))).toThrow(SchemaError);
    expect(subjects.placementDemand).toBe('infermesh.placement.demand');
  });

  it('takes a heartbeat\'s shared identity, one SPIFFE path segment, and refuses any other', () => {
    const hb = { schema: 1 as const, pod: 'p', identity: 'inference', address: '127.0.0.1:1', state: 'serving' as const, models: [], inflight: 0, time: 't' };
    expect(decodeHeartbeat(encodeHeartbeat(hb)).identity).toBe('inference');
    for (const identity of ['', 'a/b', '..', '.', 'x'.repeat(254), 'ünïcode', 'a b', 3, null, ['inference']]) {
      expect(() => decodeHeartbeat(bytes({ ...hb, identity }))).toThrow('heartbeat: bad identity');
    }
  });
});
