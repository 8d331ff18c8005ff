// Files a service reads at start-up or on reload (TLS PEM files, nkey seeds, the bootstrap token),
// read only when they are no larger than their format can be: a path pointed at a log, a device or
// a multi-gigabyte file is refused with its size, never read into memory.
import fs from 'node:fs';

/** The size past which `file` is refused, and the error that says so (the content never in it). */
function tooLarge(file: string, size: number, maxBytes: number): Error {
  return new Error(`${file} is ${size} bytes, more than the ${maxBytes} such a file can take`);
}

/** `file` whole when it holds at most `maxBytes`; throws otherwise (the fs error, or one naming its size). */
export function readBoundedSync(file: string, maxBytes: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    if (size > maxBytes) throw tooLarge(file, size, maxBytes);
    const buf = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const n = fs.readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off);
  } finally {
    fs.closeSync(fd);
  }
}

/** readBoundedSync without blocking the event loop. */
export async function readBounded(file: string, maxBytes: number): Promise<Buffer> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) throw tooLarge(file, size, maxBytes);
    const buf = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const { bytesRead } = await handle.read(buf, off, size - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return buf.subarray(0, off);
  } finally {
    await handle.close();
  }
}
