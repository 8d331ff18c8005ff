// An inference pod serving the whole protocol, against a real registry and NATS: every datatype in
// raw and typed form, validation with the right status, requested outputs, metadata, statistics,
// the repository index and streams; bad requests never poison good ones.
import type { InferenceService } from '../../services/inference/inference-service';
import * as grpc from '@grpc/grpc-js';
import { DATATYPES, type Datatype } from '../../lib/tensor';
import { MAX_STATUS_MESSAGE_CHARS } from '../../lib/errors';
import type { InferenceClient, ModelInferRequest, ModelInferResponseOut, ModelMetadataResponseOut } from '../../lib/grpc/types';
import { decodeOutputs } from '../../client/index';
import type { ModelConfigResponse__Output } from '../../lib/grpc/generated/inference/ModelConfigResponse';
import type { ModelStatistics__Output } from '../../lib/grpc/generated/inference/ModelStatistics';
import { startTestMesh, waitReady, inferenceClient, unary, type TestMesh } from '../helpers/mesh';

jest.setTimeout(180_000);

const ALL = Object.keys(DATATYPES) as Datatype[];
const NUMERIC = ALL.filter((d) => d !== 'BOOL' && d !== 'BYTES');

/** 2×3 sample values per datatype, as the typed-contents field holds them. */
function sample(dt: Datatype): unknown[] {
  switch (dt) {
    case 'BOOL': return [true, false, true, false, false, true];
    case 'BYTES': return ['a', '', 'héllo', 'x y', '0', 'last'].map((s) => Buffer.from(s));
    case 'INT64': return ['-9223372036854775808', '-1', '0', '1', '42', '9223372036854775807'];
    case 'UINT64': return ['0', '1', '2', '42', '9007199254740993', '18446744073709551615'];
    case 'FP32': case 'FP64': return [1.5, -2.25, 0, 3.125, 1e10, -7];
    case 'INT8': return [-128, -1, 0, 1, 64, 127];
    case 'INT16': return [-32768, -1, 0, 1, 300, 32767];
    case 'INT32': return [-2147483648, -1, 0, 1, 70000, 2147483647];
    case 'UINT8': return [0, 1, 2, 100, 200, 255];
    case 'UINT16': return [0, 1, 2, 300, 40000, 65535];
    case 'UINT32': return [0, 1, 2, 70000, 3000000000, 4294967295];
    case 'FP16': return [0x3c00, 0xc000, 0, 0x3800, 0x4200, 0x7bff];
  }
}

/** Raw little-endian bytes of a sample. */
function rawOf(dt: Datatype, values: unknown[]): Buffer {
  if (dt === 'BYTES') return Buffer.concat((values as Buffer[]).flatMap((b) => [Buffer.from(new Uint32Array([b.length]).buffer), b]));
  const info = DATATYPES[dt];
  const buf = Buffer.alloc(values.length * info.bytes);
  values.forEach((v, i) => {
    const o = i * info.bytes;
    switch (dt) {
      case 'BOOL': buf.writeUInt8(v ? 1 : 0, o); break;
      case 'UINT8': buf.writeUInt8(v as number, o); break;
      case 'INT8': buf.writeInt8(v as number, o); break;
      case 'UINT16': case 'FP16': buf.writeUInt16LE(v as number, o); break;
      case 'INT16': buf.writeInt16LE(v as number, o); break;
      case 'UINT32': buf.writeUInt32LE(v as number, o); break;
      case 'INT32': buf.writeInt32LE(v as number, o); break;
      case 'UINT64': buf.writeBigUInt64LE(BigInt(v as string), o); break;
      case 'INT64': buf.writeBigInt64LE(BigInt(v as string), o); break;
      case 'FP32': buf.writeFloatLE(v as number, o); break;
      case 'FP64': buf.writeDoubleLE(v as number, o); break;
    }
  });
  return buf;
}

const modelName = (kind: string, dt: Datatype) => `${kind}-${dt.toLowerCase()}`;

describe('inference pod', () => {
  let mesh: TestMesh;
  let client: InferenceClient;
  let address: string;
  let pod: InferenceService;
  const infer = (req: ModelInferRequest, opts: grpc.CallOptions = {}) => unary<ModelInferResponseOut>((cb) => client.ModelInfer(req, opts, cb));
  const statusOf = async (req: ModelInferRequest) => {
    const err = (await infer(req).then(() => undefined, (e: unknown) => e)) as grpc.ServiceError | undefined;
    return err ? { code: err.code, details: err.details } : { code: 0, details: '' };
  };

  beforeAll(async () => {
    mesh = await startTestMesh();
    // GPUs first, as in production: where CUDA's binaries and a WebGPU adapter are missing (no GPU
    // here), the pod falls back to cpu and reports it.
    pod = await mesh.startPod({ INFERMESH_EXECUTION_PROVIDERS: 'cuda,webgpu,cpu' });
    address = `127.0.0.1:${pod.port}`;
    client = inferenceClient(address);
    for (const dt of ALL) await mesh.push(modelName('identity', dt), `fixtures/identity_${dt.toLowerCase()}.onnx`);
    for (const dt of NUMERIC) await mesh.push(modelName('add-sub', dt), `fixtures/add_sub_${dt.toLowerCase()}.onnx`);
    await waitReady(client, [...ALL.map((d) => modelName('identity', d)), ...NUMERIC.map((d) => modelName('add-sub', d))]);
  });

  afterAll(async () => {
    client?.close();
    await mesh?.close();
  });

  describe.each(ALL)('%s', (dt) => {
    const values = sample(dt);
    const field = DATATYPES[dt].contents;

    it('round-trips raw contents and answers raw', async () => {
      const res = await infer({
        model_name: modelName('identity', dt), id: `raw-${dt}`,
        inputs: [{ name: 'INPUT0', datatype: dt, shape: [2, 3] }],
        raw_input_contents: [rawOf(dt, values)],
      });
      expect(res).toMatchObject({ model_name: modelName('identity', dt), model_version: '1', id: `raw-${dt}` });
      expect(res.outputs[0]).toMatchObject({ name: 'OUTPUT0', datatype: dt, shape: ['2', '3'] });
      expect(res.raw_output_contents).toHaveLength(1);
      expect(Buffer.compare(res.raw_output_contents[0]!, rawOf(dt, values))).toBe(0);
    });

    if (field) {
      it('round-trips typed contents and answers typed', async () => {
        const res = await infer({
          model_name: modelName('identity', dt),
          inputs: [{ name: 'INPUT0', datatype: dt, shape: [2, 3], contents: { [field]: values } }],
        });
        expect(res.raw_output_contents).toEqual([]);
        const got = res.outputs[0]!.contents![field] as unknown[];
        expect(got.map(String)).toEqual(values.map(String));
      });
    } else {
      it('refuses typed contents (the protocol has none for it)', async () => {
        const s = await statusOf({ model_name: modelName('identity', dt), inputs: [{ name: 'INPUT0', datatype: dt, shape: [1, 1], contents: { fp32_contents: [1] } }] });
        expect(s).toEqual({ code: grpc.status.INVALID_ARGUMENT, details: `tensor 'INPUT0': ${dt} has no typed contents in the protocol; send it in raw_input_contents` });
      });
    }
  });

  it.each(NUMERIC.filter((d) => d !== 'FP16'))('computes add/sub for %s, returning only the outputs asked for', async (dt) => {
    const a = [1, 2, 3, 4];
    const b = [1, 1, 2, 3];
    const field = DATATYPES[dt].contents!;
    const asField = (v: number[]) => (dt === 'INT64' || dt === 'UINT64' ? v.map(String) : v);
    const both = await infer({
      model_name: modelName('add-sub', dt),
      inputs: [
        { name: 'INPUT0', datatype: dt, shape: [1, 4], contents: { [field]: asField(a) } },
        { name: 'INPUT1', datatype: dt, shape: [1, 4], contents: { [field]: asField(b) } },
      ],
    });
    expect(both.outputs.map((o) => o.name)).toEqual(['OUTPUT0', 'OUTPUT1']);
    expect((both.outputs[0]!.contents![field] as unknown[]).map(Number)).toEqual([2, 3, 5, 7]);
    expect((both.outputs[1]!.contents![field] as unknown[]).map(Number)).toEqual([0, 1, 1, 1]);
    const subOnly = await infer({
      model_name: modelName('add-sub', dt),
      inputs: [
        { name: 'INPUT0', datatype: dt, shape: [1, 4], contents: { [field]: asField(a) } },
        { name: 'INPUT1', datatype: dt, shape: [1, 4], contents: { [field]: asField(b) } },
      ],
      outputs: [{ name: 'OUTPUT1' }],
    });
    expect(subOnly.outputs.map((o) => o.name)).toEqual(['OUTPUT1']);
  });

  const good = (): ModelInferRequest => ({
    model_name: 'add-sub-fp32',
    inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 4] }, { name: 'INPUT1', datatype: 'FP32', shape: [1, 4] }],
    raw_input_contents: [rawOf('FP32', [1, 2, 3, 4]), rawOf('FP32', [4, 3, 2, 1])],
  });
  const INVALID = grpc.status.INVALID_ARGUMENT;
  const cases: [string, () => ModelInferRequest, number, string][] = [
    ['an unknown model', () => ({ ...good(), model_name: 'nope' }), grpc.status.NOT_FOUND, "model 'nope' not found"],
    ['an unknown version', () => ({ ...good(), model_version: '9' }), grpc.status.NOT_FOUND, "model 'add-sub-fp32' has no version 9"],
    ['a missing input', () => ({ ...good(), inputs: good().inputs!.slice(0, 1), raw_input_contents: good().raw_input_contents!.slice(0, 1) }), INVALID, "tensor 'INPUT1': input is missing"],
    ['an unknown input', () => ({ ...good(), inputs: [good().inputs![0]!, { name: 'EXTRA', datatype: 'FP32', shape: [1, 4] }] }), INVALID, "tensor 'EXTRA': unknown input; the model's inputs are INPUT0, INPUT1"],
    ['a duplicate input', () => ({ ...good(), inputs: [good().inputs![0]!, good().inputs![0]!] }), INVALID, "tensor 'INPUT0': input given more than once"],
    ['a wrong datatype', () => ({ ...good(), inputs: [{ name: 'INPUT0', datatype: 'FP64', shape: [1, 4] }, good().inputs![1]!] }), INVALID, "tensor 'INPUT0': datatype FP64 does not match the model's FP32"],
    ['an unknown datatype', () => ({ ...good(), inputs: [{ name: 'INPUT0', datatype: 'FP8', shape: [1, 4] }, good().inputs![1]!] }), INVALID, "tensor 'INPUT0': unknown datatype 'FP8'"],
    ['a wrong rank', () => ({ ...good(), inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [4] }, good().inputs![1]!] }), INVALID, "tensor 'INPUT0': shape [4] has rank 1, but the model expects rank 2 [-1,4]"],
    ['a wrong dimension', () => ({ ...good(), inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [2, 2] }, good().inputs![1]!] }), INVALID, "tensor 'INPUT0': shape [2,2] does not match the model's [-1,4] at dimension 1"],
    ['a byte length that does not match the shape', () => ({ ...good(), raw_input_contents: [Buffer.alloc(12), good().raw_input_contents![1]!] }), INVALID, "tensor 'INPUT0': raw content has 12 bytes, but shape [1,4] of FP32 needs 16"],
    ['both raw and typed contents', () => ({ ...good(), inputs: [{ ...good().inputs![0]!, contents: { fp32_contents: [1, 2, 3, 4] } }, good().inputs![1]!] }), INVALID, "tensor 'INPUT0': has both raw_input_contents and contents; send one"],
    ['a raw content count that does not match the inputs', () => ({ ...good(), raw_input_contents: good().raw_input_contents!.slice(0, 1) }), INVALID, 'raw_input_contents has 1 entries for 2 inputs'],
    ['a negative dimension', () => ({ ...good(), inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [-1, 4] }, good().inputs![1]!] }), INVALID, "tensor 'INPUT0': shape [-1,4] has an invalid dimension -1"],
    ['an absurd dimension', () => ({ ...good(), inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: ['4000000000000', 4] }, good().inputs![1]!] }), INVALID, "tensor 'INPUT0': shape [4000000000000,4] has a dimension 4000000000000 above the limit of 67108864"],
    ['an unknown requested output', () => ({ ...good(), outputs: [{ name: 'OUTPUT9' }] }), INVALID, "tensor 'OUTPUT9': unknown output; the model's outputs are OUTPUT0, OUTPUT1"],
    ['a version that is not a number', () => ({ ...good(), model_version: 'latest' }), INVALID, "model version 'latest' is not a version number"],
  ];

  it.each(cases)('rejects %s with a clear status', async (_name, make, code, details) => {
    expect(await statusOf(make())).toEqual({ code, details });
  });

  it('answers a refusal that repeats a long input name, its message cut to MAX_STATUS_MESSAGE_CHARS', async () => {
    // Whole, the message (percent-encoded in the trailers) passed the client's 8 KiB of metadata:
    // it never arrived, and the call waited for its deadline.
    const name = 'x'.repeat(100_000);
    const { code, details } = await statusOf({ ...good(), inputs: [good().inputs![0]!, { name, datatype: 'FP32', shape: [1, 4] }] });
    expect({ code, length: details.length }).toEqual({ code: INVALID, length: MAX_STATUS_MESSAGE_CHARS });
    expect(details).toMatch(/^tensor 'x+…$/);
  });

  it('keeps answering good requests after many bad ones', async () => {
    const bad = await Promise.all(Array.from({ length: 200 }, (_, i) => statusOf(cases[i % cases.length]![1]())));
    expect(bad.every((s) => s.code !== 0 && s.code !== grpc.status.INTERNAL)).toBe(true);
    const res = await infer(good());
    expect(decodeOutputs(res).map((o) => Array.from(o.data as Float32Array))).toEqual([[5, 5, 5, 5], [-3, -1, 1, 3]]);
  });

  it('answers bytes that are not a request INVALID_ARGUMENT, and a compressed request like any other', async () => {
    const raw = new grpc.Client(address, grpc.credentials.createInsecure());
    const identity = (b: Buffer) => b;
    // Field 15 (unknown, so skipped) with wire type 7, which protobuf does not have.
    const malformed = await new Promise<grpc.ServiceError | null>((resolve) =>
      raw.makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', identity, identity, Buffer.from([0x7f, 0x01]), (err) => resolve(err)));
    raw.close();
    expect(malformed).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/^malformed request/) });
    const gzip = inferenceClient(address, { channel: { 'grpc.default_compression_algorithm': 2 } });
    try {
      const res = await unary<ModelInferResponseOut>((cb) => gzip.ModelInfer(good(), cb));
      expect(decodeOutputs(res).map((o) => Array.from(o.data as Float32Array))).toEqual([[5, 5, 5, 5], [-3, -1, 1, 3]]);
    } finally {
      gzip.close();
    }
  });

  it('reports metadata with -1 for dynamic dimensions, the platform and the versions', async () => {
    const md = await unary<ModelMetadataResponseOut>((cb) => client.ModelMetadata({ name: 'add-sub-fp32', version: '' }, cb));
    expect(md).toEqual({
      name: 'add-sub-fp32', versions: ['1'], platform: 'onnxruntime_onnx',
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: ['-1', '4'] }, { name: 'INPUT1', datatype: 'FP32', shape: ['-1', '4'] }],
      outputs: [{ name: 'OUTPUT0', datatype: 'FP32', shape: ['-1', '4'] }, { name: 'OUTPUT1', datatype: 'FP32', shape: ['-1', '4'] }],
      // No GPU here: the pod asked for cuda first, fell back, and says so.
      properties: { execution_provider: 'cpu', max_batch_size: '64' },
    });
    await expect(unary((cb) => client.ModelMetadata({ name: 'nope', version: '' }, cb))).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    expect(await unary((cb) => client.ModelReady({ name: 'add-sub-fp32', version: '1' }, cb))).toEqual({ ready: true });
    expect(await unary((cb) => client.ModelReady({ name: 'add-sub-fp32', version: '2' }, cb))).toEqual({ ready: false });
    const server = await unary<{ name: string; version: string; extensions: string[] }>((cb) => client.ServerMetadata({}, cb));
    expect(server.name).toBe('infermesh');
    expect(server.extensions).toEqual(expect.arrayContaining(['model_configuration', 'statistics']));
    expect(await unary((cb) => client.ServerLive({}, cb))).toEqual({ live: true });
    expect(await unary((cb) => client.ServerReady({}, cb))).toEqual({ ready: true });
  });

  it('answers ModelConfig in Triton\'s form: dims without the batch dimension when it batches', async () => {
    // The rows it runs on the pod's thread come from timings, which a later timing may raise.
    const inlineRows = () => pod.repo.serving('add-sub-fp32', '', '').pool.inlineRows;
    const rowsBefore = inlineRows();
    const res = await unary<ModelConfigResponse__Output>((cb) => client.ModelConfig({ name: 'add-sub-fp32', version: '' }, cb));
    const reported = Number(res.config?.parameters?.inline_max_rows?.string_value);
    expect(reported).toBeGreaterThanOrEqual(rowsBefore);
    expect(reported).toBeLessThanOrEqual(inlineRows());
    expect(res.config).toEqual({
      name: 'add-sub-fp32', platform: 'onnxruntime_onnx', backend: 'onnxruntime', max_batch_size: 64,
      input: [
        { name: 'INPUT0', data_type: 'TYPE_FP32', format: 'FORMAT_NONE', dims: ['4'] },
        { name: 'INPUT1', data_type: 'TYPE_FP32', format: 'FORMAT_NONE', dims: ['4'] },
      ],
      output: [{ name: 'OUTPUT0', data_type: 'TYPE_FP32', dims: ['4'] }, { name: 'OUTPUT1', data_type: 'TYPE_FP32', dims: ['4'] }],
      instance_group: [{ name: 'add-sub-fp32_0', count: 1, kind: 'KIND_CPU' }],
      // Its runs take microseconds: one intra-op thread, whatever the machine's cores.
      parameters: { intra_op_thread_count: { string_value: '1' }, intra_op_spinning: { string_value: 'on' }, inline_max_rows: { string_value: String(reported) } },
      dynamic_batching: { preferred_batch_size: [], max_queue_delay_microseconds: '500', preserve_ordering: false, default_queue_policy: { max_queue_size: 1024 } },
      scheduling_choice: 'dynamic_batching',
    });
    const bytes = await unary<ModelConfigResponse__Output>((cb) => client.ModelConfig({ name: modelName('identity', 'BYTES'), version: '1' }, cb));
    expect(bytes.config!.input).toEqual([{ name: 'INPUT0', data_type: 'TYPE_STRING', format: 'FORMAT_NONE', dims: ['-1'] }]);
    await expect(unary((cb) => client.ModelConfig({ name: 'nope', version: '' }, cb))).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await expect(unary((cb) => client.ModelConfig({ name: 'add-sub-fp32', version: '7' }, cb))).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it('counts successes and failures per version in ModelStatistics', async () => {
    type Stats = { model_stats: ModelStatistics__Output[] };
    const before = await unary<Stats>((cb) => client.ModelStatistics({ name: 'add-sub-fp32', version: '1' }, cb));
    await infer(good());
    await statusOf({ ...good(), inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [2, 2] }, good().inputs![1]!] });
    const after = await unary<Stats>((cb) => client.ModelStatistics({ name: 'add-sub-fp32', version: '1' }, cb));
    const [b, a] = [before.model_stats[0]!, after.model_stats[0]!];
    expect(a).toMatchObject({ name: 'add-sub-fp32', version: '1' });
    const count = (s: ModelStatistics__Output, k: 'success' | 'fail') => Number(s.inference_stats?.[k]?.count);
    expect(count(a, 'success') - count(b, 'success')).toBe(1);
    expect(count(a, 'fail') - count(b, 'fail')).toBe(1);
    expect(Number(a.inference_count) - Number(b.inference_count)).toBe(1);
    expect(Number(a.inference_stats?.success?.ns)).toBeGreaterThan(0);
  });

  it('lists models, versions and states in RepositoryIndex', async () => {
    const idx = await unary<{ models: { name: string; version: string; state: string }[] }>((cb) => client.RepositoryIndex({ repository_name: '', ready: true }, cb));
    expect(idx.models).toContainEqual({ name: 'add-sub-fp32', version: '1', state: 'READY', reason: '' });
    expect(idx.models).toHaveLength(ALL.length + NUMERIC.length);
  });

  it('serves a bidirectional ModelStreamInfer stream, errors in-band, every answer marked triton_final_response', async () => {
    const stream = client.ModelStreamInfer();
    const responses: { error_message: string; infer_response: ModelInferResponseOut | null }[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (r) => responses.push(r));
      stream.on('end', () => resolve());
      stream.on('error', reject);
    });
    // As tritonclient's async_stream_infer(enable_empty_final_response=True) sends it.
    const asked = { triton_enable_empty_final_response: { bool_param: true } };
    stream.write({ ...good(), id: 'a', parameters: asked });
    stream.write({ ...good(), id: 'b', model_name: 'nope', parameters: asked });
    stream.write({ ...good(), id: 'c' });
    stream.end();
    await done;
    expect(responses).toHaveLength(3);
    const byId = Object.fromEntries(responses.map((r) => [r.infer_response!.id, r]));
    expect(byId.a!.error_message).toBe('');
    expect(byId.b!.error_message).toBe("model 'nope' not found");
    expect(decodeOutputs(byId.c!.infer_response!)[0]!.data).toEqual(new Float32Array([5, 5, 5, 5]));
    // A model that is not decoupled answers each request once: that answer is the final one (Triton).
    for (const r of responses) expect(r.infer_response!.parameters.triton_final_response).toMatchObject({ bool_param: true, parameter_choice: 'bool_param' });
  });

  describe('BYTES', () => {
    const bytesModel = modelName('identity', 'BYTES');
    const rawBytes = (elements: Buffer[]) => rawOf('BYTES', elements);
    const send = (elements: Buffer[], typed: boolean) => infer({
      model_name: bytesModel,
      inputs: [{ name: 'INPUT0', datatype: 'BYTES', shape: [1, elements.length], ...(typed ? { contents: { bytes_contents: elements } } : {}) }],
      raw_input_contents: typed ? [] : [rawBytes(elements)],
    });
    const returned = (res: ModelInferResponseOut, typed: boolean): Buffer[] => {
      if (typed) return res.outputs[0]!.contents!.bytes_contents;
      const raw = res.raw_output_contents[0]!;
      const out: Buffer[] = [];
      for (let off = 0; off < raw.length; off += 4 + raw.readUInt32LE(off)) out.push(raw.subarray(off + 4, off + 4 + raw.readUInt32LE(off)));
      return out;
    };

    it.each([['raw', false], ['typed', true]])('round-trips every byte value UTF-8 carries without NUL, byte for byte (%s)', async (_form, typed) => {
      const elements = Array.from({ length: 127 }, (_, i) => Buffer.of(i + 1));
      const res = await send(elements, typed as boolean);
      expect(res.outputs[0]!.shape).toEqual(['1', '127']);
      expect(returned(res, typed as boolean)).toEqual(elements);
      if (!typed) expect(res.raw_output_contents[0]!.equals(rawBytes(elements))).toBe(true);
    });

    it.each([['raw', false], ['typed', true]])('refuses every other byte value by tensor and element, never changing it (%s)', async (_form, typed) => {
      const refused = await Promise.all([0, ...Array.from({ length: 128 }, (_, i) => i + 128)].map(async (byte) => {
        const err = await send([Buffer.from('x'), Buffer.of(byte), Buffer.from('y')], typed as boolean).then(() => undefined, (e: grpc.ServiceError) => e);
        return { byte, code: err?.code, details: err?.details };
      }));
      for (const r of refused) {
        expect(r).toEqual({
          byte: r.byte,
          code: grpc.status.INVALID_ARGUMENT,
          details: r.byte === 0
            ? "tensor 'INPUT0': BYTES element 1 has a NUL byte at 0; onnxruntime's string tensors cannot carry it"
            : "tensor 'INPUT0': BYTES element 1 is not valid UTF-8; onnxruntime's string tensors cannot carry it",
        });
      }
    });

    it.each([['raw', false], ['typed', true]])('round-trips multi-byte UTF-8, a byte order mark, empty and large elements exactly (%s)', async (_form, typed) => {
      const large = Buffer.from('aé€𝄞'.repeat(400_000)); // 4 MB
      const elements = [Buffer.from('é'), Buffer.from('€'), Buffer.from('𝄞'), Buffer.from('\uFEFFbom'), Buffer.alloc(0), large, Buffer.alloc(0)];
      const res = await send(elements, typed as boolean);
      const back = returned(res, typed as boolean);
      expect(back.length).toBe(elements.length);
      back.forEach((b, i) => expect(b.equals(elements[i]!)).toBe(true));
    });
  });

  describe('classification (class_count)', () => {
    const request = (classification: Record<string, unknown>, typed = false): ModelInferRequest => ({
      model_name: 'add-sub-fp32',
      inputs: [
        { name: 'INPUT0', datatype: 'FP32', shape: [2, 4], ...(typed ? { contents: { fp32_contents: [1, 2, 3, 4, 0.5, 0.25, 0.125, 0.0625] } } : {}) },
        { name: 'INPUT1', datatype: 'FP32', shape: [2, 4], ...(typed ? { contents: { fp32_contents: [0, 0, 0, 0, 0, 0, 0, 0] } } : {}) },
      ],
      raw_input_contents: typed ? [] : [rawOf('FP32', [1, 2, 3, 4, 0.5, 0.25, 0.125, 0.0625]), rawOf('FP32', [0, 0, 0, 0, 0, 0, 0, 0])],
      outputs: [{ name: 'OUTPUT0', parameters: { classification } }, { name: 'OUTPUT1' }],
    });

    it.each([['raw', false], ['typed', true]])('answers the top k of each row as BYTES "<value>:<index>" (%s)', async (_form, typed) => {
      // tritonclient's InferRequestedOutput('OUTPUT0', class_count=2).
      const res = await infer(request({ int64_param: 2 }, typed as boolean));
      const [classes, difference] = decodeOutputs(res);
      expect(classes).toEqual({ name: 'OUTPUT0', datatype: 'BYTES', shape: [2, 2], data: ['4.000000:3', '3.000000:2', '0.500000:0', '0.250000:1'] });
      expect(difference).toMatchObject({ name: 'OUTPUT1', datatype: 'FP32', shape: [2, 4] });
    });

    it('refuses a count that is not a positive int64, by tensor', async () => {
      expect(await statusOf(request({ string_param: '2' }))).toEqual({ code: INVALID, details: "tensor 'OUTPUT0': invalid value type for the 'classification' parameter, expected int64_param" });
      expect(await statusOf(request({ int64_param: 0 }))).toEqual({ code: INVALID, details: "tensor 'OUTPUT0': invalid value 0 for the 'classification' parameter, expected > 0" });
    });
  });
});
