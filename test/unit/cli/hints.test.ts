// What to do next after a failed call (cli/hints.ts): one hint per client error code, and where one
// code has several causes, per the message the services send (the messages here are theirs).
import type { ErrorCode } from '../../../client/index';
import { hintFor, type HintContext } from '../../../cli/hints';

const ctx = (command: string, args: string[] = [], over: Partial<HintContext> = {}): HintContext => ({
  command, args, registry: '127.0.0.1:8003', router: '127.0.0.1:8001', token: false, timeoutMs: 30_000, ...over,
});

describe('hintFor', () => {
  it.each<[string, ErrorCode, string, HintContext, string | RegExp | undefined]>([
    ['a registry that is not there', 'Unavailable', 'No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:8003. Resolution note: ', ctx('models'),
      'is the mesh running? Start one with `npm start`, or pass --registry HOST:PORT (this tried 127.0.0.1:8003)'],
    ['a router that is not there', 'Unavailable', 'No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:8001', ctx('infer', ['mnist']),
      'is the mesh running? Start one with `npm start`, or pass --router HOST:PORT (this tried 127.0.0.1:8001)'],
    ['a host that does not resolve', 'Unavailable', 'Name resolution failed for target dns:nowhere.invalid:8003: getaddrinfo ENOTFOUND', ctx('versions', ['m']), /^is the mesh running\?.*--registry HOST:PORT/],
    ['a TLS failure', 'Unavailable', 'No connection established. Last error: Error: self-signed certificate in certificate chain', ctx('models'), /^the TLS connection failed: pass --ca FILE/],
    ['no pod ready', 'Unavailable', "no inference pod has model 'mnist' ready", ctx('infer', ['mnist']), /^`infermesh models` shows each version's state on the pods and why/],
    ['a key create whose answer was lost', 'Unavailable', 'Connection dropped', ctx('keys', ['create'], { token: true }),
      'the registry may have made the key before its answer was lost, and no one has its token: `infermesh keys list` shows it (by name, creation time and creator); revoke it with `infermesh keys revoke <id>` before creating another'],
    ['a key create past its deadline', 'DeadlineExceeded', 'Deadline exceeded', ctx('keys', ['create'], { token: true }), /^the registry may have made the key/],
    ['a key create that never reached the registry', 'Unavailable', 'No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:8003', ctx('keys', ['create']), /^is the mesh running\?/],
    ['a key create refused', 'InvalidArgument', 'key name must be 1-128 printable characters', ctx('keys', ['create']), undefined],
    ['no token', 'Unauthenticated', 'missing credentials: send the header authorization: Bearer <token>', ctx('keys', ['list']),
      'this mesh needs a token: pass --token TOKEN or set INFERMESH_TOKEN (`npm start -- --secure` writes an admin token to .infermesh/admin.token)'],
    ['a refused token', 'Unauthenticated', 'unknown API key 0123456789abcdef', ctx('models', [], { token: true }), /^the token was refused .*check --token \/ INFERMESH_TOKEN/],
    ['a missing scope for a model', 'PermissionDenied', "the caller has no 'push' scope for model 'mnist'", ctx('push', ['mnist', 'm.onnx'], { token: true }),
      "your token lacks the 'push' scope for 'mnist': ask an admin for a key that has it (`infermesh keys create --name NAME --grant push:mnist`)"],
    ['a missing admin scope', 'PermissionDenied', "the caller has no 'admin' scope for model ''", ctx('keys', ['list'], { token: true }),
      "your token lacks the 'admin' scope: ask an admin for a key that has it (`infermesh keys create --name NAME --grant admin`)"],
    ['an unknown model', 'ModelNotFound', "model 'nosuch' not found", ctx('versions', ['nosuch']), '`infermesh models` lists the models'],
    ['an unknown version', 'ModelNotFound', "model 'mnist' has no version 9", ctx('archive', ['mnist', '9']), '`infermesh versions mnist` lists its versions'],
    ['an unknown key', 'ModelNotFound', "API key 'ffff' not found", ctx('keys', ['revoke', 'ffff']), '`infermesh keys list` lists the keys and their ids'],
    ['a bad tensor', 'InvalidArgument', "tensor 'INPUT0': unknown input; the model's inputs are input", ctx('infer', ['mnist']),
      '`infermesh versions mnist` shows the inputs each version takes (name, datatype, shape)'],
    ['a bad push', 'InvalidArgument', 'artifact is not an ONNX model', ctx('push', ['m', 'f']), undefined],
    ['a version serving traffic', 'FailedPrecondition', "model 'mnist' version 1 is serving traffic (v1 100%); move its traffic to another version first", ctx('delete', ['mnist', '1']),
      'move its traffic first: `infermesh rollout start mnist <other version> --weight 100`, then `infermesh rollout promote mnist`'],
    ['a rollout in the way', 'FailedPrecondition', "model 'mnist' already has a rollout of version 2 in progress; promote or roll it back first", ctx('rollout', ['start', 'mnist', '3']),
      '`infermesh rollout status mnist` shows it; end it with `infermesh rollout promote mnist` or `rollback`'],
    ['no rollout', 'FailedPrecondition', "model 'mnist' has no rollout in progress", ctx('rollout', ['promote', 'mnist']), /^start one with `infermesh rollout start mnist <version>`/],
    ['a concurrent change', 'Conflict', 'model mnist changed (revision 4, expected 3)', ctx('update', ['mnist']), 'it changed meanwhile: run the command again'],
    ['a full queue', 'Overloaded', 'queue full', ctx('infer', ['mnist']), /^the mesh is at its limits/],
    ['a slow inference', 'DeadlineExceeded', 'Deadline exceeded', ctx('infer', ['mnist'], { timeoutMs: 500 }), 'no answer within 500 ms: pass a larger --timeout MS, or check `infermesh models`'],
    ['an internal error', 'Internal', 'internal error', ctx('models'), /logs in \.infermesh\/logs/],
    ['a cancelled call', 'Cancelled', 'Cancelled on client', ctx('events'), undefined],
  ])('%s', (_, code, message, context, expected) => {
    const hint = hintFor({ code, message }, context);
    if (expected instanceof RegExp) expect(hint).toMatch(expected);
    else expect(hint).toBe(expected);
  });

  it('names the model from the arguments when the message does not', () => {
    expect(hintFor({ code: 'PermissionDenied', message: "the caller has no 'rollout' scope" }, ctx('rollout', ['promote', 'digits'], { token: true })))
      .toBe("your token lacks the 'rollout' scope for 'digits': ask an admin for a key that has it (`infermesh keys create --name NAME --grant rollout:digits`)");
    // `keys list` names no model: its first argument is the action.
    expect(hintFor({ code: 'PermissionDenied', message: "the caller has no 'read' scope" }, ctx('keys', ['list'], { token: true })))
      .toBe("your token lacks the 'read' scope: ask an admin for a key that has it (`infermesh keys create --name NAME --grant read`)");
  });
});
