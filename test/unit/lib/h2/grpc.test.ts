import { atDeadline, deadlineOf, forwardedHeaders, grpcMessage, MessageFraming, relayedHeaders, timeoutHeader, timeoutProblem } from '../../../../lib/h2/grpc';

describe('lib/h2/grpc headers', () => {
  it('forwards metadata and trace context, not pseudo or hop-by-hop headers or the old deadline', () => {
    const out = forwardedHeaders([
      [':method', 'POST'], [':path', '/inference.GRPCInferenceService/ModelInfer'], [':authority', 'router:8001'], [':scheme', 'http'],
      ['content-type', 'application/grpc'], ['te', 'trailers'], ['user-agent', 'grpc-python/1.60'], ['grpc-timeout', '100m'],
      ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'], ['tracestate', 'vendor=1'], ['x-team', 'search'],
      ['grpc-accept-encoding', 'identity'],
    ]);
    expect(out).toEqual([
      ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'], ['tracestate', 'vendor=1'], ['x-team', 'search'],
      ['grpc-accept-encoding', 'identity'],
    ]);
  });

  it('relays response headers with :status 200 and nothing else pseudo', () => {
    expect(relayedHeaders([[':status', '200'], [':path', '/x'], ['content-type', 'application/grpc'], ['grpc-encoding', 'identity']])).toEqual([
      [':status', '200'], ['content-type', 'application/grpc'], ['grpc-encoding', 'identity'],
    ]);
  });

  it('reads grpc-timeout in every unit and refuses malformed ones', () => {
    const now = 1_000_000;
    expect(deadlineOf('2S', now)).toBe(now + 2_000);
    expect(deadlineOf('150m', now)).toBe(now + 150);
    expect(deadlineOf('1H', now)).toBe(now + 3_600_000);
    expect(deadlineOf('1M', now)).toBe(now + 60_000);
    expect(deadlineOf('5000u', now)).toBe(now + 5);
    expect(deadlineOf('7000000n', now)).toBe(now + 7);
    for (const bad of [undefined, '', 'm', '10', '10x', '-5m', '1.5S', '1234567890S', '1e3m', ' 5S', '+5S', '0x10m', '123456789m']) expect(deadlineOf(bad, now)).toBeUndefined();
    // Every malformed one (not an absent one) has a problem for the doors to answer.
    for (const bad of ['', 'm', '10', '10x', '-5m', '1.5S', '1e3m', ' 5S', '123456789m']) expect(timeoutProblem(bad)).toMatch(/^grpc-timeout ".*" is not a timeout/);
    for (const good of [undefined, '1n', '99999999H', '0S']) expect(timeoutProblem(good)).toBeUndefined();
  });

  it('recomputes the time left for the next hop, at least 1 ms', () => {
    expect(timeoutHeader(1_250, 1_000)).toBe('250m');
    expect(timeoutHeader(1_000.2, 1_000)).toBe('1m');
    expect(timeoutHeader(900, 1_000)).toBe('1m');
    // Past 8 digits of ms (about 27.7 hours), a coarser unit, rounded up: a receiver drops a longer one.
    expect(timeoutHeader(1_000 + 99_999_999, 1_000)).toBe('99999999m');
    expect(timeoutHeader(1_000 + 100_000_000, 1_000)).toBe('100000S');
    expect(timeoutHeader(1_000 + 2 ** 40, 1_000)).toMatch(/^\d{1,8}M$/);
    expect(deadlineOf(timeoutHeader(1_000 + 2 ** 40, 1_000), 1_000)).toBeGreaterThanOrEqual(1_000 + 2 ** 40);
  });
});

describe('grpcMessage', () => {
  it('percent-encodes only what the gRPC spec says, so clients read the message back as written', () => {
    expect(grpcMessage("tensor 'INPUT1': input is missing")).toBe("tensor 'INPUT1': input is missing");
    expect(grpcMessage('100% of 1/2')).toBe('100%25 of 1/2');
    expect(grpcMessage('línea\nnueva')).toBe('l%C3%ADnea%0Anueva');
    expect(decodeURIComponent(grpcMessage('línea\nnueva 100%'))).toBe('línea\nnueva 100%');
  });
});

describe('atDeadline', () => {
  it('fires at the deadline, and a deadline beyond what setTimeout holds does not fire at once', async () => {
    let fired = 0;
    const soon = atDeadline(Date.now() + 5, () => fired++);
    // 2^40 ms is past setTimeout's 2^31-1 limit, which would make a plain setTimeout fire at once.
    const far = atDeadline(Date.now() + 2 ** 40, () => fired += 100);
    await new Promise((r) => setTimeout(r, 50));
    clearTimeout(soon);
    clearTimeout(far);
    expect(fired).toBe(1);
  });
});

describe('MessageFraming', () => {
  const message = (n: number) => {
    const head = Buffer.alloc(5);
    head.writeUInt32BE(n, 1);
    return Buffer.concat([head, Buffer.alloc(n, 1)]);
  };
  /** What the framing says of `upload`, fed in pieces of `step` octets. */
  const fed = (upload: Buffer, step: number) => {
    const f = new MessageFraming();
    for (let off = 0; off < upload.length; off += step) f.feed(upload.subarray(off, off + step));
    return f.cutShort();
  };

  it('finds an upload ending between messages whole, however it was split', () => {
    const upload = Buffer.concat([message(3), message(0), message(300)]);
    for (const step of [1, 2, 4, 5, 7, upload.length]) expect(fed(upload, step)).toBeUndefined();
    expect(fed(Buffer.alloc(0), 1)).toBeUndefined();
  });

  it('says where a message was cut: inside its prefix, or so many bytes short of what it announced', () => {
    const upload = Buffer.concat([message(3), message(300)]);
    for (const step of [1, 3, 64]) {
      expect(fed(upload.subarray(0, 10), step)).toBe('the last request message was cut short: the stream ended 2 octets into its 5-octet prefix');
      expect(fed(upload.subarray(0, upload.length - 1), step)).toBe('the last request message was cut short: its prefix announced 300 bytes and the stream ended after 299');
    }
    // Every octet of the announced length counts, in order.
    const big = Buffer.from([0, 0x01, 0x02, 0x03, 0x04, 9]);
    expect(fed(big, 1)).toBe(`the last request message was cut short: its prefix announced ${0x01020304} bytes and the stream ended after 1`);
  });
});
