// Isolation by construction, as a property: random concurrent requests to the add_sub fixtures of
// every datatype (zero rows, inputs that disagree on rows, raw and typed, some outputs or all, and a
// model that fails on some inputs) go through the real path of a version that batches — decode,
// the dynamic batcher, onnxruntime sessions in worker threads, encode — and each answer must be
// exactly that of the same request run alone, or, for inputs that disagree on rows, INVALID_ARGUMENT.
import fc from 'fast-check';
import { ErrorCode, MeshError } from '../../../../lib/errors';
import type { ModelInferRequestOut, ModelInferResponseOut, InferTensorContentsOut } from '../../../../lib/grpc/types';
import { protos } from '../../../../lib/grpc/proto';
import { DATATYPES, type Datatype } from '../../../../lib/tensor';
import { LoadedVersion } from '../../../../services/inference/loaded-version';
import { SessionPool } from '../../../../services/inference/session-pool';
import type { BatchingOptions } from '../../../../services/inference/dynamic-batcher';
import { ADD_SUB_DATATYPES } from '../../../../tools/models/fixtures';
import { modelPath } from '../../../helpers/models';

jest.setTimeout(120_000);

interface Model {
  name: string;
  datatype: Datatype;
  /** Batches concurrent requests. */
  batched: LoadedVersion;
  /** The same sessions, every request alone: the reference. */
  alone: LoadedVersion;
}

const LIMITS = { maxTensorElements: 1 << 20, maxBytesElements: 1 << 20, maxClassificationResults: 1 << 20, warmupTimeoutMs: 60_000, maxMessageBytes: 64 << 20 };
/** An answer's bytes as a client's protobufjs reads them. */
const answerOf = (bytes: Buffer) => protos().inference.GRPCInferenceService.service.ModelInfer.responseDeserialize(bytes) as ModelInferResponseOut;
const batching = (enabled: boolean): BatchingOptions => ({
  enabled, maxBatchSize: 16, maxQueueDelayUs: 1_000, preferredBatchSizes: [], maxQueueSize: 1024, concurrency: 1,
});

const models: Model[] = [];
const pools: SessionPool[] = [];

beforeAll(async () => {
  const specs = [
    ...ADD_SUB_DATATYPES.map((dt) => ({ name: `add_sub_${dt.toLowerCase()}`, datatype: dt as Datatype })),
    // Fails any run where some |INPUT0| >= 1: the guilty request of a shared run.
    { name: 'add_sub_fails_fp32', datatype: 'FP32' as Datatype },
  ];
  for (const { name, datatype } of specs) {
    const pool = await SessionPool.create({ modelPath: modelPath(`fixtures/${name}.onnx`), providers: ['cpu'], workers: 1, intraOpThreads: 1 });
    pools.push(pool);
    const tensor = (n: string) => ({ name: n, datatype, shape: [-1, 4] });
    const sig = { inputs: [tensor('INPUT0'), tensor('INPUT1')], outputs: [tensor('OUTPUT0'), tensor('OUTPUT1')] };
    const batched = new LoadedVersion(name, 1, 'sha', sig, pool, LIMITS, batching(true));
    const alone = new LoadedVersion(name, 1, 'sha', sig, pool, LIMITS, batching(false));
    batched.state = alone.state = 'READY';
    models.push({ name, datatype, batched, alone });
  }
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

/** One generated request: which model, each input's rows and bytes, its form and the outputs asked for. */
interface Case {
  model: number;
  rows: [number, number];
  bytes: [Uint8Array, Uint8Array];
  typed: boolean;
  outputs: string[];
}

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    model: fc.nat({ max: ADD_SUB_DATATYPES.length }),
    rows: fc.nat({ max: 3 }),
    // One in eight requests has inputs that disagree on rows.
    other: fc.option(fc.nat({ max: 3 }), { freq: 7 }),
    typed: fc.boolean(),
    outputs: fc.constantFrom([], ['OUTPUT0'], ['OUTPUT1'], ['OUTPUT1', 'OUTPUT0'], ['OUTPUT0', 'OUTPUT1']),
    seed: fc.uint8Array({ minLength: 128, maxLength: 128 }),
    small: fc.boolean(),
  })
  .map(({ model, rows, other, typed, outputs, seed, small }) => {
    const m = ADD_SUB_DATATYPES[model] ?? 'FP32';
    const size = DATATYPES[m].bytes;
    const fails = model === ADD_SUB_DATATYPES.length;
    // The failing model reduces over the whole batch, and fails on an empty one: the answer to zero
    // rows depends on the company, so it gets rows (batching assumes rows are independent, as Triton's).
    const r: [number, number] = fails ? [rows + 1, (other ?? rows) + 1] : [rows, other ?? rows];
    const bytes = r.map((n, k) => {
      const b = new Uint8Array(n * 4 * size);
      for (let i = 0; i < b.length; i++) b[i] = seed[(i + 64 * k) % seed.length]!;
      return b;
    }) as [Uint8Array, Uint8Array];
    // The failing model: small values pass, large ones fail the run.
    if (fails) {
      for (const b of bytes) {
        const f = new Float32Array(b.buffer);
        for (let i = 0; i < f.length; i++) f[i] = ((seed[i % seed.length]! - 128) / 128) * (small ? 0.9 : 1.5);
      }
    }
    return { model, rows: r, bytes, typed: typed && m !== 'FP16', outputs: [...outputs] };
  });

/** The typed contents holding `bytes` of `dt`. */
function contentsOf(dt: Datatype, bytes: Uint8Array): InferTensorContentsOut {
  const c: InferTensorContentsOut = { bool_contents: [], int_contents: [], int64_contents: [], uint_contents: [], uint64_contents: [], fp32_contents: [], fp64_contents: [], bytes_contents: [] };
  const copy = bytes.slice().buffer;
  const view: Record<string, () => ArrayLike<number | bigint>> = {
    UINT8: () => new Uint8Array(copy), UINT16: () => new Uint16Array(copy), UINT32: () => new Uint32Array(copy),
    INT8: () => new Int8Array(copy), INT16: () => new Int16Array(copy), INT32: () => new Int32Array(copy),
    UINT64: () => new BigUint64Array(copy), INT64: () => new BigInt64Array(copy),
    FP32: () => new Float32Array(copy), FP64: () => new Float64Array(copy),
  };
  const values = Array.from(view[dt]!());
  (c as unknown as Record<string, unknown[]>)[DATATYPES[dt].contents!] = typeof values[0] === 'bigint' ? values.map(String) : values;
  return c;
}

function requestOf(c: Case, id: string): ModelInferRequestOut {
  const model = models[c.model]!;
  const input = (k: 0 | 1) => ({
    name: `INPUT${k}`, datatype: model.datatype, shape: [String(c.rows[k]), '4'], parameters: {},
    contents: c.typed ? contentsOf(model.datatype, c.bytes[k]) : null,
  });
  return {
    model_name: model.name, model_version: '', id, parameters: {},
    inputs: [input(0), input(1)],
    outputs: c.outputs.map((name) => ({ name, parameters: {} })),
    raw_input_contents: c.typed ? [] : c.bytes.map((b) => Buffer.from(b)),
  };
}

/** A response's outputs as comparable values: NaN-aware for floats, whatever their payload. */
function comparable(res: ModelInferResponseOut, dt: Datatype): unknown {
  return (res.outputs ?? []).map((o, i) => {
    let values: unknown[];
    const raw = res.raw_output_contents?.[i];
    if (raw) {
      const copy = Uint8Array.from(raw as Uint8Array).buffer;
      switch (dt) {
        case 'FP16': values = Array.from(new Uint16Array(copy), (h) => ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0 ? 'NaN' : h)); break;
        case 'FP32': values = Array.from(new Float32Array(copy)); break;
        case 'FP64': values = Array.from(new Float64Array(copy)); break;
        default: values = Array.from(raw as Uint8Array);
      }
    } else {
      values = o.contents![DATATYPES[dt].contents!];
    }
    return { name: o.name, datatype: o.datatype, shape: o.shape, values };
  });
}

describe('a version that batches', () => {
  it('answers every request exactly as its own unbatched run, and refuses inputs that disagree on rows', async () => {
    let requests = 0;
    await fc.assert(fc.asyncProperty(fc.array(caseArb, { minLength: 1, maxLength: 12 }), async (cases) => {
      requests += cases.length;
      const reqs = cases.map((c, i) => requestOf(c, `r${i}`));
      const [batched, alone] = await Promise.all([
        Promise.allSettled(reqs.map((r, i) => models[cases[i]!.model]!.batched.infer(r).then(answerOf))),
        Promise.allSettled(reqs.map((r, i) => models[cases[i]!.model]!.alone.infer(r).then(answerOf))),
      ]);
      cases.forEach((c, i) => {
        const got = batched[i]!;
        const want = alone[i]!;
        if (c.rows[0] !== c.rows[1]) {
          expect(got.status).toBe('rejected');
          const err = (got as PromiseRejectedResult).reason as MeshError;
          expect(err).toBeInstanceOf(MeshError);
          expect(err.code).toBe(ErrorCode.InvalidArgument);
          expect(err.message).toBe(`inputs disagree on the batch (first) dimension: 'INPUT0' has ${c.rows[0]}, 'INPUT1' has ${c.rows[1]}`);
          return;
        }
        expect(got.status).toBe(want.status);
        if (want.status === 'rejected') {
          expect(((got as PromiseRejectedResult).reason as MeshError).code).toBe((want.reason as MeshError).code);
          return;
        }
        const dt = models[c.model]!.datatype;
        const res = (got as PromiseFulfilledResult<ModelInferResponseOut>).value;
        expect(res.id).toBe(`r${i}`);
        expect(comparable(res, dt)).toEqual(comparable(want.value, dt));
      });
    }), { seed: 1313, numRuns: 1000 });
    expect(requests).toBeGreaterThan(5000);
    // The property held for shared runs: most requests ran with others.
    const runs = models.reduce((n, m) => n + m.batched.stats.executionCount, 0);
    const batchedRuns = models.reduce((n, m) => n + [...m.batched.stats.batches.entries()].filter(([size]) => size > 1).reduce((a, [, b]) => a + b.infer.count, 0), 0);
    expect(batchedRuns).toBeGreaterThan(runs / 4);
  });
});

// BYTES and BOOL, whose rows are no fixed size (strings) or one byte: the identity fixtures take
// [batch, n] with any n, so concurrent requests differ in their other dimension too and only those
// that agree may share a run. An identity answer must be the request's own data, byte for byte.
describe('a version that batches BYTES and BOOL', () => {
  const identities: { name: string; datatype: 'BYTES' | 'BOOL'; version: LoadedVersion; pool: SessionPool }[] = [];

  beforeAll(async () => {
    for (const datatype of ['BYTES', 'BOOL'] as const) {
      const pool = await SessionPool.create({ modelPath: modelPath(`fixtures/identity_${datatype.toLowerCase()}.onnx`), providers: ['cpu'], workers: 1, intraOpThreads: 1 });
      const t = (name: string) => ({ name, datatype, shape: [-1, -1] });
      const version = new LoadedVersion(`identity_${datatype}`, 1, 'sha', { inputs: [t('INPUT0')], outputs: [t('OUTPUT0')] }, pool, LIMITS, batching(true));
      version.state = 'READY';
      identities.push({ name: `identity_${datatype}`, datatype, version, pool });
    }
  });

  afterAll(async () => {
    await Promise.all(identities.map((m) => m.pool.close()));
  });

  const utf8 = fc.string({ unit: 'grapheme', maxLength: 6 }).filter((s) => !s.includes('\0'));
  const bytesCase = fc.record({ rows: fc.nat({ max: 3 }), n: fc.integer({ min: 1, max: 3 }), typed: fc.boolean(), seed: fc.array(utf8, { minLength: 12, maxLength: 12 }) });
  const boolCase = fc.record({ rows: fc.nat({ max: 3 }), n: fc.integer({ min: 1, max: 3 }), typed: fc.boolean(), seed: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }) });

  it('answers every request with its own elements, whatever the shapes batched beside it', async () => {
    let requests = 0;
    await fc.assert(fc.asyncProperty(fc.array(fc.oneof(bytesCase.map((c) => ({ ...c, dt: 'BYTES' as const })), boolCase.map((c) => ({ ...c, dt: 'BOOL' as const }))), { minLength: 1, maxLength: 10 }), async (cases) => {
      requests += cases.length;
      const answers = await Promise.all(cases.map((c, i) => {
        const m = identities.find((x) => x.datatype === c.dt)!;
        const values = (c.seed as unknown[]).slice(0, c.rows * c.n);
        while (values.length < c.rows * c.n) values.push(c.seed[values.length % c.seed.length]!);
        const raw = c.dt === 'BYTES'
          ? Buffer.concat((values as string[]).flatMap((s) => { const b = Buffer.from(s, 'utf8'); const len = Buffer.alloc(4); len.writeUInt32LE(b.length); return [len, b]; }))
          : Buffer.from((values as boolean[]).map((b) => (b ? 1 : 0)));
        const contents = { bool_contents: c.dt === 'BOOL' ? values as boolean[] : [], int_contents: [], int64_contents: [], uint_contents: [], uint64_contents: [], fp32_contents: [], fp64_contents: [], bytes_contents: c.dt === 'BYTES' ? (values as string[]).map((s) => Buffer.from(s, 'utf8')) : [] };
        const req: ModelInferRequestOut = {
          model_name: m.name, model_version: '', id: `q${i}`, parameters: {},
          inputs: [{ name: 'INPUT0', datatype: c.dt, shape: [String(c.rows), String(c.n)], parameters: {}, contents: c.typed ? contents : null }],
          outputs: [], raw_input_contents: c.typed ? [] : [raw],
        };
        return m.version.infer(req).then((bytes) => ({ res: answerOf(bytes), raw, values, c }));
      }));
      for (const { res, raw, values, c } of answers) {
        expect(res.outputs?.[0]?.shape).toEqual([String(c.rows), String(c.n)]);
        if (c.typed) {
          const got = c.dt === 'BYTES' ? (res.outputs![0]!.contents!.bytes_contents as Uint8Array[]).map((b) => Buffer.from(b).toString('utf8')) : res.outputs![0]!.contents!.bool_contents;
          expect(got).toEqual(values);
        } else {
          expect(Buffer.from(res.raw_output_contents![0] as Uint8Array).equals(raw)).toBe(true);
        }
      }
    }), { seed: 2026, numRuns: 300 });
    expect(requests).toBeGreaterThan(1000);
    // They did share runs.
    expect(identities.reduce((n, m) => n + m.version.stats.executionCount, 0)).toBeLessThan(requests);
  });
});
