// What makes a request's header list well formed in HTTP/2 (RFC 9113 §8.2–8.3), checked at the door
// before a request reaches any handler or is forwarded anywhere. A malformed request is a stream
// error (RST_STREAM PROTOCOL_ERROR), and an intermediary must not forward one (§8.1.1): forwarded to
// nghttp2 (the grpc-js servers behind the front doors), each one counts as an invalid frame against
// the whole shared connection, which node ends after 1,000 of them.
//
// The rules are at least as strict as nghttp2's, so anything that passes here passes there: names
// are lower-case tokens; values carry no control characters other than HTAB and no whitespace at
// either end; pseudo-headers are those of a request, once each, before every regular field; no
// connection-specific fields; te only "trailers"; content-length only digits, and only once.
//
// Counters and comparisons over the strings HPACK produced (latin1: one char per octet), with no
// allocation: every request on the hot path goes through here.
import type { Header } from './hpack';

function table(chars: string, ...ranges: number[]): Uint8Array {
  const t = new Uint8Array(256);
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  for (let i = 0; i + 1 < ranges.length; i += 2) for (let c = ranges[i]!; c <= ranges[i + 1]!; c++) t[c] = 1;
  return t;
}

const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const DIGIT = '0123456789';
/** A header name: tchar (RFC 9110 §5.6.2) without upper-case letters. */
const NAME_CHARS = table(`!#$%&'*+-.^_\`|~${DIGIT}${LOWER}`);
/** A method: tchar, either case. */
const METHOD_CHARS = table(`!#$%&'*+-.^_\`|~${DIGIT}${LOWER}${UPPER}`);
/** A field value: HTAB, SP, visible ASCII and obs-text (0x80–0xff). */
const VALUE_CHARS = table('\t', 0x20, 0x7e, 0x80, 0xff);
/** :path: visible ASCII and obs-text, no SP (nghttp2's rule). */
const PATH_CHARS = table('', 0x21, 0x7e, 0x80, 0xff);
/** :authority and host: the characters of RFC 3986's authority (nghttp2's rule). */
const AUTHORITY_CHARS = table(`!$%&'()*+,-.:;=@[]_~${DIGIT}${LOWER}${UPPER}`);
/** :scheme after its first letter (RFC 3986 §3.1). */
const SCHEME_CHARS = table(`+-.${DIGIT}${LOWER}${UPPER}`);
const DIGITS = table(DIGIT);

/** Whether every char of `s` from `from` on is in `chars` (a char above 0xff never is). */
function allIn(s: string, chars: Uint8Array, from = 0): boolean {
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || chars[c] === 0) return false;
  }
  return true;
}

/** A field value: allowed characters and no whitespace at either end (RFC 9113 §8.2.1). */
function validValue(v: string): boolean {
  const n = v.length;
  if (n === 0) return true;
  const first = v.charCodeAt(0);
  const last = v.charCodeAt(n - 1);
  if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09) return false;
  return allIn(v, VALUE_CHARS);
}

/**
 * Why a regular field is malformed, or undefined: its name is not a lower-case token (§8.2), it is
 * connection-specific or te other than "trailers" (§8.2.2), its value has a control character or
 * whitespace at an end (§8.2.1), or host is not a non-empty authority.
 */
function regularFieldProblem(name: string, value: string): string | undefined {
  if (name.length === 0) return 'empty header name';
  if (!allIn(name, NAME_CHARS)) return 'header name with an upper-case or invalid character';
  switch (name) {
    case 'connection':
    case 'keep-alive':
    case 'proxy-connection':
    case 'transfer-encoding':
    case 'upgrade':
      return 'connection-specific header';
    case 'te':
      // Compared as clients send it first; any case of "trailers" is still "trailers".
      return value === 'trailers' || (value.length === 8 && value.toLowerCase() === 'trailers') ? undefined : 'te other than "trailers"';
    case 'host':
      // nghttp2 refuses an empty one, as it does an empty :authority.
      return value.length > 0 && allIn(value, AUTHORITY_CHARS) ? undefined : 'invalid host';
    default:
      return validValue(value) ? undefined : 'header value with a control character or whitespace at an end';
  }
}

/** Checks a connection's request header lists and trailers; made once per connection and reused. */
export class RequestHeaderCheck {
  /** After a check: why the list is malformed (a constant string), or undefined when it is not. */
  problem: string | undefined;
  /** After a successful request(): the content-length the request declared, or -1. */
  contentLength = -1;

  /** Whether `headers`, the first header block of a request, is well formed (RFC 9113 §8.2–8.3). */
  request(headers: readonly Header[]): boolean {
    this.problem = this.requestProblem(headers);
    return this.problem === undefined;
  }

  /** Whether `trailers`, the header block that ends a request, is well formed (no pseudo-headers, §8.1). */
  trailers(trailers: readonly Header[]): boolean {
    this.problem = undefined;
    for (let i = 0; i < trailers.length && this.problem === undefined; i++) {
      const h = trailers[i]!;
      const name = h[0];
      const value = h[1];
      if (name.charCodeAt(0) === 58 /* ':' */) this.problem = 'pseudo-header in trailers';
      else if (name === 'content-length') this.problem = 'content-length in trailers';
      else this.problem = regularFieldProblem(name, value);
    }
    return this.problem === undefined;
  }

  private requestProblem(headers: readonly Header[]): string | undefined {
    this.contentLength = -1;
    let method: string | undefined;
    let scheme = false;
    let path: string | undefined;
    let authority = false;
    let host = false;
    let regular = false;
    for (let i = 0; i < headers.length; i++) {
      const h = headers[i]!;
      const name = h[0];
      const value = h[1];
      if (name.charCodeAt(0) !== 58 /* ':' */) {
        regular = true;
        const problem = regularFieldProblem(name, value);
        if (problem !== undefined) return problem;
        if (name === 'host') {
          // nghttp2 takes host as it takes :authority: once.
          if (host) return 'repeated host';
          host = true;
        }
        if (name === 'content-length') {
          if (this.contentLength >= 0 || value.length === 0 || value.length > 15 || !allIn(value, DIGITS)) return 'invalid content-length';
          this.contentLength = Number(value);
        }
        continue;
      }
      if (regular) return 'pseudo-header after a regular header';
      switch (name) {
        case ':method':
          if (method !== undefined) return 'repeated :method';
          if (value.length === 0 || !allIn(value, METHOD_CHARS)) return 'invalid :method';
          method = value;
          break;
        case ':scheme': {
          if (scheme) return 'repeated :scheme';
          const c = value.charCodeAt(0) | 0x20; // lower-cased, if a letter
          if (!(c >= 0x61 && c <= 0x7a) || !allIn(value, SCHEME_CHARS, 1)) return 'invalid :scheme';
          scheme = true;
          break;
        }
        case ':path':
          if (path !== undefined) return 'repeated :path';
          if (value.length === 0 || !allIn(value, PATH_CHARS)) return 'invalid :path';
          path = value;
          break;
        case ':authority':
          if (authority) return 'repeated :authority';
          if (value.length === 0 || !allIn(value, AUTHORITY_CHARS)) return 'invalid :authority';
          authority = true;
          break;
        default:
          // :status, :protocol (extended CONNECT is not enabled) and anything else.
          return 'unknown pseudo-header';
      }
    }
    if (method === undefined) return 'missing :method';
    if (method === 'CONNECT') {
      // RFC 9113 §8.5: :authority, and neither :scheme nor :path.
      return scheme || path !== undefined || !authority ? 'malformed CONNECT' : undefined;
    }
    if (!scheme) return 'missing :scheme';
    if (path === undefined) return 'missing :path';
    // An absolute path, or "*" for OPTIONS (§8.3.1).
    if (path.charCodeAt(0) !== 47 /* '/' */ && !(path === '*' && method === 'OPTIONS')) return 'invalid :path';
    return undefined;
  }
}
