// Listing a KV bucket's keys (lib/nats.ts kvKeys) against a real nats-server: the keys under a
// filter and none outside it, keys with encoded names, and a listing that ends while another client
// rewrites a listed key every millisecond or so (the client's own kv.keys() does not end then).
import { Kvm, type KV } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { kvKeys } from '../../lib/nats';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';

describe('kvKeys', () => {
  let server: NatsServerProcess & { cleanup(): Promise<void> };
  let nc: NatsConnection;
  let kv: KV;

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connect({ servers: server.url });
    kv = await new Kvm(nc).create('kvkeys', { history: 1 });
  });

  afterAll(async () => {
    await nc?.drain();
    await server?.cleanup();
  });

  it('lists the keys under a filter, and none outside it', async () => {
    await kv.put('models.a', '1');
    await kv.put('models.b=2E5', '1');
    await kv.put('versions.a.1', '1');
    await kv.put('versions.a.2', '1');
    await kv.put('versions.b.1', '1');
    expect((await kvKeys(kv, 'models.*')).sort()).toEqual(['models.a', 'models.b=2E5']);
    expect((await kvKeys(kv, 'versions.a.*')).sort()).toEqual(['versions.a.1', 'versions.a.2']);
    expect((await kvKeys(kv, 'versions.>')).sort()).toEqual(['versions.a.1', 'versions.a.2', 'versions.b.1']);
    expect(await kvKeys(kv, 'nothing.*')).toEqual([]);
    expect((await kvKeys(kv)).length).toBe(5);
  });

  it('may list a deleted key, which then reads as missing', async () => {
    await kv.put('models.gone', '1');
    await kv.delete('models.gone');
    const listed = await kvKeys(kv, 'models.*');
    expect(listed).toEqual(expect.arrayContaining(['models.a', 'models.b=2E5']));
    for (const k of listed.filter((x) => !['models.a', 'models.b=2E5'].includes(x))) {
      expect(k).toBe('models.gone');
      const e = await kv.get(k);
      expect(e === null || e.operation !== 'PUT').toBe(true);
    }
  });

  it('ends while another client rewrites a listed key every millisecond or so', async () => {
    const writer = await connect({ servers: server.url });
    const wkv = await new Kvm(writer).open('kvkeys');
    let writing = true;
    let writes = 0;
    const rewrites = (async () => {
      while (writing) {
        await wkv.put('models.a', JSON.stringify({ n: writes++, pad: 'x'.repeat(500) }));
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
    try {
      for (let i = 0; i < 200; i++) expect((await kvKeys(kv, 'models.*'))).toEqual(expect.arrayContaining(['models.a', 'models.b=2E5']));
      expect(writes).toBeGreaterThan(10);
    } finally {
      writing = false;
      await rewrites;
      await writer.drain();
    }
  });
});
