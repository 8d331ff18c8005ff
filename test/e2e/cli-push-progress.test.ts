// `infermesh push` (the built CLI) of a large generated ONNX artifact to a real registry: under a
// pseudo-terminal it draws its progress on stderr (bytes sent of the total, a bar, the rate, the
// time left) and ends with a line of the total time; piped, it prints the result line alone and
// nothing on stderr; with --json, the version's JSON.
import { execFile, spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ElemType, encodeModel, initializer, node, tensor } from '../../tools/models/onnx-builder';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { startTestRegistry } from '../helpers/services';
import type { RegistryService } from '../../services/registry/registry-service';

jest.setTimeout(60_000);

const cli = path.resolve(__dirname, '../../dist/cli/main.js');
const run = promisify(execFile);
/** The generated model's unused weights: 64 MB, 64 chunks of the client's 1 MiB and some. */
const WEIGHT_BYTES = 64_000_000;

/** Runs `args` under a pseudo-terminal (python3's pty module): resolves its exit code and all it wrote. */
function underPty(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', 'import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe('infermesh push of a large artifact', () => {
  let nats: NatsServerProcess & { cleanup(): Promise<void> };
  let registry: RegistryService;
  let dir: string;
  let file: string;
  let sha256: string;
  let size: number;
  const push = (...args: string[]) => [cli, 'push', ...args, '--registry', `127.0.0.1:${registry.port}`];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-cli-push-'));
    // A valid model: OUTPUT0 = Identity(INPUT0), and an unused UINT8 initializer that makes it large.
    const weights = randomFillSync(new Uint8Array(WEIGHT_BYTES));
    const bytes = encodeModel({
      name: 'large',
      inputs: [tensor('INPUT0', ElemType.FLOAT, ['batch', 4])],
      outputs: [tensor('OUTPUT0', ElemType.FLOAT, ['batch', 4])],
      nodes: [node('Identity', ['INPUT0'], ['OUTPUT0'])],
      initializers: [initializer('weights', ElemType.UINT8, [WEIGHT_BYTES], weights)],
    });
    file = path.join(dir, 'large.onnx');
    fs.writeFileSync(file, bytes);
    sha256 = createHash('sha256').update(bytes).digest('hex');
    size = bytes.byteLength;
    nats = await startTestNats();
    registry = await startTestRegistry(nats.url);
  });

  afterAll(async () => {
    await registry?.shutdown(5_000);
    await nats?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('draws bytes, a bar, the rate and the time left on a terminal, then a final line', async () => {
    expect((size / 1e6).toFixed(1)).toBe('64.0');
    const { code, output } = await underPty([process.execPath, ...push('large', file)]);
    expect({ code, output }).toMatchObject({ code: 0 });
    // Each redraw starts at the line's beginning and clears what a longer one left.
    const frames = output.split('\r').map((f) => f.replace(/\x1b\[K$/, '')).filter((f) => /^\d/.test(f));
    // A duration in each of cli/format.ts's forms for it: `0.4 s`, `12 s`, `3m05s`.
    const duration = String.raw`(?:\d\.\d s|\d+ s|\d+m\d\ds)`;
    const progress = new RegExp(String.raw`^(\d+\.\d) MB / 64\.0 MB {2}\[([#-]{24})\] +(\d+)% {2}(\d+\.\d) MB/s {2}(?:${duration} left|sent, the registry is checking it)$`);
    const drawn = frames.filter((f) => progress.test(f));
    const midway = drawn.filter((f) => / left$/.test(f));
    expect(midway.length).toBeGreaterThanOrEqual(1);
    // Bytes only grow, the bar and the percent follow them, and the last byte is drawn.
    const sent = drawn.map((f) => Number(progress.exec(f)![1]));
    expect(sent).toEqual([...sent].sort((a, b) => a - b));
    for (const f of drawn) {
      const [, mb, bar, percent] = progress.exec(f)!;
      const fraction = Number(mb) / 64; // of the shown, rounded, megabytes: within one of the real
      expect(Math.abs(Number(percent) - fraction * 100)).toBeLessThanOrEqual(1);
      expect(Math.abs(bar!.replace(/-/g, '').length - fraction * 24)).toBeLessThanOrEqual(1);
      expect(bar).toMatch(/^#*-*$/);
    }
    expect(drawn.at(-1)).toMatch(/^64\.0 MB \/ 64\.0 MB {2}\[#{24}\] {2}100% .* sent, the registry is checking it$/);
    expect(frames).toContainEqual(expect.stringMatching(new RegExp(String.raw`^64\.0 MB sent and stored in ${duration} \(\d+\.\d MB/s\)$`)));
    // Then the result, on stdout (the terminal writes \r\n for each line break).
    expect(output).toContain(`\r\npushed large version 1 (64.0 MB, sha256 ${sha256.slice(0, 12)}…)\r\n`);
  });

  it('prints no progress when piped: the result line alone, or the JSON with --json', async () => {
    const piped = await run(process.execPath, push('large-piped', file));
    expect(piped.stderr).toBe('');
    expect(piped.stdout).toBe(`pushed large-piped version 1 (64.0 MB, sha256 ${sha256.slice(0, 12)}…)\n`);

    const json = await run(process.execPath, push('large-piped', file, '--json'));
    expect(json.stderr).toBe('');
    expect(JSON.parse(json.stdout)).toEqual({
      model: 'large-piped', version: 2, sha256, size_bytes: size,
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: ['-1', '4'] }],
      outputs: [{ name: 'OUTPUT0', datatype: 'FP32', shape: ['-1', '4'] }],
    });
  });
});
