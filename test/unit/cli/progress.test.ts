// `infermesh push` progress (cli/progress.ts): the line's bytes, bar, percent, rate and time left;
// redraws in place at most once per interval on an injected clock, the last byte always drawn,
// and a final line with the total time, or only a line break after a failure.
import { PushProgress, progressLine } from '../../../cli/progress';

const MB = 1_000_000;

describe('progressLine', () => {
  it('shows bytes of the total, a bar, the percent, the average rate and the time left', () => {
    expect(progressLine(16 * MB, 64 * MB, 400)).toBe('16.0 MB / 64.0 MB  [######------------------]   25%  40.0 MB/s  1.2 s left');
    expect(progressLine(0, 64 * MB, 0)).toBe('0 B / 64.0 MB  [------------------------]    0%  ? MB/s  ? left');
  });

  it('says the registry is checking it once every byte is sent', () => {
    expect(progressLine(64 * MB, 64 * MB, 800)).toBe('64.0 MB / 64.0 MB  [########################]  100%  80.0 MB/s  sent, the registry is checking it');
  });

  it('shows bytes and rate alone without a total', () => {
    expect(progressLine(3 * MB, undefined, 1000)).toBe('3.0 MB sent  3.0 MB/s');
  });
});

describe('PushProgress', () => {
  function drawn() {
    let t = 1000;
    const writes: string[] = [];
    const progress = new PushProgress({ write: (s: string) => writes.push(s) }, { now: () => t, redrawIntervalMs: 100 });
    return { progress, writes, advance: (ms: number) => (t += ms) };
  }

  it('redraws in place at most once per interval, and always the last byte', () => {
    const { progress, writes, advance } = drawn();
    advance(10);
    progress.update(1 * MB, 4 * MB); // the first update draws at once
    advance(50);
    progress.update(2 * MB, 4 * MB); // 50 ms later: not yet
    advance(60);
    progress.update(3 * MB, 4 * MB); // 110 ms after the first draw
    advance(1);
    progress.update(4 * MB, 4 * MB); // the last byte, 1 ms later: drawn anyway
    expect(writes).toHaveLength(3);
    for (const w of writes) expect(w).toMatch(/^\r.*\x1b\[K$/);
    expect(writes[0]).toContain('1.0 MB / 4.0 MB');
    expect(writes[1]).toContain('3.0 MB / 4.0 MB');
    expect(writes[1]).toMatch(/25\.0 MB\/s {2}0\.0 s left/);
    expect(writes[2]).toContain('4.0 MB / 4.0 MB');
  });

  it('ends with the total time and rate on success', () => {
    const { progress, writes, advance } = drawn();
    progress.update(4 * MB, 4 * MB);
    advance(2000);
    progress.finish(true);
    expect(writes.at(-1)).toBe('\r4.0 MB sent and stored in 2.0 s (2.0 MB/s)\x1b[K\n');
  });

  it('ends a drawn line with a line break after a failure, and writes nothing if nothing was drawn', () => {
    const first = drawn();
    first.progress.update(1 * MB, 4 * MB);
    first.progress.finish(false);
    expect(first.writes.at(-1)).toBe('\n');
    const none = drawn();
    none.progress.finish(false);
    expect(none.writes).toEqual([]);
  });
});
