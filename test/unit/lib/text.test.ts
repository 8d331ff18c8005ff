// Text one caller stores and others read (lib/text.ts): what a name or a free text may not hold,
// the refusal naming the field and the character, and how the CLI shows any text a terminal would
// act on (a visible escape; JSON escapes in JSON, the same value).
import { ErrorCode, MeshError } from '../../../lib/errors';
import { checkText, escapeControls, jsonForTerminal, textProblem, type TextKind } from '../../../lib/text';

describe('textProblem', () => {
  it.each<[string, TextKind, string | undefined]>([
    ['mnist v2', 'name', undefined],
    ['équipe 東京 ✓', 'name', undefined],
    ['x\x1b]52;c;cm0gLXJmIH4=\x07', 'name', 'a control character (U+001B) at character 2'],
    ['d\u009b2J', 'name', 'a control character (U+009B) at character 2'],
    ['a\x7f', 'name', 'a control character (U+007F) at character 2'],
    ['a\tb', 'name', 'a control character (U+0009) at character 2'],
    ['admin\u202e1gnp.exe', 'name', 'a bidirectional override (U+202E) at character 6'],
    ['a\u2066b', 'name', 'a bidirectional override (U+2066) at character 2'],
    ['a\u200bb', 'name', 'an invisible format character (U+200B) at character 2'],
    ['a\u2028b', 'name', 'a line separator (U+2028) at character 2'],
    ['😀\x1b', 'name', 'a control character (U+001B) at character 2'],
    ['first line\nsecond\tcolumn', 'text', undefined],
    ['zero\u200bwidth, 👩‍💻', 'text', undefined],
    ['ok\r', 'text', 'a control character (U+000D) at character 3'],
    ['ok\x1b[2J', 'text', 'a control character (U+001B) at character 3'],
    ['ok\u0085', 'text', 'a control character (U+0085) at character 3'],
    ['ok\u202d', 'text', 'a bidirectional override (U+202D) at character 3'],
    ['ok\u2069', 'text', 'a bidirectional override (U+2069) at character 3'],
  ])('%j as a %s: %s', (text, kind, problem) => {
    expect(textProblem(text, kind)).toBe(problem);
  });
});

describe('checkText', () => {
  it('throws INVALID_ARGUMENT naming the field, the character and the rule', () => {
    let err: unknown;
    try {
      checkText("label 'team' value", 'a\x1b]52;c;x\x07', 'name');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MeshError);
    expect((err as MeshError).code).toBe(ErrorCode.InvalidArgument);
    expect((err as MeshError).message).toBe("label 'team' value holds a control character (U+001B) at character 2: names and labels take printable characters only (no control, invisible format or bidirectional characters)");
    expect(() => checkText('reason', 'a\u009b2J', 'text')).toThrow('reason holds a control character (U+009B) at character 2: free text may hold line breaks and tabs, but no other control character and no bidirectional override');
    expect(() => checkText('reason', 'two\nlines', 'text')).not.toThrow();
  });
});

describe('escapeControls', () => {
  it.each([
    ['plain text, é, 東京, 😀', 'plain text, é, 東京, 😀'],
    ['\x1b]52;c;cm0gLXJmIH4=\x07', '\\x1b]52;c;cm0gLXJmIH4=\\x07'],
    ['\x1b[2J\x1b[H', '\\x1b[2J\\x1b[H'],
    ['d\u009b2J', 'd\\x9b2J'],
    ['row\nfake row\tcell\r', 'row\\x0afake row\\x09cell\\x0d'],
    ['\x00\x7f', '\\x00\\x7f'],
    ['admin\u202e1gnp.exe \u2066x\u2069', 'admin\\u202e1gnp.exe \\u2066x\\u2069'],
  ])('%j shows as %j', (text, shown) => {
    expect(escapeControls(text)).toBe(shown);
  });
});

describe('jsonForTerminal', () => {
  it('writes what JSON.stringify leaves raw (DEL, C1, bidi) as JSON escapes: the same value, nothing a terminal acts on', () => {
    const value = { reason: 'a\u009b2J\x1b]0;t\x07\x7f\u202e', labels: { team: 'ml' }, n: 1 };
    for (const indent of [undefined, 2]) {
      const text = jsonForTerminal(value, indent);
      expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
      expect(JSON.parse(text)).toEqual(value);
    }
    expect(jsonForTerminal({ a: ['x'] }, 2)).toBe(JSON.stringify({ a: ['x'] }, null, 2));
  });
});
