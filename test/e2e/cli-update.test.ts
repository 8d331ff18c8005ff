// `infermesh update --warmup FILE` (the built CLI, dist/cli/main.js) against a real registry: it sets
// a model's warm-up samples from a JSON file, keeps them when only batching changes, clears them
// with [], and refuses a file that is not a list with the usage and exit code 2.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { RegistryApi } from '../../client/index';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { startTestRegistry } from '../helpers/services';
import { modelPath } from '../helpers/models';
import type { RegistryService } from '../../services/registry/registry-service';

jest.setTimeout(60_000);

const cli = path.resolve(__dirname, '../../dist/cli/main.js');
const run = promisify(execFile);

describe('infermesh update --warmup', () => {
  let nats: NatsServerProcess & { cleanup(): Promise<void> };
  let service: RegistryService;
  let client: RegistryApi;
  let dir: string;
  const infermesh = (...args: string[]) => run(process.execPath, [cli, ...args, '--registry', `127.0.0.1:${service.port}`]);

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-cli-'));
    nats = await startTestNats();
    service = await startTestRegistry(nats.url);
    client = new RegistryApi(`127.0.0.1:${service.port}`);
    await client.push('pad', modelPath('fixtures/pad_reflect_fp32.onnx'));
  });

  afterAll(async () => {
    client?.close();
    await service?.shutdown(5_000);
    await nats?.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('sets, keeps and clears a model\'s warm-up samples', async () => {
    const raw = Buffer.from(Float32Array.of(1, 2, 3, 4).buffer);
    const file = path.join(dir, 'warmup.json');
    fs.writeFileSync(file, JSON.stringify([{ name: 'one row', count: 2, inputs: [{ name: 'INPUT0', dims: [1, 4], raw_data: raw.toString('base64') }] }]));
    const { stdout } = await infermesh('update', 'pad', '--warmup', file);
    expect(JSON.parse(stdout)).toMatchObject({ name: 'pad' });
    const stored = () => client.model('pad').then((m) => m.config!.warmup.map((s) => ({ ...s, inputs: s.inputs.map((i) => ({ ...i, raw_data: i.raw_data.toString('hex') })) })));
    const expected = [{ name: 'one row', count: 2, inputs: [{ name: 'INPUT0', dims: ['1', '4'], raw_data: raw.toString('hex') }] }];
    expect(await stored()).toEqual(expected);

    await infermesh('update', 'pad', '--max-batch-size', '8');
    expect((await client.model('pad')).config!.dynamic_batching).toMatchObject({ max_batch_size: 8 });
    expect(await stored()).toEqual(expected);

    fs.writeFileSync(file, '[]');
    await infermesh('update', 'pad', '--warmup', file);
    expect(await stored()).toEqual([]);
  });

  it('refuses a file that is not a list of samples', async () => {
    const file = path.join(dir, 'bad.json');
    fs.writeFileSync(file, '{"name":"not a list"}');
    const err = (await infermesh('update', 'pad', '--warmup', file).catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err.code).toBe(2);
    expect(err.stderr).toMatch(/^infermesh: --warmup takes a JSON list of samples \(\[\] clears them\)/);
  });
});
