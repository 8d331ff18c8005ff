// The error family's messages (lib/errors.ts): what a refusal repeats of the caller's own input.
import { ErrorCode, errors, toGrpcStatus } from '../../../lib/errors';
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
