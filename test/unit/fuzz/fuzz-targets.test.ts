// Every fuzz target (fuzz/targets.ts) on a fixed budget in npm test: each kept regression case
// (test/fixtures/fuzz/<target>/, written by `npm run fuzz` when it finds one), the seeds, and a few
// thousand random and mutated inputs from a fixed seed. Long runs: `npm run fuzz`.
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { fuzzInput } from '../../../fuzz/inputs';
import { TARGETS, regressionDir } from '../../../fuzz/targets';

const ROOT = path.resolve(__dirname, '../../..');
/** Inputs per target: about a second each on this machine. */
const RUNS: Record<string, number> = { hpack: 4000, 'request-peek': 4000, 'model-infer': 3000, onnx: 1500, 'h2-frames': 3000, 'grpc-framing': 4000, 'signed-heartbeat': 1500 };

describe.each(TARGETS.map((t) => [t.name, t] as const))('fuzz target %s', (name, target) => {
  const dir = regressionDir(ROOT, name);
  const cases = fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];

  it('keeps every regression case fixed', async () => {
    for (const file of cases) await expect(Promise.resolve().then(() => target.run(fs.readFileSync(path.join(dir, file))))).resolves.toBeUndefined();
  });

  it('takes its seeds', async () => {
    const seeds = target.seeds();
    expect(seeds.length).toBeGreaterThan(0);
    for (const s of seeds) await target.run(s);
  });

  it(`holds on ${RUNS[name]} random and mutated inputs`, async () => {
    await fc.assert(fc.asyncProperty(fuzzInput(target.seeds()), async (data) => {
      await target.run(data);
    }), { seed: 20261130, numRuns: RUNS[name] ?? 1000 });
  });
});

