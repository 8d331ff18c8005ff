// The error family's messages (lib/errors.ts): what a refusal repeats of the caller's own input.
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
