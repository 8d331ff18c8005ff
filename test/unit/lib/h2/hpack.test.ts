// HPACK: the decoder against published vectors (RFC 7541 appendix C) and against what a real
// encoder (nghttp2, inside node:http2) sends: Huffman, dynamic-table reuse and eviction, never-indexed
// fields, multi-byte integers, octets 0x80-0xff and header blocks split over CONTINUATION. Our encoder
// is read back by our decoder and by nghttp2.
import http2 from 'node:http2';
import net from 'node:net';
import { H2Connection, type Header } from '../../../../lib/h2/connection';
import { encodeHeaders, HpackDecoder, HpackError } from '../../../../lib/h2/hpack';
import { huffmanDecode, HuffmanError } from '../../../../lib/h2/huffman';
import { Closer, connectNode, HOST, nodeRequest, parseFrames, PREFACE, QUIET } from './peers';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** RFC 7541 appendix C: each group is decoded in order by one decoder (C.5 and C.6 with a 256-byte table). */
const RFC_VECTORS: { group: string; tableBytes: number; blocks: { hex: string; headers: Header[] }[] }[] = [
  {
    group: 'C.3 requests without Huffman',
    tableBytes: 4096,
    blocks: [
      { hex: '828684410f7777772e6578616d706c652e636f6d', headers: [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']] },
      { hex: '828684be58086e6f2d6361636865', headers: [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache']] },
      {
        hex: '828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565',
        headers: [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']],
      },
    ],
  },
  {
    group: 'C.4 requests with Huffman',
    tableBytes: 4096,
    blocks: [
      { hex: '828684418cf1e3c2e5f23a6ba0ab90f4ff', headers: [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']] },
      { hex: '828684be5886a8eb10649cbf', headers: [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache']] },
      {
        hex: '828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf',
        headers: [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']],
      },
    ],
  },
  {
    group: 'C.5 responses without Huffman, evicting',
    tableBytes: 256,
    blocks: [
      {
        hex: '4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d',
        headers: [[':status', '302'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com']],
      },
      { hex: '4803333037c1c0bf', headers: [[':status', '307'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com']] },
      {
        hex:
          '88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31',
        headers: [
          [':status', '200'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'], ['location', 'https://www.example.com'],
          ['content-encoding', 'gzip'], ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1'],
        ],
      },
    ],
  },
  {
    group: 'C.6 responses with Huffman, evicting',
    tableBytes: 256,
    blocks: [
      {
        hex: '488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3',
        headers: [[':status', '302'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com']],
      },
      { hex: '4883640effc1c0bf', headers: [[':status', '307'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com']] },
      {
        hex:
          '88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007',
        headers: [
          [':status', '200'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'], ['location', 'https://www.example.com'],
          ['content-encoding', 'gzip'], ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1'],
        ],
      },
    ],
  },
];

describe('HpackDecoder on RFC 7541 appendix C', () => {
  it.each(RFC_VECTORS)('$group', ({ tableBytes, blocks }) => {
    const decoder = new HpackDecoder(tableBytes);
    for (const b of blocks) expect(decoder.decode(hex(b.hex))).toEqual(b.headers);
  });

  it('C.5.2 evicted ":status 302": after it the oldest live entry is "location"', () => {
    const decoder = new HpackDecoder(256);
    decoder.decode(hex(RFC_VECTORS[2]!.blocks[0]!.hex));
    decoder.decode(hex(RFC_VECTORS[2]!.blocks[1]!.hex));
    // Table now: 62 :status 307, 63 location, 64 date, 65 cache-control; 66 would be :status 302.
    expect(decoder.decode(hex('be bf c0 c1'))).toEqual([[':status', '307'], ['location', 'https://www.example.com'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['cache-control', 'private']]);
    expect(() => decoder.decode(hex('c2'))).toThrow(HpackError);
  });

  it('C.2: literal without indexing, never indexed, and indexed fields', () => {
    const decoder = new HpackDecoder();
    expect(decoder.decode(hex('040c2f73616d706c652f70617468'))).toEqual([[':path', '/sample/path']]);
    expect(decoder.decode(hex('100870617373776f726406736563726574'))).toEqual([['password', 'secret']]);
    expect(decoder.decode(hex('82'))).toEqual([[':method', 'GET']]);
    // None of those three added an entry: the table is still empty.
    expect(() => decoder.decode(hex('be'))).toThrow(HpackError);
    expect(decoder.decode(hex('400a637573746f6d2d6b65790d637573746f6d2d686561646572'))).toEqual([['custom-key', 'custom-header']]);
    expect(decoder.decode(hex('be'))).toEqual([['custom-key', 'custom-header']]);
  });
});

describe('huffmanDecode', () => {
  it('decodes RFC 7541 strings', () => {
    const b = hex('f1e3c2e5f23a6ba0ab90f4ff');
    expect(huffmanDecode(b, 0, b.length)).toBe('www.example.com');
    const cookie = hex('94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007');
    expect(huffmanDecode(cookie, 0, cookie.length)).toBe('foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1');
    expect(huffmanDecode(Buffer.alloc(0), 0, 0)).toBe('');
  });

  it('refuses padding that is not a prefix of EOS, padding of 8 bits or more, and EOS itself', () => {
    // 'a' is 00011: 0x1f is 'a' padded with 111; 0x18 pads with zeros.
    expect(huffmanDecode(hex('1f'), 0, 1)).toBe('a');
    expect(() => huffmanDecode(hex('18'), 0, 1)).toThrow(HuffmanError);
    expect(() => huffmanDecode(hex('1fff'), 0, 2)).toThrow(HuffmanError);
    expect(() => huffmanDecode(hex('ff'), 0, 1)).toThrow(HuffmanError);
    // 30 one bits are EOS.
    expect(() => huffmanDecode(hex('ffffffff'), 0, 4)).toThrow(HuffmanError);
  });
});

describe('HpackDecoder Huffman strings seen before', () => {
  it('decodes each string right when many of one coded length alternate (the cache keeps a few per length)', () => {
    // One 5-bit symbol padded with 111: every value is one coded octet.
    const oneOctet: [number, string][] = [[0x07, '0'], [0x0f, '1'], [0x17, '2'], [0x1f, 'a'], [0x27, 'c'], [0x2f, 'e'], [0x37, 'i'], [0x3f, 'o'], [0x47, 's'], [0x4f, 't']];
    // Two 5-bit symbols padded with six ones: two coded octets, some sharing their first one.
    const twoOctets: [number[], string][] = [
      [[0x00, 0x3f], '00'], [[0x18, 0x3f], 'a0'], [[0x00, 0xff], '0a'], [[0x18, 0xff], 'aa'], [[0x09, 0x7f], '1e'], [[0x42, 0x7f], 'st'], [[0x3a, 0x7f], 'ot'],
    ];
    const decoder = new HpackDecoder();
    const field = (coded: number[]) => Buffer.from([0x00, 0x01, 0x78, 0x80 | coded.length, ...coded]); // literal, name 'x', Huffman value
    for (let round = 0; round < 3; round++) {
      for (const [octet, value] of round === 1 ? [...oneOctet].reverse() : oneOctet) {
        expect(decoder.decode(field([octet]))).toEqual([['x', value]]);
      }
    }
    // A block of all of them at once, and the same again.
    const all = Buffer.concat(oneOctet.map(([o]) => field([o])));
    expect(decoder.decode(all)).toEqual(oneOctet.map(([, v]) => ['x', v]));
    expect(decoder.decode(all)).toEqual(oneOctet.map(([, v]) => ['x', v]));
    for (let round = 0; round < 3; round++) {
      for (const [coded, value] of twoOctets) expect(decoder.decode(field(coded))).toEqual([['x', value]]);
      for (const [coded, value] of [...twoOctets].reverse()) expect(decoder.decode(field(coded))).toEqual([['x', value]]);
    }
    // A string that is not valid Huffman is refused every time, not remembered.
    expect(() => decoder.decode(field([0x18]))).toThrow(HpackError);
    expect(() => new HpackDecoder().decode(field([0x18]))).toThrow(HpackError);
  });
});

describe('HpackDecoder limits and malformed blocks', () => {
  it('applies table size updates: to 0 empties the table, above the advertised size is an error', () => {
    const decoder = new HpackDecoder(4096);
    decoder.decode(hex('400a637573746f6d2d6b65790d637573746f6d2d686561646572'));
    expect(decoder.decode(hex('be'))).toEqual([['custom-key', 'custom-header']]);
    // 0x20: size update to 0, then 0x3fe11f: back to 4096 (5-bit prefix, two continuation octets).
    expect(decoder.decode(hex('20 3fe11f 82'))).toEqual([[':method', 'GET']]);
    expect(() => decoder.decode(hex('be'))).toThrow(HpackError);
    expect(() => new HpackDecoder(4096).decode(hex('3fe21f'))).toThrow(/table size 4097/);
  });

  it('refuses a table size update after a header', () => {
    expect(() => new HpackDecoder().decode(hex('82 20'))).toThrow(HpackError);
  });

  it('evicts the oldest entries to fit a new one, and an entry larger than the table empties it', () => {
    // 'x-a' + 10 octets = 45 bytes with the 32 of overhead: two fit in 100, not three.
    const entry = (name: string, value: string) => Buffer.concat([Buffer.from([0x40, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
    const decoder = new HpackDecoder(100);
    decoder.decode(Buffer.concat([entry('x-a', '0123456789'), entry('x-b', '0123456789')]));
    expect(decoder.decode(hex('be bf'))).toEqual([['x-b', '0123456789'], ['x-a', '0123456789']]);
    decoder.decode(entry('x-c', '0123456789'));
    expect(decoder.decode(hex('be bf'))).toEqual([['x-c', '0123456789'], ['x-b', '0123456789']]);
    expect(() => decoder.decode(hex('c0'))).toThrow(HpackError);
    // 3 + 70 + 32 = 105 > 100: the header is still decoded, the table ends empty.
    const big = decoder.decode(entry('x-d', 'z'.repeat(70)));
    expect(big).toEqual([['x-d', 'z'.repeat(70)]]);
    expect(() => decoder.decode(hex('be'))).toThrow(HpackError);
  });

  it('refuses truncated integers and strings, indices out of range and oversized integers', () => {
    const bad: [string, RegExp][] = [
      ['ff', /truncated integer/], // indexed, 7-bit prefix full, no continuation
      ['ff80', /truncated integer/],
      ['40', /truncated string/], // literal with a new name, no name
      ['4005616263', /truncated string/], // name of 5 octets, 3 present
      ['400178', /truncated string/], // name, no value
      ['40017885ff', /truncated string/], // Huffman value of 5 octets, 1 present
      ['80', /index 0/],
      ['be', /index 62/],
      ['ffffffffffff7f', /integer too large/],
      ['400178811800', /padding/], // Huffman value 'a' padded with zeros
    ];
    for (const [block, why] of bad) expect(() => new HpackDecoder().decode(hex(block))).toThrow(why);
    for (const [block] of bad) expect(() => new HpackDecoder().decode(hex(block))).toThrow(HpackError);
  });

  it('marks a header list over its limit, counted as names, values and 32 bytes per header, and keeps no more of it', () => {
    const headers: Header[] = [['x-a', 'v'.repeat(30)], ['x-b', 'v'.repeat(30)]];
    // 2 * (3 + 30 + 32) = 130 bytes.
    const fits = new HpackDecoder(4096, 130);
    expect(fits.decode(encodeHeaders(headers))).toEqual(headers);
    expect(fits.listTooLarge).toBe(false);
    const over = new HpackDecoder(4096, 129);
    expect(over.decode(encodeHeaders(headers))).toEqual([headers[0]]);
    expect(over.listTooLarge).toBe(true);
  });

  it('decodes a block over its limit to the end, so the dynamic table stays in step (an HPACK bomb costs lookups, not its size)', () => {
    const d = new HpackDecoder(4096, 1_000);
    // A 3,000-octet entry enters the table (index 62) with the first block, already over the limit.
    const literal = (name: string, value: string) => Buffer.concat([Buffer.from([0x40, name.length]), Buffer.from(name, 'latin1'), intWith7BitPrefix(value.length), Buffer.from(value, 'latin1')]);
    expect(d.decode(literal('x-amp', 'a'.repeat(3_000)))).toEqual([]);
    expect(d.listTooLarge).toBe(true);
    // Then a bomb: the entry named 15 times in 15 octets, and literals without indexing after it.
    const bomb = Buffer.concat([Buffer.alloc(15, 0x80 | 62), Buffer.from([0x00, 0x03]), Buffer.from('x-b'), Buffer.from([0x01]), Buffer.from('v')]);
    expect(d.decode(bomb)).toEqual([]);
    expect(d.listTooLarge).toBe(true);
    // The table is as the peer has it: a new entry (62) pushes x-amp to 63, which is over the limit again.
    expect(d.decode(Buffer.concat([literal('x-next', 'n'), Buffer.from([0x80 | 63])]))).toEqual([['x-next', 'n']]);
    expect(d.listTooLarge).toBe(true);
    expect(d.decode(Buffer.from([0x80 | 62]))).toEqual([['x-next', 'n']]);
    expect(d.listTooLarge).toBe(false);
    // A literal skipped past the limit is still checked for its length.
    expect(() => d.decode(Buffer.concat([Buffer.alloc(1, 0x80 | 63), Buffer.from([0x80 | 63]), Buffer.from([0x00, 0x7f, 0x7f])]))).toThrow(HpackError);
  });
});

/** An HPACK string length with a 7-bit prefix (no Huffman). */
function intWith7BitPrefix(n: number): Buffer {
  if (n < 127) return Buffer.from([n]);
  const out = [127];
  let rest = n - 127;
  while (rest >= 128) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

describe('encodeHeaders', () => {
  it('round-trips through HpackDecoder: static matches, static names, new names, long and latin1 values', () => {
    const latin1 = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join('');
    const headers: Header[] = [
      [':method', 'POST'], [':scheme', 'http'], [':path', '/inference.GRPCInferenceService/ModelInfer'], [':authority', 'router:8001'],
      [':status', '200'], ['accept-encoding', 'gzip, deflate'], ['content-type', 'application/grpc'], ['te', 'trailers'],
      ['x-empty', ''], ['x-127', 'a'.repeat(127)], ['x-128', 'b'.repeat(128)], ['x-long', 'c'.repeat(70_000 - 100)],
      ['n'.repeat(200), 'name longer than 127'], ['x-latin1', latin1], ['x-repeat', '1'], ['x-repeat', '2'],
    ];
    const block = encodeHeaders(headers);
    expect(new HpackDecoder(4096, 1 << 20).decode(block)).toEqual(headers);
    // The same list again (now from the encoder's cache) decodes the same.
    expect(new HpackDecoder(4096, 1 << 20).decode(encodeHeaders(headers))).toEqual(headers);
  });

  it('sends an exact static match as one octet and a static name as a 4-bit-prefix literal, never indexing', () => {
    expect(encodeHeaders([[':method', 'GET']])).toEqual(hex('82'));
    expect(encodeHeaders([[':status', '200'], ['accept-encoding', 'gzip, deflate']])).toEqual(hex('88 90'));
    // :path (index 4) with another value: literal without indexing, name index 4.
    expect(encodeHeaders([[':path', '/a']])).toEqual(hex('04 02 2f61'));
    // www-authenticate is index 61: 4-bit prefix 15 then 46.
    expect(encodeHeaders([['www-authenticate', 'x']])).toEqual(hex('0f2e 01 78'));
    expect(encodeHeaders([['x-a', 'b']])).toEqual(hex('00 03 782d61 01 62'));
  });

  it('leaves `reserve` octets in front for a frame header', () => {
    const block = encodeHeaders([[':status', '200'], ['grpc-status', '0']], 9);
    expect(new HpackDecoder().decode(block.subarray(9))).toEqual([[':status', '200'], ['grpc-status', '0']]);
  });

  it('stays correct after its cache of encoded fields fills and is cleared', () => {
    const decoder = new HpackDecoder();
    for (let i = 0; i < 2_500; i++) {
      const headers: Header[] = [['grpc-status', '0'], ['x-trace', `t-${i}`], [':status', '200'], ['x-trace', `u-${i}`]];
      expect(decoder.decode(encodeHeaders(headers))).toEqual(headers);
    }
  });
});

/** Every octet a header value may carry (node:http2 refuses controls other than tab, and DEL). */
const VALUE_OCTETS = [9, ...Array.from({ length: 0x7f - 0x20 }, (_, i) => 0x20 + i), ...Array.from({ length: 0x80 }, (_, i) => 0x80 + i)];

describe('HpackDecoder against nghttp2 (node:http2 client)', () => {
  const closer = new Closer();
  afterEach(() => closer.closeAll());

  it('decodes what nghttp2 sends over a connection: Huffman, dynamic table, eviction, CONTINUATION; nghttp2 reads our answers', async () => {
    const received: Header[][] = [];
    const clientBytes: Buffer[] = [];
    const raw = net.createServer((socket) => {
      const conn = new H2Connection(
        socket,
        'server',
        (stream, headers) => {
          received.push(headers);
          // The answer echoes the request's own headers: nghttp2 then decodes our encoding of them.
          stream.sendHeaders([[':status', '200'], ...headers.filter((h) => !h[0].startsWith(':') && h[0] !== 'te')]);
          stream.end([['grpc-status', '0']]);
        },
        // Over 16 KiB of headers below: more than a door takes by default (INFERMESH_H2_MAX_HEADER_LIST_BYTES).
        { ...QUIET, maxHeaderListBytes: 64 << 10, maxHeaderBlockBytes: 64 << 10 },
      );
      socket.on('data', (d: Buffer) => clientBytes.push(d));
      closer.add(conn, (c) => c.destroy());
    });
    closer.add(raw, (s) => new Promise((r) => s.close(r)));
    await new Promise<void>((r) => raw.listen(0, HOST, r));
    const session = await connectNode(closer, (raw.address() as net.AddressInfo).port);

    const common: http2.OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': '/inference.GRPCInferenceService/ModelInfer',
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'grpc-node-js/1.14.7',
      'accept-encoding': 'gzip, deflate',
      'x-team': 'search-ranking',
      'x-multi': ['one', 'two', 'three'],
      'x-huffman-friendly': 'the quick brown fox jumps over the lazy dog '.repeat(7).trim(),
      'x-latin1': 'caf\u00e9 \u00ff\u0080\u00a0 na\u00efve',
      authorization: 'Bearer 0123456789abcdef',
      [http2.sensitiveHeaders]: ['authorization'],
    };
    // Each octet between runs of 'e' (5 bits): nghttp2 Huffman-codes the value, octet included.
    const octetHeaders = (from: number, to: number): http2.OutgoingHttpHeaders =>
      Object.fromEntries(VALUE_OCTETS.slice(from, to).map((o) => [`x-o${o}`, `${'e'.repeat(30)}${String.fromCharCode(o)}eeee`]));
    const requests: http2.OutgoingHttpHeaders[] = [
      common,
      common, // the same again: mostly indices into the dynamic table
      { ...common, 'x-request': '3', ...octetHeaders(0, 60) },
      { ...common, 'x-request': '4', ...octetHeaders(60, 120) },
      { ...common, 'x-request': '5', ...octetHeaders(120, VALUE_OCTETS.length) },
      // Over 16 KiB of headers (octets Huffman would lengthen, so sent raw): HEADERS and CONTINUATION
      // frames; every entry evicts older ones.
      { ...common, ...Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`x-big-${i}`, String.fromCharCode(0xc0 + i).repeat(1_500)])) },
      common, // after the eviction: the table must agree with nghttp2's again
      // Lengths at the 7-bit prefix boundary: 126, 127, 128 octets, and a 140-octet name.
      { ':path': '/', 'x-len-126': 'Q'.repeat(126), 'x-len-127': 'Q'.repeat(127), 'x-len-128': 'Q'.repeat(128), [`x-${'n'.repeat(138)}`]: 'long name' },
    ];

    for (const request of requests) {
      const res = await nodeRequest(session, request, request[':method'] === 'POST' ? Buffer.from('body') : undefined);
      const got = received[received.length - 1]!;
      const expected = expectedRegular(request);
      expect(got.filter((h) => !h[0].startsWith(':'))).toEqual(expected);
      expect(Object.fromEntries(got.filter((h) => h[0].startsWith(':')))).toEqual({
        ':method': request[':method'] ?? 'GET',
        ':path': request[':path'],
        ':scheme': 'http',
        ':authority': `${HOST}:${(raw.address() as net.AddressInfo).port}`,
      });
      // nghttp2 decoded our echo of the same headers, in the same order, octets included.
      expect(res.headers[':status']).toBe(200);
      expect(res.raw.filter((h) => h[0] !== ':status' && h[0] !== 'date')).toEqual(expected.filter((h) => h[0] !== 'te'));
      expect(res.trailers?.['grpc-status']).toBe('0');
    }
    expect(received).toHaveLength(requests.length);

    // What went over the wire really used Huffman, the dynamic table and CONTINUATION.
    const frames = parseFrames(Buffer.concat(clientBytes).subarray(PREFACE.length));
    const blocks = new Map<number, number>();
    for (const f of frames) if (f.type === 0x1 || f.type === 0x9) blocks.set(f.streamId, (blocks.get(f.streamId) ?? 0) + f.payload.length);
    const sizes = [...blocks.values()];
    const rawSize = (h: Header[]) => h.reduce((n, [k, v]) => n + k.length + v.length, 0);
    expect(sizes[1]!).toBeLessThan(sizes[0]! / 4); // request 2 repeats request 1 by index
    expect(sizes[0]!).toBeLessThan(rawSize(received[0]!) * 0.8); // Huffman
    expect(sizes[2]!).toBeLessThan(rawSize(received[2]!) * 0.8);
    expect(frames.some((f) => f.type === 0x9)).toBe(true);
    expect(sizes[5]!).toBeGreaterThan(16_384);
  });
});

/** The regular headers node:http2 sends for `request`, in order, arrays as repeated fields. */
function expectedRegular(request: http2.OutgoingHttpHeaders): Header[] {
  const out: Header[] = [];
  for (const [name, value] of Object.entries(request)) {
    if (name.startsWith(':') || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) out.push([name, String(v)]);
  }
  return out;
}
