// services/router/front-door.ts closedUnanswered: whose doing a pod's reset before its answer is,
// on real streams of real connections. ENHANCE_YOUR_CALM on a stream sent before the pod's SETTINGS
// (its door refusing a header list longer than it takes) is the request's; after them, the list
// was within the pod's limit, so the reset is the pod's, and a pod that resets every call is blamed.
import net from 'node:net';
import { H2Connection, H2_ENHANCE_YOUR_CALM, type Header } from '../../../../lib/h2/connection';
import { closedUnanswered, RequestRefused } from '../../../../services/router/front-door';
import { Closer, collect, connectOurs, QUIET, startH2Server } from '../../lib/h2/peers';

const closer = new Closer();
afterEach(() => closer.closeAll());

const base: Header[] = [[':method', 'POST'], [':scheme', 'http'], [':path', '/x'], [':authority', 'pod']];

it('takes ENHANCE_YOUR_CALM before the pod\'s SETTINGS as the request\'s doing, after them as the pod\'s', async () => {
  // A pod that takes 1 KiB header lists and resets every stream ENHANCE_YOUR_CALM.
  const { port, address } = await startH2Server(closer, (stream) => stream.reset(H2_ENHANCE_YOUR_CALM), { maxHeaderListBytes: 1024 });
  const early = new H2Connection(net.connect(port, '127.0.0.1'), 'client', undefined, QUIET);
  closer.add(early, (c) => c.destroy());
  const before = early.request([...base, ['x-pad', 'p'.repeat(2000)]], true);
  const beforeCode = (await collect(before)).code;
  expect(beforeCode).toBe(H2_ENHANCE_YOUR_CALM);
  expect(closedUnanswered(address, beforeCode, before)).toEqual(new RequestRefused(`pod ${address} refused the request's metadata as more than it takes`));

  const conn = await connectOurs(closer, port);
  const after = conn.request(base, true);
  const afterCode = (await collect(after)).code;
  expect(afterCode).toBe(H2_ENHANCE_YOUR_CALM);
  expect(closedUnanswered(address, afterCode, after)).toBe(`pod ${address} closed the call without an answer (HTTP/2 code 11)`);
});
