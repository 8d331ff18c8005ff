// Bounded reads of the files services take at start-up and on reload.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readBounded, readBoundedSync } from '../../../lib/files';

describe('readBounded', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-files-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, bytes: Buffer) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, bytes);
    return p;
  };

  it('reads a file of up to its bound whole, both ways', async () => {
    const exact = file('exact', Buffer.from('0123456789'));
    expect(readBoundedSync(exact, 10).toString()).toBe('0123456789');
    expect((await readBounded(exact, 10)).toString()).toBe('0123456789');
    const empty = file('empty', Buffer.alloc(0));
    expect(readBoundedSync(empty, 10).length).toBe(0);
    expect((await readBounded(empty, 10)).length).toBe(0);
  });

  it('refuses one byte more by its size, and passes the file system\'s errors on', async () => {
    const over = file('over', Buffer.from('0123456789A'));
    expect(() => readBoundedSync(over, 10)).toThrow(`${over} is 11 bytes, more than the 10 such a file can take`);
    await expect(readBounded(over, 10)).rejects.toThrow(`${over} is 11 bytes, more than the 10 such a file can take`);
    expect(() => readBoundedSync(path.join(dir, 'missing'), 10)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    await expect(readBounded(dir, 1 << 20)).rejects.toMatchObject({ code: 'EISDIR' });
  });

  it('reads no more than a file\'s size says: a device without end is read as empty, not for ever', async () => {
    expect(readBoundedSync('/dev/zero', 10).length).toBe(0);
    expect((await readBounded('/dev/zero', 10)).length).toBe(0);
  });
});
