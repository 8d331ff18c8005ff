// The CLI's table and field formatter (cli/table.ts) and units (cli/format.ts): kubectl-style
// aligned columns under a header in capitals, two spaces apart, no trailing spaces, '-' for empty
// cells, right alignment on request, colour only when asked, and no control character from a cell.
import { formatFields, formatTable, paint, styled } from '../../../cli/table';
import { formatBytes, formatDuration, formatPercent, formatRate, formatTime } from '../../../cli/format';

describe('formatTable', () => {
  it('aligns columns two spaces apart under a header in capitals, with no trailing spaces', () => {
    const out = formatTable(['Name', 'latest', 'traffic'], [
      ['mnist', 2, '1:90% 2:10%'],
      ['resnet50_v1.5', 1, '1:100%'],
    ]);
    expect(out.split('\n')).toEqual([
      'NAME           LATEST  TRAFFIC',
      'mnist          2       1:90% 2:10%',
      'resnet50_v1.5  1       1:100%',
    ]);
  });

  it('shows an empty cell as -, pads a short row, and never pads the last column', () => {
    const out = formatTable(['A', 'B', 'C'], [['x', '', 'long last'], ['yy']]);
    expect(out.split('\n')).toEqual([
      'A   B  C',
      'x   -  long last',
      'yy  -  -',
    ]);
    for (const line of out.split('\n')) expect(line).toBe(line.trimEnd());
  });

  it('right-aligns a column when asked, the header too', () => {
    expect(formatTable(['VERSION', { header: 'SIZE', align: 'right' }, 'STATE'], [[1, '407.6 kB', 'AVAILABLE'], [2, '152 B', 'ARCHIVED']]).split('\n')).toEqual([
      'VERSION      SIZE  STATE',
      '1        407.6 kB  AVAILABLE',
      '2           152 B  ARCHIVED',
    ]);
  });

  it('prints the header alone for no rows, or the given text', () => {
    expect(formatTable(['ID', 'NAME'], [])).toBe('ID  NAME');
    expect(formatTable(['ID', 'NAME'], [], { empty: 'No keys.' })).toBe('No keys.');
  });

  it('colours styled cells only with color: true, and aligns by the visible text', () => {
    const rows = [['a', styled('READY', 'green')], ['bbbb', styled('UNAVAILABLE', 'red')]];
    const plain = formatTable(['M', 'STATE'], rows);
    expect(plain).not.toContain('\x1b');
    expect(plain.split('\n')[1]).toBe('a     READY');
    const coloured = formatTable(['M', 'STATE'], rows, { color: true }).split('\n');
    expect(coloured[1]).toBe('a     \x1b[32mREADY\x1b[39m');
    expect(coloured[2]).toBe('bbbb  \x1b[31mUNAVAILABLE\x1b[39m');
    // A styled cell that is not last is padded outside its colour, so columns stay aligned.
    const first = formatTable(['STATE', 'M'], [[styled('OK', 'green'), 'x'], ['LONGER', 'y']], { color: true }).split('\n');
    expect(first[1]).toBe('\x1b[32mOK\x1b[39m      x');
  });

  it('counts characters, not bytes, when aligning', () => {
    expect(formatTable(['A', 'B'], [['é→', 'x'], ['abc', 'y']]).split('\n')).toEqual(['A    B', 'é→   x', 'abc  y']);
  });

  it('shows a cell\'s control and bidi characters as escapes, aligned by what is shown, its colour still the table\'s', () => {
    // OSC 52 (write the clipboard), CSI 2J (clear), a C1 CSI, a line break faking a row, a bidi override.
    const rows = [['x\x1b]52;c;cm0gLXJmIH4=\x07', styled('a\u009b2J', 'red')], ['ok\nFAKE ROW', 'admin\u202egpj']];
    const out = formatTable(['NAME', 'STATE'], rows, { color: true });
    expect(out.split('\n')).toEqual([
      'NAME                         STATE',
      'x\\x1b]52;c;cm0gLXJmIH4=\\x07  \x1b[31ma\\x9b2J\x1b[39m',
      'ok\\x0aFAKE ROW               admin\\u202egpj',
    ]);
    expect(formatFields([['Reason', 'paused\x1b[2J\x1b[H'], ['By', styled('\u2066x', 'bold')]])).toBe('Reason:  paused\\x1b[2J\\x1b[H\nBy:      \\u2066x');
  });
});

describe('formatFields', () => {
  it('aligns values after their labels and leaves undefined fields out', () => {
    expect(formatFields([['Model', 'mnist'], ['Weight', '10%'], ['Canary', undefined], ['Reason', '']]).split('\n')).toEqual([
      'Model:   mnist',
      'Weight:  10%',
      'Reason:  -',
    ]);
  });

  it('colours a styled value only with color: true', () => {
    expect(formatFields([['Phase', styled('rolled_back', 'red')]])).toBe('Phase:  rolled_back');
    expect(formatFields([['Phase', styled('rolled_back', 'red')]], { color: true })).toBe('Phase:  \x1b[31mrolled_back\x1b[39m');
  });
});

describe('paint', () => {
  it('wraps text in the style\'s escapes only when colour is on', () => {
    expect(paint('x', 'bold', false)).toBe('x');
    expect(paint('x', undefined, true)).toBe('x');
    expect(paint('x', 'bold', true)).toBe('\x1b[1mx\x1b[22m');
  });
});

describe('units', () => {
  it.each([
    [0, '0 B'], [999, '999 B'], [1000, '1.0 kB'], [407_622, '407.6 kB'], [999_960, '1.0 MB'],
    [64_000_172, '64.0 MB'], [1.5e9, '1.5 GB'], [-1, '?'], [NaN, '?'],
  ])('formatBytes(%p) is %p', (n, text) => expect(formatBytes(n)).toBe(text));

  it.each([
    [400, '0.4 s'], [9_940, '9.9 s'], [9_960, '10 s'], [12_000, '12 s'], [59_600, '1m00s'], [185_000, '3m05s'],
    [3_599_600, '1h00m'], [7_800_000, '2h10m'], [7_799_000, '2h10m'], [NaN, '?'], [Infinity, '?'],
  ])('formatDuration(%p) is %p', (ms, text) => expect(formatDuration(ms)).toBe(text));

  it('formats rates, percents and times', () => {
    expect(formatRate(45_230_000)).toBe('45.2 MB/s');
    expect(formatRate(NaN)).toBe('? MB/s');
    expect(formatPercent(0.99204)).toBe('99.2%');
    expect(formatPercent(0)).toBe('0.0%');
    expect(formatTime('2025-06-01T12:00:03.456Z')).toBe('2025-06-01 12:00:03Z');
    expect(formatTime('2025-06-01T14:00:03+02:00')).toBe('2025-06-01 12:00:03Z');
    expect(formatTime('')).toBe('');
    expect(formatTime('not a time')).toBe('not a time');
  });
});
