// Reads model_name (field 1) and model_version (field 2) from an encoded ModelInferRequest without
// decoding its tensors: the router forwards the original bytes untouched.
import { errors } from '../../lib/errors';

/** The routing keys of a request, and its bytes. */
export interface PeekedRequest {
  model: string;
  version: string;
  bytes: Buffer;
}

function varint(buf: Buffer, pos: number): [number, number] {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw errors.invalidArgument('malformed request: truncated varint');
    const b = buf[pos++]!;
    result += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return [result, pos];
    mul *= 128;
  }
  throw errors.invalidArgument('malformed request: varint too long');
}

// fatal: a protobuf string must be UTF-8 (as grpc-go checks); a lenient decode would route by U+FFFD.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function utf8(bytes: Buffer, start: number, end: number, field: string): string {
  // ASCII, the usual case, needs no validation.
  for (let i = start; i < end; i++) {
    if (bytes[i]! > 0x7f) {
      try {
        return decoder.decode(bytes.subarray(start, end));
      } catch {
        throw errors.invalidArgument(`malformed request: ${field} is not valid UTF-8`);
      }
    }
  }
  return bytes.toString('latin1', start, end);
}

/** Scans the top-level fields of a ModelInferRequest for its model name and version. */
export function peekRequest(bytes: Buffer): PeekedRequest {
  let model = '';
  let version = '';
  let pos = 0;
  while (pos < bytes.length) {
    const [tag, p] = varint(bytes, pos);
    const field = Math.floor(tag / 8);
    switch (tag & 7) {
      case 0: pos = varint(bytes, p)[1]; break;
      case 1: pos = p + 8; break;
      case 5: pos = p + 4; break;
      case 2: {
        const [len, start] = varint(bytes, p);
        pos = start + len;
        if (pos > bytes.length) throw errors.invalidArgument('malformed request: field runs past the end');
        if (field === 1) model = utf8(bytes, start, pos, 'model_name');
        else if (field === 2) version = utf8(bytes, start, pos, 'model_version');
        break;
      }
      default: throw errors.invalidArgument(`malformed request: wire type ${tag & 7}`);
    }
  }
  if (pos > bytes.length) throw errors.invalidArgument('malformed request: field runs past the end');
  return { model, version, bytes };
}
