// Reads model_name (field 1), model_version (field 2) and id (field 3) from an encoded
// ModelInferRequest without decoding its tensors: the router forwards the original bytes untouched.
import { errors } from '../../lib/errors';
import { routingFieldsOf } from '../../lib/grpc/request-scan';

/** The routing keys of a request, its id, and its bytes. */
export interface PeekedRequest {
  model: string;
  version: string;
  id: string;
  bytes: Buffer;
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

/**
 * Reads the model name and version (with `withId`, its id too) of a ModelInferRequest from its
 * top-level fields, by the rules the pod's scan reads them with (lib/grpc/request-scan): the model
 * checked and routed here is the one the pod decodes.
 */
export function peekRequest(bytes: Buffer, withId = false): PeekedRequest {
  const { name, version, id } = routingFieldsOf(bytes);
  return {
    model: name[0] < 0 ? '' : utf8(bytes, name[0], name[1], 'model_name'),
    version: version[0] < 0 ? '' : utf8(bytes, version[0], version[1], 'model_version'),
    // Only a door that answers errors itself names the request (streams): not the relay's hot path.
    id: withId && id[0] >= 0 ? utf8(bytes, id[0], id[1], 'id') : '',
    bytes,
  };
}
