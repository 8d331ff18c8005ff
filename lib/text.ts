// Text that one caller stores and others read: names, labels, descriptions, reasons. It reaches
// terminals (the CLI), logs and the console, so a character a terminal acts on instead of showing
// (ESC and the other C0 controls, DEL, the C1 controls such as U+009B, a one-character CSI) or one
// that reorders what is shown (bidirectional overrides and isolates: "Trojan Source") would let a
// tenant drive or spoof an admin's screen. A name must also show all it holds: an invisible
// character (a zero-width space, a word joiner) would make two different names look the same. Yet
// names are written in every script, so what joins letters or emoji is taken (NAME_REFUSED). The
// registry refuses such text with checkText; the CLI shows whatever reaches it through
// escapeControls, so text stored before the check, a pod's reasons and a server's errors cannot
// reach a terminal raw either. Both read the classes below.
import { errors } from './errors';

/**
 * What a stored text is. 'name': an identifier (key names, label keys and values, tensor and
 * warm-up sample names): no control, bidirectional, invisible or line-separator character, so two
 * names that look alike are alike. 'text': free text for people (descriptions, rollout reasons):
 * line breaks and tabs allowed, no other control character nor bidirectional embedding, override
 * or isolate.
 */
export type TextKind = 'name' | 'text';

/**
 * Bidirectional embeddings, overrides (U+202A-U+202E) and isolates (U+2066-U+2069): each turns the
 * order of everything after it, up to its end or the paragraph's, which is how "Trojan Source"
 * shows one thing and stores another. Refused in every text and escaped on every terminal.
 */
const BIDI = '\\u202a-\\u202e\\u2066-\\u2069';
/**
 * The bidirectional marks (U+061C ALM, U+200E LRM, U+200F RLM) are not among them: each acts as an
 * invisible letter of its direction, so it can move nothing that an Arabic, Hebrew or Latin letter
 * in its place could not, and right-to-left prose needs them to place digits and punctuation. Free
 * text takes them and the CLI shows them as they are; a name refuses them as the invisible
 * characters they are (below): 'team' and 'team' + LRM would look the same.
 */
const BIDI_MARKS = '\\u061c\\u200e\\u200f';
/**
 * What a name may not hold: every control (Cc), line or paragraph separator, the interlinear
 * annotation characters (U+FFF9-U+FFFB: they set text apart to be shown out of line or not at all),
 * and every character Unicode makes invisible by default (Default_Ignorable_Code_Point: ZWSP, WJ,
 * BOM, the invisible operators, soft hyphen, Hangul fillers, the bidi controls and marks...) but
 * those that change how the visible characters around them are drawn: ZWNJ and ZWJ (Persian and
 * Indic words, emoji sequences such as the technologist), the variation selectors (an emoji's or
 * an ideograph's form) and the Mongolian ones. Tag characters (U+E0000-U+E007F) are taken only in
 * a subdivision flag (the first group: WAVING BLACK FLAG, a subdivision id in tag letters and
 * digits, CANCEL TAG: the base of every tag sequence Unicode recommends): anywhere else they show
 * nothing, and a digit or other emoji before them would hide them. Other format characters (Arabic
 * number signs, Egyptian hieroglyph format controls) are drawn and taken.
 */
const NAME_REFUSED = /(\u{1f3f4}[\u{e0030}-\u{e0039}\u{e0061}-\u{e007a}]{3,7}\u{e007f})|[\p{Cc}\p{Zl}\p{Zp}\ufff9-\ufffb]|(?![\u200c\u200d\ufe00-\ufe0f\u{e0100}-\u{e01ef}\u180b-\u180d\u180f])\p{Default_Ignorable_Code_Point}/gu;
/** What free text may not hold: C0 but tab and line feed, DEL, C1, bidi controls. */
// eslint-disable-next-line no-control-regex
const TEXT_REFUSED = new RegExp(`[\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f${BIDI}]`, 'u');
/**
 * What a terminal must never be sent raw: every C0 (tab and line feed too: they break a row), DEL,
 * C1, bidi controls. Invisible characters are shown as they are: they act on nothing, free text
 * holds them by right (ZWSP breaks Thai and Khmer words), and names refuse them at the registry.
 */
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
  if (new RegExp(`[${BIDI_MARKS}]`, 'u').test(ch)) return `an invisible bidirectional mark (${code})`;
  if (/[\p{Zl}\p{Zp}]/u.test(ch)) return `a line separator (${code})`;
  if (cp >= 0xe0000 && cp <= 0xe007f) return `a tag character outside an emoji flag (${code})`;
  if (cp >= 0xfff9 && cp <= 0xfffb) return `an interlinear annotation character (${code})`;
  return `an invisible character (${code})`;
}

/** The match of the first character of `text` a name may not hold (emoji flags are passed over). */
function nameRefused(text: string): RegExpExecArray | null {
  NAME_REFUSED.lastIndex = 0;
  for (let m = NAME_REFUSED.exec(text); m; m = NAME_REFUSED.exec(text)) {
    if (m[1] === undefined) return m;
  }
  return null;
}

/** What `text` holds that a `kind` of text may not, in words (`a control character (U+001B) at character 2`); undefined when nothing. */
export function textProblem(text: string, kind: TextKind): string | undefined {
  const m = kind === 'name' ? nameRefused(text) : TEXT_REFUSED.exec(text);
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
    ? 'names and labels take printable characters only (no control, bidirectional or invisible character; joiners, variation selectors and emoji flags are taken)'
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
