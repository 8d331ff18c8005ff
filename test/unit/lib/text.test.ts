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
    // Ordinary writing that needs a format character: joiners, variation selectors, emoji tag
    // sequences (a subdivision flag), Arabic number signs.
    ['می\u200cخواهم', 'name', undefined],
    ['क्\u200dष', 'name', undefined],
    ['\u{1F469}\u200D\u{1F4BB}', 'name', undefined],
    ['\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}', 'name', undefined],
    ['team \u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F} \u{1F44D}\u{1F3FD} \u2764\ufe0f', 'name', undefined],
    ['\u0600\u0661\u0662', 'name', undefined],
    // What makes two names look alike: invisible characters, tags outside a flag, bidi marks.
    ['a\u200bb', 'name', 'an invisible character (U+200B) at character 2'],
    ['a\u2060b', 'name', 'an invisible character (U+2060) at character 2'],
    ['\ufeffa', 'name', 'an invisible character (U+FEFF) at character 1'],
    ['a\u180e', 'name', 'an invisible character (U+180E) at character 2'],
    ['x\u2062y', 'name', 'an invisible character (U+2062) at character 2'],
    ['te\u00adam', 'name', 'an invisible character (U+00AD) at character 3'],
    ['\u3164', 'name', 'an invisible character (U+3164) at character 1'],
    ['team\u{E0067}\u{E007F}', 'name', 'a tag character outside an emoji flag (U+E0067) at character 5'],
    ['\u{1F3F4}\u{E0067}\u{E0062}', 'name', 'a tag character outside an emoji flag (U+E0067) at character 2'],
    ['team1\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}', 'name', 'a tag character outside an emoji flag (U+E0067) at character 6'],
    ['\u{1F600}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}', 'name', 'a tag character outside an emoji flag (U+E0067) at character 2'],
    ['team\u200e', 'name', 'an invisible bidirectional mark (U+200E) at character 5'],
    ['\u05e6\u200f1', 'name', 'an invisible bidirectional mark (U+200F) at character 2'],
    ['a\u061c', 'name', 'an invisible bidirectional mark (U+061C) at character 2'],
    ['a\ufff9b\ufffbc', 'name', 'an interlinear annotation character (U+FFF9) at character 2'],
    ['a\u2028b', 'name', 'a line separator (U+2028) at character 2'],
    ['a\u2029b', 'name', 'a line separator (U+2029) at character 2'],
    ['\u{1F469}\u200D\u{1F4BB}\u202e', 'name', 'a bidirectional override (U+202E) at character 4'],
    ['😀\x1b', 'name', 'a control character (U+001B) at character 2'],
    ['first line\nsecond\tcolumn', 'text', undefined],
    ['zero\u200bwidth, 👩‍💻', 'text', undefined],
    // Right-to-left prose places digits and punctuation with the marks.
    ['\u05d2\u05e8\u05e1\u05d4 2\u200f.', 'text', undefined],
    ['می\u200cخواهم \u061c١', 'text', undefined],
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
    expect((err as MeshError).message).toBe("label 'team' value holds a control character (U+001B) at character 2: names and labels take printable characters only (no control, bidirectional or invisible character; joiners, variation selectors and emoji flags are taken)");
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
    // Joiners and marks act on nothing in a terminal, and free text holds them by right.
    ['می\u200cخواهم \u{1F469}\u200D\u{1F4BB} \u05d2\u200f', 'می\u200cخواهم \u{1F469}\u200D\u{1F4BB} \u05d2\u200f'],
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
