// Text that one caller stores and others read: names, labels, descriptions, reasons. It reaches
// terminals (the CLI), logs and the console, so a character a terminal acts on instead of showing
// (ESC and the other C0 controls, DEL, the C1 controls such as U+009B, a one-character CSI) or one
// that reorders what is shown (bidirectional overrides and isolates: "Trojan Source") would let a
// tenant drive or spoof an admin's screen. The registry refuses such text with checkText; the CLI
// shows whatever reaches it through escapeControls, so text stored before the check, a pod's
// reasons and a server's errors cannot reach a terminal raw either. Both read the classes below.
import { errors } from './errors';

/**
 * What a stored text is. 'name': an identifier (key names, label keys and values, tensor and
 * warm-up sample names): printable characters only, no control, format (zero-width, bidi) or
 * line-separator character. 'text': free text for people (descriptions, rollout reasons): line
 * breaks and tabs allowed, no other control character nor bidirectional override or isolate.
 */
export type TextKind = 'name' | 'text';

/** Bidirectional embeddings, overrides (U+202A-U+202E) and isolates (U+2066-U+2069). */
const BIDI = '\\u202a-\\u202e\\u2066-\\u2069';
/** What an identifier may not hold: every control (Cc), format (Cf) and line/paragraph separator. */
const NAME_REFUSED = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
/** What free text may not hold: C0 but tab and line feed, DEL, C1, bidi controls. */
// eslint-disable-next-line no-control-regex
const TEXT_REFUSED = new RegExp(`[\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f${BIDI}]`, 'u');
/** What a terminal must never be sent raw: every C0 (tab and line feed too: they break a row), DEL, C1, bidi controls. */
// eslint-disable-next-line no-control-regex
const SHOWN_ESCAPED = new RegExp(`[\\u0000-\\u001f\\u007f-\\u009f${BIDI}]`, 'gu');
/** What JSON.stringify leaves raw of SHOWN_ESCAPED (it escapes C0 in strings; its own line breaks are layout). */
const JSON_RAW = new RegExp(`[\\u007f-\\u009f${BIDI}]`, 'gu');

const hex = (cp: number, digits: number) => cp.toString(16).padStart(digits, '0');

/** How a refused character is named: `a control character (U+001B)`. */
function describe(ch: string): string {
  const cp = ch.codePointAt(0)!;
  const code = `U+${hex(cp, 4).toUpperCase()}`;
  if (/\p{Cc}/u.test(ch)) return `a control character (${code})`;
  if (new RegExp(`[${BIDI}]`, 'u').test(ch)) return `a bidirectional override (${code})`;
  if (/\p{Cf}/u.test(ch)) return `an invisible format character (${code})`;
  return `a line separator (${code})`;
}

/** What `text` holds that a `kind` of text may not, in words (`a control character (U+001B) at character 2`); undefined when nothing. */
export function textProblem(text: string, kind: TextKind): string | undefined {
  const m = (kind === 'name' ? NAME_REFUSED : TEXT_REFUSED).exec(text);
  return m ? `${describe(m[0])} at character ${[...text.slice(0, m.index)].length + 1}` : undefined;
}

/**
 * INVALID_ARGUMENT naming `field` (e.g. `label 'team'`) and the first character `text` may not hold
 * as a `kind` (see TextKind), before anything is stored.
 */
export function checkText(field: string, text: string, kind: TextKind): void {
  const problem = textProblem(text, kind);
  if (problem === undefined) return;
  const rule = kind === 'name'
    ? 'names and labels take printable characters only (no control, invisible format or bidirectional characters)'
    : 'free text may hold line breaks and tabs, but no other control character and no bidirectional override';
  throw errors.invalidArgument(`${field} holds ${problem}: ${rule}`);
}

/**
 * `text` as a terminal may show it: every C0 control (tab and line feed too), DEL, C1 control and
 * bidirectional control as a visible escape (`\x1b`, `\x9b`, `\u202e`); everything else unchanged.
 */
export function escapeControls(text: string): string {
  return text.replace(SHOWN_ESCAPED, (ch) => {
    const cp = ch.codePointAt(0)!;
    return cp <= 0xff ? `\\x${hex(cp, 2)}` : `\\u${hex(cp, 4)}`;
  });
}

/**
 * `value` as JSON (JSON.stringify's `indent`) with every character escapeControls escapes written as
 * a JSON escape: JSON.stringify leaves DEL, C1 and bidi controls raw. The same JSON value, safe to print.
 */
export function jsonForTerminal(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(JSON_RAW, (ch) => `\\u${hex(ch.codePointAt(0)!, 4)}`);
}
