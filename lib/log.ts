// Structured logs: one JSON object per line on stderr, with the service name and a level filter.
import { messageOf } from './errors';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Fields attached to a log line; an `err` field is expanded into message and stack. */
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

function expand(fields: LogFields): LogFields {
  const err = fields.err;
  if (err === undefined) return fields;
  const { err: _drop, ...rest } = fields;
  return { ...rest, error: messageOf(err), stack: err instanceof Error ? err.stack : undefined };
}

/** A logger writing JSON lines to `write` (default: stderr) at `level` and above (default info). */
export function createLogger(
  service: string,
  level: LogLevel = 'info',
  base: LogFields = {},
  write: (line: string) => void = (line) => process.stderr.write(line + '\n'),
): Logger {
  const min = rank[level];
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (rank[lvl] < min) return;
    const line = { time: new Date().toISOString(), level: lvl, service, msg, ...base, ...(fields ? expand(fields) : {}) };
    write(JSON.stringify(line, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(service, level, { ...base, ...fields }, write),
  };
}

/** A logger that drops everything (tests that build services in-process). */
export const silentLogger: Logger = createLogger('silent', 'error', {}, () => undefined);
