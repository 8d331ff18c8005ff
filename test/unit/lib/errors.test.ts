// The error family's messages (lib/errors.ts): what a refusal repeats of the caller's own input.
import { ClosedConnectionError, DrainingConnectionError, InvalidArgumentError, NoRespondersError, PermissionViolationError, RequestError, TimeoutError } from '@nats-io/transport-node';
import { jserrors, JetStreamStatusError } from '@nats-io/jetstream/internal';
import { ErrorCode, errors, MAX_STATUS_MESSAGE_CHARS, MeshError, statusMessage, toGrpcStatus } from '../../../lib/errors';
import { grpcMessage } from '../../../lib/h2/grpc';
import { silentLogger } from '../../../lib/log';

describe('permissionDenied', () => {
  it('names the scope and the model', () => {
    const err = errors.permissionDenied('infer', 'mnist');
    expect(err.code).toBe(ErrorCode.PermissionDenied);
    expect(toGrpcStatus(err, silentLogger)).toMatchObject({ code: 7, details: "the caller has no 'infer' scope for model 'mnist'" });
  });

  it('repeats at most 128 characters of a model name of any length (the caller chose it)', () => {
    const long = 'm'.repeat(1_000_000);
    const { message } = errors.permissionDenied('read', long);
    expect(message).toBe(`the caller has no 'read' scope for model '${'m'.repeat(128)}…'`);
  });
});

describe('status messages', () => {
  it('are cut to MAX_STATUS_MESSAGE_CHARS with an ellipsis, in every status sent', () => {
    const long = `tensor '${'x'.repeat(100_000)}': unknown input`;
    const cut = statusMessage(long);
    expect(cut).toBe(`${long.slice(0, MAX_STATUS_MESSAGE_CHARS - 1)}…`);
    expect(toGrpcStatus(new MeshError(ErrorCode.InvalidTensor, long), silentLogger).details).toBe(cut);
    expect(toGrpcStatus(Object.assign(new Error(long), { code: 3, details: long, metadata: undefined }), silentLogger).details).toBe(cut);
    // The router's own statuses go out percent-encoded, cut first.
    expect(grpcMessage(long)).toBe(cut.replace('…', '%E2%80%A6'));
    expect(statusMessage('short')).toBe('short');
  });

  it('are never cut inside a surrogate pair (a lone half cannot be encoded)', () => {
    const emoji = '\u{1F600}';
    const cut = statusMessage(`${'a'.repeat(MAX_STATUS_MESSAGE_CHARS - 2)}${emoji.repeat(10)}`);
    expect(cut.length).toBeLessThanOrEqual(MAX_STATUS_MESSAGE_CHARS);
    expect(Buffer.from(cut, 'utf8').toString('utf8')).toBe(cut);
    expect(cut.endsWith('…')).toBe(true);
  });
});

describe('NATS that cannot be reached', () => {
  // What nats.js throws when NATS does not answer (a registry's read of its bucket during an outage).
  it.each([
    ['a request or JetStream API call that timed out', new TimeoutError()],
    ['a request whose reply timed out', new RequestError('timeout', { cause: new TimeoutError() })],
    ['a request no one answers', new RequestError('no responders', { cause: new NoRespondersError('$JS.API.STREAM.INFO.KV_infermesh_registry') })],
    ['JetStream not answering its API', new jserrors.JetStreamNotEnabled('jetstream is not enabled', { cause: new NoRespondersError('$JS.API.INFO') })],
    ['a JetStream publish no server took', new JetStreamStatusError('no responders', 503)],
    ['a closed connection', new ClosedConnectionError()],
    ['a draining connection', new DrainingConnectionError()],
    ['a request cut by a disconnect', new RequestError('connection disconnected')],
  ])('is UNAVAILABLE, which clients retry, saying so: %s', (_what, err) => {
    expect(toGrpcStatus(err, silentLogger)).toEqual({ code: 14, details: expect.stringMatching(/^NATS is unreachable/) as unknown as string });
  });

  it('is told from other errors, which stay INTERNAL: a timeout not of NATS, a permission NATS refused', () => {
    expect(toGrpcStatus(new TimeoutError(), silentLogger).code).toBe(14);
    expect(toGrpcStatus(new DOMException('The operation was aborted due to timeout', 'TimeoutError'), silentLogger).code).toBe(13);
    expect(toGrpcStatus(new PermissionViolationError('Permissions Violation for Publish to "x"', 'publish', 'x'), silentLogger).code).toBe(13);
    expect(toGrpcStatus(new RequestError('Permissions Violation', { cause: new PermissionViolationError('Permissions Violation for Publish to "x"', 'publish', 'x') }), silentLogger).code).toBe(13);
  });
});

describe('a message larger than NATS takes', () => {
  // What nats.js throws for a publish or KV write past the server's max_payload (1 MiB by default).
  it('is RESOURCE_EXHAUSTED naming max_payload, not INTERNAL', () => {
    const tooLarge = InvalidArgumentError.format('payload', 'max_payload size exceeded');
    for (const err of [tooLarge, new Error('write failed', { cause: tooLarge })]) {
      expect(toGrpcStatus(err, silentLogger)).toEqual({ code: 8, details: expect.stringMatching(/max_payload, 1 MiB/) as unknown as string });
    }
    expect(toGrpcStatus(InvalidArgumentError.format('subject', 'is not valid'), silentLogger).code).toBe(13);
  });
});
