// Where a call's token is: the `authorization` header, read the one way for every door. A call
// with two of them is refused, lest one be checked and another be read.
import type { Metadata } from '@grpc/grpc-js';
import { errors } from '../errors';
import type { Header } from '../h2/hpack';

/** The request header that carries the token, lower-case as HTTP/2 sends it. */
export const AUTHORIZATION_HEADER = 'authorization';

const TWICE = 'more than one authorization header';

/** The token header of a request on lib/h2 (undefined: none). */
export function authorizationOfHeaders(headers: readonly Header[]): string | undefined {
  let found: string | undefined;
  for (const h of headers) {
    if (h[0] !== AUTHORIZATION_HEADER) continue;
    if (found !== undefined) throw errors.unauthenticated(TWICE);
    found = h[1];
  }
  return found;
}

/** The token header of a grpc-js call (undefined: none). */
export function authorizationOfMetadata(metadata: Metadata): string | undefined {
  const values = metadata.get(AUTHORIZATION_HEADER);
  if (values.length > 1) throw errors.unauthenticated(TWICE);
  const v = values[0];
  return typeof v === 'string' ? v : undefined;
}

/** The token header of a node:http request, from its raw headers so that two are seen (undefined: none). */
export function authorizationOfRawHeaders(rawHeaders: readonly string[]): string | undefined {
  let found: string | undefined;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() !== AUTHORIZATION_HEADER) continue;
    if (found !== undefined) throw errors.unauthenticated(TWICE);
    found = rawHeaders[i + 1];
  }
  return found;
}
