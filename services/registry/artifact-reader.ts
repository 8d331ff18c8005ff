// Reads an artifact's bytes from the Object Store with backpressure. The store's own get() pushes
// every chunk into an unbounded queue as fast as NATS delivers them, so a slow reader (a pod on a
// slow link) would make the registry hold the whole artifact in memory. Here an ordered pull
// consumer on the object's chunk subject fetches only a few chunks ahead of what the caller took.
import { createHash } from 'node:crypto';
import { deleteConsumer, type JetStreamClient } from '../../lib/nats';
import { MeshError, ErrorCode } from '../../lib/errors';

/** What readArtifact needs to know about a stored object (the Object Store's ObjectInfo has it). */
export interface StoredObject {
  bucket: string;
  /** The object's chunk id: its chunks are the messages on `$O.<bucket>.C.<nuid>`. */
  nuid: string;
  size: number;
}

/** Options of readArtifact(); 8 chunks (of 128 KiB by default) fetched ahead. */
export interface ReadArtifactOptions {
  aheadChunks?: number;
}

/**
 * Yields the object's bytes chunk by chunk, fetching the next ones only as the caller consumes
 * them, and checks at the end that they add up to its size and hash to `sha256` (hex).
 */
export async function* readArtifact(js: JetStreamClient, obj: StoredObject, sha256: string, opts: ReadArtifactOptions = {}): AsyncGenerator<Uint8Array> {
  const hash = createHash('sha256');
  let received = 0;
  if (obj.size > 0) {
    // The Object Store's stream and chunk subjects (NATS ADR-20): OBJ_<bucket>, $O.<bucket>.C.<nuid>.
    const consumer = await js.consumers.get(`OBJ_${obj.bucket}`, { filter_subjects: `$O.${obj.bucket}.C.${obj.nuid}` });
    const messages = await consumer.consume({ max_messages: opts.aheadChunks ?? 8 });
    try {
      // The iterator issues the next pull only when it is resumed: while the caller holds a chunk,
      // nothing more is requested.
      for await (const m of messages) {
        hash.update(m.data);
        received += m.data.byteLength;
        if (received > obj.size) break;
        yield m.data;
        if (received === obj.size) break;
      }
    } finally {
      // Deleted, not left to the inactive threshold: a pull reset mid-way leaves nothing behind.
      await messages.close().catch(() => undefined);
      await deleteConsumer(consumer);
    }
  }
  const got = hash.digest('hex');
  if (received !== obj.size || got !== sha256) {
    throw new MeshError(ErrorCode.Internal, `artifact ${sha256} is corrupt in the store: ${received} of ${obj.size} bytes, sha256 ${got}`);
  }
}
