// Why a model is not ready, for ModelReady (pods, and a router that knows its pods' reasons): its
// response has only `ready`, so the reason travels in the trailing metadata, where a client that
// does not look for it never sees it (Triton answers the same call with `ready: false` alone; its
// reasons are in RepositoryIndex, which pods fill too).
import { Metadata } from '@grpc/grpc-js';
import { messageOf } from '../errors';

/** The trailing metadata key of ModelReady's reason when `ready` is false. */
export const READY_REASON_KEY = 'infermesh-reason';

/** Longest reason sent: a header, not a log. */
const MAX_REASON_CHARS = 1024;

/** Trailing metadata carrying `err`'s message as the reason, printable ASCII only (a metadata value's alphabet). */
export function notReadyTrailer(err: unknown): Metadata {
  const md = new Metadata();
  let reason = messageOf(err).replace(/[^\x20-\x7e]/g, '?');
  if (reason.length > MAX_REASON_CHARS) reason = `${reason.slice(0, MAX_REASON_CHARS - 3)}...`;
  md.set(READY_REASON_KEY, reason);
  return md;
}
