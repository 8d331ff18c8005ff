// What to do next when a call fails: one line after the error, chosen by the client's error code
// (InfermeshError.code) and, where one code covers several causes (ModelNotFound stands for every
// NOT_FOUND: a model, a version or a key), by its message.
import type { ErrorCode } from '../client/index';

/** What a hint may name: the command run and where it was sent. */
export interface HintContext {
  /** The CLI command: `push`, `infer`, `rollout`... */
  command: string;
  /** Its positional arguments (for `rollout`, the action first). */
  args: readonly string[];
  /** The registry's address (--registry). */
  registry: string;
  /** The router's address (--router). */
  router: string;
  /** Whether a token was sent (--token or INFERMESH_TOKEN). */
  token: boolean;
  /** The inference timeout in ms (--timeout). */
  timeoutMs?: number;
}

/** A failed call as hintFor reads it: InfermeshError's code and message. */
export interface FailedCall {
  code: ErrorCode;
  message: string;
}

/** The command whose calls go to the router; every other one talks to the registry. */
const ROUTER_COMMANDS = new Set(['infer']);

/** The commands whose first argument is a model. */
const MODEL_FIRST = new Set(['push', 'versions', 'update', 'archive', 'delete', 'infer']);

const quoted = (message: string, what: RegExp) => what.exec(message)?.[1];

/** A TLS handshake that failed: no call reached the service. */
const TLS_FAILED = /certificate|ssl|tls|self.signed|wrong version number|handshake/i;
/** A connection never made (refused, unresolved, unreachable): no call reached the service. */
const NOT_CONNECTED = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|No connection established|failed to connect/i;

/**
 * Whether a failed CreateKey may have made its key: its answer lost on the way back (a connection
 * dropped, a deadline, a reset stream) rather than the call refused before the registry acted.
 * Nothing retries a create (the client and grpc-js retry only a call that never reached the
 * handler), so such a key exists once, its token shown to no one.
 */
function mayHaveCreated(err: FailedCall): boolean {
  if (err.code === 'DeadlineExceeded' || err.code === 'Internal') return true;
  return err.code === 'Unavailable' && !TLS_FAILED.test(err.message) && !NOT_CONNECTED.test(err.message);
}

/** The one line saying what to do next about `err`, or undefined when there is nothing to add. */
export function hintFor(err: FailedCall, ctx: HintContext): string | undefined {
  const m = err.message;
  const model = quoted(m, /model '([^']+)'/) ?? (ctx.command === 'rollout' ? ctx.args[1] : MODEL_FIRST.has(ctx.command) ? ctx.args[0] : undefined);
  const viaRouter = ROUTER_COMMANDS.has(ctx.command);
  const [flag, address] = viaRouter ? ['--router', ctx.router] : ['--registry', ctx.registry];
  if (ctx.command === 'keys' && ctx.args[0] === 'create' && mayHaveCreated(err)) {
    return 'the registry may have made the key before its answer was lost, and no one has its token: `infermesh keys list` shows it (by name, creation time and creator); revoke it with `infermesh keys revoke <id>` before creating another';
  }
  switch (err.code) {
    case 'Unavailable':
    case 'NotReady':
      if (TLS_FAILED.test(m)) {
        return `the TLS connection failed: pass --ca FILE (or set INFERMESH_CA) with the mesh's CA; \`npm start -- --secure\` writes it to .infermesh/tls/ca.crt`;
      }
      if (NOT_CONNECTED.test(m) || /Connection dropped/i.test(m)) {
        return `is the mesh running? Start one with \`npm start\`, or pass ${flag} HOST:PORT (this tried ${address})`;
      }
      if (/no inference pod has model|has no version ready|failed this request/.test(m)) {
        return `\`infermesh models\` shows each version's state on the pods and why; a version just pushed takes a moment to load`;
      }
      return 'retry in a moment; if it persists, `infermesh models` shows what the pods report';
    case 'Unauthenticated':
      return ctx.token
        ? 'the token was refused (unknown, revoked or mistyped): check --token / INFERMESH_TOKEN, or ask an admin for a new key (`infermesh keys create`)'
        : 'this mesh needs a token: pass --token TOKEN or set INFERMESH_TOKEN (`npm start -- --secure` writes an admin token to .infermesh/admin.token)';
    case 'PermissionDenied': {
      const scope = quoted(m, /no '([a-z]+)' scope/) ?? 'the needed';
      const grant = scope === 'admin' || !model ? scope : `${scope}:${model}`;
      return `your token lacks the '${scope}' scope${model && scope !== 'admin' ? ` for '${model}'` : ''}: ask an admin for a key that has it (\`infermesh keys create --name NAME --grant ${grant}\`)`;
    }
    case 'ModelNotFound':
    case 'VersionNotFound':
    case 'KeyNotFound': {
      if (/API key/i.test(m)) return '`infermesh keys list` lists the keys and their ids';
      const version = /has no version/.exec(m);
      if (version && model) return `\`infermesh versions ${model}\` lists its versions`;
      return '`infermesh models` lists the models';
    }
    case 'InvalidArgument':
    case 'InvalidTensor':
      if (viaRouter && model) return `\`infermesh versions ${model}\` shows the inputs each version takes (name, datatype, shape)`;
      return undefined;
    case 'FailedPrecondition':
      if (/serving traffic/.test(m) && model) return `move its traffic first: \`infermesh rollout start ${model} <other version> --weight 100\`, then \`infermesh rollout promote ${model}\``;
      if (/in progress; promote or roll it back/.test(m) && model) return `\`infermesh rollout status ${model}\` shows it; end it with \`infermesh rollout promote ${model}\` or \`rollback\``;
      if (/no rollout in progress/.test(m) && model) return `start one with \`infermesh rollout start ${model} <version>\`; \`infermesh rollout status ${model}\` shows the last`;
      if (/serves no version yet/.test(m) && model) return `push a version first: \`infermesh push ${model} <file.onnx>\``;
      return model ? `\`infermesh rollout status ${model}\` and \`infermesh versions ${model}\` show where it stands` : undefined;
    case 'Conflict':
      return 'it changed meanwhile: run the command again';
    case 'AlreadyExists':
      return undefined;
    case 'Overloaded':
    case 'QueueFull':
      return 'the mesh is at its limits: retry in a moment, or with fewer requests at once';
    case 'DeadlineExceeded':
      return viaRouter ? `no answer within ${ctx.timeoutMs ?? 30_000} ms: pass a larger --timeout MS, or check \`infermesh models\`` : 'retry in a moment';
    case 'Internal':
    case 'ExecutionFailed':
      return 'the service logged why (`npm start` keeps its logs in .infermesh/logs)';
    default:
      return undefined;
  }
}
