// One client can never hurt another, on a real pod: concurrent callers of a batching model, some
// sending inputs that disagree on rows, each get exactly their own answer, a model flattened as
// PyTorch exports it included; a request built to cost gigabytes to decode is refused at once, on
// both of the pod's paths, and the pod keeps serving.
import * as grpc from '@grpc/grpc-js';
import type { InferenceClient, ModelInferRequest, ModelInferResponseOut } from '../../lib/grpc/types';
import type { ModelStatistics__Output } from '../../lib/grpc/generated/inference/ModelStatistics';
import { MODEL_INFER_PATH, protos } from '../../lib/grpc/proto';
import { startTestMesh, waitReady, inferenceClient, unary, type TestMesh } from '../helpers/mesh';

jest.setTimeout(240_000);

const MODEL = 'add-sub-fp32';
/** add_sub_fp32's outputs plus 0 × a side branch that sums INPUT0 over the whole batch. */
const SLOW_MODEL = 'slow-fp32';
const INT64_MODEL = 'identity-int64';
/** An MLP whose flattens are written as PyTorch exports x.view(x.size(0), -1): Shape, Gather, Concat, Reshape. */
const FLATTEN_MODEL = 'flatten-mlp-fp32';
const CALLERS = 16;
const CALLS = 60;

const f32 = (values: number[]) => Buffer.from(Float32Array.from(values).buffer);
const floats = (b: Buffer) => Array.from(new Float32Array(Uint8Array.from(b).buffer));

describe('isolation on a pod', () => {
  let mesh: TestMesh;
  let client: InferenceClient;
  let address: string;

  beforeAll(async () => {
    mesh = await startTestMesh();
    // A longer queue delay than the default, so that concurrent callers share runs.
    const pod = await mesh.startPod({ INFERMESH_MAX_QUEUE_DELAY_US: '2000', INFERMESH_SESSION_WORKERS: '1' });
    address = `127.0.0.1:${pod.port}`;
    client = inferenceClient(address);
    await mesh.push(MODEL, 'fixtures/add_sub_fp32.onnx');
    await mesh.push(INT64_MODEL, 'fixtures/identity_int64.onnx');
    await mesh.push(SLOW_MODEL, 'fixtures/slow_fp32.onnx');
    await mesh.push(FLATTEN_MODEL, 'fixtures/flatten_mlp_fp32.onnx');
    await waitReady(client, [MODEL, INT64_MODEL, SLOW_MODEL, FLATTEN_MODEL]);
  });

  afterAll(async () => {
    client?.close();
    await mesh?.close();
  });

  const infer = (req: ModelInferRequest) => unary<ModelInferResponseOut>((cb) => client.ModelInfer(req, cb));
  const live = () => unary<{ live: boolean }>((cb) => client.ServerLive({}, cb));

  it('gives every concurrent caller its own rows; inputs that disagree on rows are refused and hurt nobody', async () => {
    let wellFormed = 0;
    let failed = 0;
    let foreign = 0;
    let refused = 0;
    const caller = async (c: number) => {
      for (let i = 0; i < CALLS; i++) {
        // Values no other call uses: caller, call and element in the digits.
        const base = c * 100_000 + i * 100;
        const a = [base + 1, base + 2, base + 3, base + 4];
        const b = [base + 50, base + 60, base + 70, base + 80];
        if (i % 10 === 3) {
          // One call in ten: INPUT1 with 0 or 3 rows beside INPUT0's one.
          const rows = i % 20 === 3 ? 0 : 3;
          const err = await infer({
            model_name: MODEL, id: `${c}-${i}`,
            inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 4] }, { name: 'INPUT1', datatype: 'FP32', shape: [rows, 4] }],
            raw_input_contents: [f32(a), f32(Array.from({ length: rows * 4 }, (_, k) => base + 90 + k))],
          }).then(() => undefined, (e: grpc.ServiceError) => e);
          expect(err).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: `inputs disagree on the batch (first) dimension: 'INPUT0' has 1, 'INPUT1' has ${rows}` });
          refused++;
          continue;
        }
        wellFormed++;
        const res = await infer({
          model_name: MODEL, id: `${c}-${i}`,
          inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 4] }, { name: 'INPUT1', datatype: 'FP32', shape: [1, 4] }],
          raw_input_contents: [f32(a), f32(b)],
        }).catch(() => undefined);
        if (!res) {
          failed++;
          continue;
        }
        const sum = floats(res.raw_output_contents[0]!);
        const difference = floats(res.raw_output_contents[1]!);
        const mine = res.id === `${c}-${i}` && res.outputs.every((o) => o.shape.join() === '1,4')
          && sum.join() === a.map((x, k) => x + b[k]!).join() && difference.join() === a.map((x, k) => x - b[k]!).join();
        if (!mine) foreign++;
      }
    };
    await Promise.all(Array.from({ length: CALLERS }, (_, c) => caller(c)));
    expect({ wellFormed, failed, foreign, refused }).toEqual({ wellFormed: CALLERS * CALLS * 0.9, failed: 0, foreign: 0, refused: CALLERS * CALLS * 0.1 });
    // The callers did share runs: the property held under batching, not beside it.
    const stats = await unary<{ model_stats: ModelStatistics__Output[] }>((cb) => client.ModelStatistics({ name: MODEL, version: '' }, cb));
    const shared = stats.model_stats[0]!.batch_stats.filter((b) => Number(b.batch_size) > 1);
    expect(shared.length).toBeGreaterThan(0);
  });

  it('batches the callers of a model flattened as PyTorch exports it, and answers each exactly as alone', async () => {
    const call = (id: string, x: number[]) => infer({
      model_name: FLATTEN_MODEL, id, inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 2, 4] }], raw_input_contents: [f32(x)],
    });
    // Eight callers' rows, one of them NaN and 1e30, each asked alone first.
    const rows = Array.from({ length: 8 }, (_, k) => Array.from({ length: 8 }, (_, i) => (k === 3 ? (i === 0 ? NaN : 1e30) : (k + 1) * 0.1 * (i - 3))));
    const alone: number[][] = [];
    for (const [k, x] of rows.entries()) alone.push(floats((await call(`alone-${k}`, x)).raw_output_contents[0]!));
    const before = (await unary<{ model_stats: ModelStatistics__Output[] }>((cb) => client.ModelStatistics({ name: FLATTEN_MODEL, version: '' }, cb))).model_stats[0]!;
    expect(Number(before.execution_count)).toBe(Number(before.inference_count));
    for (let round = 0; round < 5; round++) {
      const answers = await Promise.all(rows.map((x, k) => call(`${round}-${k}`, x)));
      expect(answers.map((r) => [r.id, r.outputs[0]!.shape.map(Number), floats(r.raw_output_contents[0]!)])).toEqual(rows.map((_, k) => [`${round}-${k}`, [1, 3], alone[k]]));
    }
    // The callers did share runs: fewer runs than inferences.
    const after = (await unary<{ model_stats: ModelStatistics__Output[] }>((cb) => client.ModelStatistics({ name: FLATTEN_MODEL, version: '' }, cb))).model_stats[0]!;
    expect(Number(after.inference_count) - Number(before.inference_count)).toBe(40);
    expect(Number(after.execution_count) - Number(before.execution_count)).toBeLessThan(40);
  });

  /** 33 million `inputs` entries of two bytes each (field 5, length 0): 66 MB, under the 64 MiB limit. */
  const hugeRequest = () => {
    const b = Buffer.alloc(66_000_000);
    for (let i = 0; i < b.length; i += 2) b[i] = 0x2a;
    return b;
  };
  const identity = (b: Buffer) => b;

  it('never hands one caller\'s NaN to another: a model that sums over the batch is not batched by default', async () => {
    const call = (id: string, a: number[]) => infer({
      model_name: SLOW_MODEL, id,
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 4] }, { name: 'INPUT1', datatype: 'FP32', shape: [1, 4] }],
      raw_input_contents: [f32(a), f32([1, 1, 1, 1])],
    });
    for (let round = 0; round < 3; round++) {
      // One call runs while the others wait in the version's queue, where a batching version joins them.
      const first = call('first', [1, 2, 3, 4]);
      const rest = await Promise.all([call('a', [1, 2, 3, 4]), call('nan', [NaN, NaN, NaN, NaN]), call('b', [5, 6, 7, 8]), call('c', [1, 2, 3, 4])]);
      const answers = [await first, ...rest];
      const sums = answers.map((r) => [r.id, floats(r.raw_output_contents[0]!)]);
      expect(sums).toEqual([
        ['first', [2, 3, 4, 5]], ['a', [2, 3, 4, 5]], ['nan', [NaN, NaN, NaN, NaN]], ['b', [6, 7, 8, 9]], ['c', [2, 3, 4, 5]],
      ]);
    }
  });

  it('refuses 33 million empty inputs before decoding them, at the front door and through grpc-js (gzip), and keeps serving', async () => {
    const huge = hugeRequest();
    for (const options of [{}, { 'grpc.default_compression_algorithm': 2 }]) {
      const raw = new grpc.Client(address, grpc.credentials.createInsecure(), options);
      try {
        const err = await new Promise<grpc.ServiceError | null>((resolve) =>
          raw.makeUnaryRequest(MODEL_INFER_PATH, identity, identity, huge, (e) => resolve(e)));
        expect(err).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: 'request has more than the limit of 1024 inputs' });
      } finally {
        raw.close();
      }
      expect(await live()).toEqual({ live: true });
    }
    const res = await infer({
      model_name: MODEL,
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 4] }, { name: 'INPUT1', datatype: 'FP32', shape: [1, 4] }],
      raw_input_contents: [f32([1, 2, 3, 4]), f32([4, 3, 2, 1])],
    });
    expect(floats(res.raw_output_contents[0]!)).toEqual([5, 5, 5, 5]);
  });

  /**
   * A ModelInfer to identity-int64 whose INPUT0 [1, n] holds n packed int64 zeros, one byte each:
   * 66 million (66 MB) of them would cost protobufjs gigabytes of heap, a JS value each.
   */
  const packedZerosRequest = (n: number) => {
    const varint = (v: number) => {
      const out: number[] = [];
      for (; v >= 0x80; v = Math.floor(v / 0x80)) out.push((v % 0x80) | 0x80);
      out.push(v);
      return Buffer.from(out);
    };
    const encoded = protos().inference.GRPCInferenceService.service.ModelInfer
      .requestSerialize({ model_name: INT64_MODEL, inputs: [{ name: 'INPUT0', datatype: 'INT64', shape: [1, n] }] });
    // model_name (tag, length, name), then inputs (tag 0x2a, length, body): the body gets contents appended.
    const model = encoded.subarray(0, 2 + INT64_MODEL.length);
    const inputBody = encoded.subarray(model.length + 1 + varint(encoded.length - model.length - 2).length);
    // contents (field 5) { int64_contents (field 3, packed): n zero bytes }
    const int64Contents = Buffer.concat([Buffer.from([0x1a]), varint(n)]);
    const contents = Buffer.concat([Buffer.from([0x2a]), varint(int64Contents.length + n), int64Contents]);
    const input = Buffer.concat([Buffer.from([0x2a]), varint(inputBody.length + contents.length + n), inputBody, contents]);
    return Buffer.concat([model, input, Buffer.alloc(n)]);
  };

  it('refuses 66 million packed int64 zeros before decoding them, at the front door and through grpc-js (gzip), and keeps serving', async () => {
    // The bytes are the request they claim to be (protobufjs decodes a short one so).
    const short = protos().inference.GRPCInferenceService.service.ModelInfer.requestDeserialize(packedZerosRequest(3));
    expect(short).toMatchObject({ model_name: INT64_MODEL, inputs: [{ name: 'INPUT0', datatype: 'INT64', shape: ['1', '3'], contents: { int64_contents: ['0', '0', '0'] } }] });
    const huge = packedZerosRequest(66_000_000);
    for (const options of [{}, { 'grpc.default_compression_algorithm': 2 }]) {
      const raw = new grpc.Client(address, grpc.credentials.createInsecure(), options);
      try {
        const err = await new Promise<grpc.ServiceError | null>((resolve) =>
          raw.makeUnaryRequest(MODEL_INFER_PATH, identity, identity, huge, (e) => resolve(e)));
        expect(err).toMatchObject({
          code: grpc.status.INVALID_ARGUMENT,
          details: "tensor 'INPUT0': the request's typed contents pass the limit of 4194304 elements (send large tensors in raw_input_contents)",
        });
      } finally {
        raw.close();
      }
      expect(await live()).toEqual({ live: true });
    }
    const res = await infer({ model_name: INT64_MODEL, inputs: [{ name: 'INPUT0', datatype: 'INT64', shape: [1, 3], contents: { int64_contents: [7, 0, -2] } }] });
    expect(res.outputs[0]?.contents?.int64_contents).toEqual(['7', '0', '-2']);
  });

  it('answers such a request in a stream in-band, with triton_final_response, and the stream goes on', async () => {
    const raw = new grpc.Client(address, grpc.credentials.createInsecure());
    const method = '/inference.GRPCInferenceService/ModelStreamInfer';
    const codec = protos().inference.GRPCInferenceService.service.ModelStreamInfer;
    const call = raw.makeBidiStreamRequest(method, identity, codec.responseDeserialize);
    const answers: { error_message: string; infer_response: ModelInferResponseOut | null }[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (a) => answers.push(a));
      call.on('end', resolve);
      call.on('error', reject);
    });
    call.write(hugeRequest());
    call.write(codec.requestSerialize({
      model_name: MODEL, id: 'after',
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 4] }, { name: 'INPUT1', datatype: 'FP32', shape: [1, 4] }],
      raw_input_contents: [f32([1, 2, 3, 4]), f32([1, 1, 1, 1])],
    }));
    call.end();
    await done;
    raw.close();
    const refused = answers.find((a) => a.error_message !== '');
    const after = answers.find((a) => a.infer_response?.id === 'after' && a.error_message === '');
    expect(refused?.error_message).toBe('request has more than the limit of 1024 inputs');
    expect(refused?.infer_response?.parameters.triton_final_response).toMatchObject({ bool_param: true });
    expect(floats(after!.infer_response!.raw_output_contents[0]!)).toEqual([2, 3, 4, 5]);
    expect(after!.infer_response!.parameters.triton_final_response).toMatchObject({ bool_param: true });
    expect(await live()).toEqual({ live: true });
  });
});
