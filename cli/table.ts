// Readable output for people, kubectl style: a table is a header row in capitals, then one row per
// item, columns aligned and two spaces apart, with no trailing spaces. Colour only when asked (the
// CLI asks when stdout is a terminal and NO_COLOR is unset), so piped output is plain text.
// Every cell's text came from the network: it is shown with its control characters escaped
// (lib/text.ts escapeControls), so a stored name or reason cannot drive the terminal or break a row.
import { escapeControls } from '../lib/text';

/** A colour or weight a cell can carry; shown only with `color: true`. */
export type Style = 'bold' | 'dim' | 'green' | 'yellow' | 'red';

/** A cell with a style. */
export interface StyledCell {
  text: string;
  style: Style;
}

/** One cell: text, a number (shown as is), or styled text. Empty text shows as '-'; control characters as escapes (`\x1b`). */
export type Cell = string | number | StyledCell;

/** A column: its header (shown in capitals) and alignment (default left). */
export interface Column {
  header: string;
  align?: 'left' | 'right';
}

/** How a table or a field block is drawn; by default plain text. */
export interface TableOptions {
  /** Colour styled cells (ANSI escapes); default false. */
  color?: boolean;
  /** What to print instead of a header alone when there are no rows; default: the header alone. */
  empty?: string;
}

const ANSI: Record<Style, [string, string]> = {
  bold: ['\x1b[1m', '\x1b[22m'],
  dim: ['\x1b[2m', '\x1b[22m'],
  green: ['\x1b[32m', '\x1b[39m'],
  yellow: ['\x1b[33m', '\x1b[39m'],
  red: ['\x1b[31m', '\x1b[39m'],
};

/** A styled cell. */
export function styled(text: string, style: Style): StyledCell {
  return { text, style };
}

/** `text` in `style` when `color`, else unchanged. */
export function paint(text: string, style: Style | undefined, color: boolean | undefined): string {
  if (!color || !style || text === '') return text;
  const [on, off] = ANSI[style];
  return `${on}${text}${off}`;
}

function textOf(cell: Cell | undefined): string {
  const t = cell === undefined ? '' : typeof cell === 'object' ? cell.text : String(cell);
  return t === '' ? '-' : escapeControls(t);
}

/** Visible width: code points (a cell's text holds no escape sequence: textOf escaped them). */
function widthOf(text: string): number {
  return [...text].length;
}

/**
 * Rows under a header, columns aligned and two spaces apart; the last column is never padded.
 * Headers are shown in capitals; an empty cell shows as '-'. Ends without a newline.
 */
export function formatTable(columns: readonly (string | Column)[], rows: readonly (readonly Cell[])[], opts: TableOptions = {}): string {
  const cols: Column[] = columns.map((c) => (typeof c === 'string' ? { header: c } : c));
  if (rows.length === 0 && opts.empty !== undefined) return opts.empty;
  const texts = rows.map((r) => cols.map((_, i) => textOf(r[i])));
  const widths = cols.map((c, i) => Math.max(widthOf(c.header.toUpperCase()), ...texts.map((r) => widthOf(r[i]!))));
  const line = (cells: string[], styleOf: (i: number) => Style | undefined) => cells
    .map((t, i) => {
      const pad = ' '.repeat(widths[i]! - widthOf(t));
      const last = i === cells.length - 1;
      const shown = paint(t, styleOf(i), opts.color);
      return cols[i]!.align === 'right' ? pad + shown : last ? shown : shown + pad;
    })
    .join('  ')
    .trimEnd();
  return [
    line(cols.map((c) => c.header.toUpperCase()), () => undefined),
    ...texts.map((r, n) => line(r, (i) => {
      const cell = rows[n]![i];
      return typeof cell === 'object' ? cell.style : undefined;
    })),
  ].join('\n');
}

/**
 * A block of labelled fields, one a line, values aligned: `Stable:   v1`. Fields whose value is
 * undefined are left out. Ends without a newline.
 */
export function formatFields(fields: readonly (readonly [string, Cell | undefined])[], opts: TableOptions = {}): string {
  const shown = fields.filter((f): f is readonly [string, Cell] => f[1] !== undefined);
  const width = Math.max(0, ...shown.map(([k]) => widthOf(k) + 1));
  return shown
    .map(([k, v]) => `${`${k}:`.padEnd(width)}  ${paint(textOf(v), typeof v === 'object' ? v.style : undefined, opts.color)}`.trimEnd())
    .join('\n');
}
