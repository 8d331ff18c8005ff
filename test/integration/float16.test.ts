// FP16 through a real pod and the router, on whichever Node line runs the tests: raw halves come
// back bit for bit (infinities, NaN, subnormals, −0), the client's numbers become the nearest
// halves, and a model computes on them (add/sub), so onnxruntime really read the tensor.
import { InferenceApi } from '../../client/index';
import { halfBitsOf, halfValueOf, numbersOfHalves } from '../../lib/tensor';
import type { ModelInferResponseOut } from '../../lib/grpc/types';
import { startTestMesh, waitReady, inferenceClient, unary, type TestMesh } from '../helpers/mesh';
import { startTestRouter } from '../helpers/services';
import { waitFor } from '../helpers/wait';
import type { RouterService } from '../../services/router/router-service';

jest.setTimeout(120_000);

/** Bit patterns whose exact return proves nothing on the way rounds, canonicalizes or flushes. */
const SPECIAL = [
  0x7c00, 0xfc00, // +∞, −∞
  0x7e00, 0xfe00, // quiet NaN, negative quiet NaN
  0x0001, 0x8001, 0x03ff, // smallest subnormals, largest subnormal
  0x0400, 0x7bff, 0xfbff, // smallest normal, largest finite, most negative finite
  0x8000, 0x0000, // −0, +0
  0x3c00, 0x3555, // 1, about 1/3
  0xc000, 0x5640, // −2, 100
];

const rawHalves = (bits: readonly number[]) => Buffer.from(Uint16Array.from(bits).buffer);
const halvesOfRaw = (b: Buffer) => Array.from(new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));

describe('FP16', () => {
  let mesh: TestMesh;
  let router: RouterService;
  let addresses: Record<'pod' | 'router', string>;

  beforeAll(async () => {
    mesh = await startTestMesh();
    const pod = await mesh.startPod();
    await mesh.push('identity-fp16', 'fixtures/identity_fp16.onnx');
    await mesh.push('add-sub-fp16', 'fixtures/add_sub_fp16.onnx');
    const podClient = inferenceClient(`127.0.0.1:${pod.port}`);
    await waitReady(podClient, ['identity-fp16', 'add-sub-fp16']);
    podClient.close();
    router = await startTestRouter(mesh.nats.url, mesh.registry.port);
    await waitFor('the router to know the pod', () => router.membership.candidates('add-sub-fp16', 1).length === 1);
    addresses = { pod: `127.0.0.1:${pod.port}`, router: `127.0.0.1:${router.port}` };
  });

  afterAll(async () => {
    await router?.shutdown(5_000);
    await mesh?.close();
  });

  describe.each(['pod', 'router'] as const)('through the %s', (via) => {
    it('returns every special half bit for bit', async () => {
      const client = inferenceClient(addresses[via]);
      try {
        const bits = SPECIAL.slice(0, 16);
        const res = await unary<ModelInferResponseOut>((cb) => client.ModelInfer({
          model_name: 'identity-fp16',
          inputs: [{ name: 'INPUT0', datatype: 'FP16', shape: [bits.length / 4, 4] }],
          raw_input_contents: [rawHalves(bits)],
        }, cb));
        expect(res.outputs[0]).toMatchObject({ name: 'OUTPUT0', datatype: 'FP16', shape: ['4', '4'] });
        expect(halvesOfRaw(res.raw_output_contents[0]!).map((b) => b.toString(16))).toEqual(bits.map((b) => b.toString(16)));
      } finally {
        client.close();
      }
    });

    it('computes on the halves a client sends as numbers', async () => {
      const api = new InferenceApi(addresses[via]);
      try {
        const a = [1.5, -2, 65504, 2 ** -24, -0, Infinity, 0.1, 1 / 3];
        const b = [0.25, 0.5, 65504, 2 ** -24, 0, 1, 0.2, 1 / 3];
        const res = await api.infer('add-sub-fp16', [
          { name: 'INPUT0', datatype: 'FP16', shape: [2, 4], data: a },
          { name: 'INPUT1', datatype: 'FP16', shape: [2, 4], data: b },
        ]);
        const half = (x: number) => halfValueOf(halfBitsOf(x));
        const out = Object.fromEntries(res.outputs.map((o) => [o.name, numbersOfHalves(o.data as Uint16Array)]));
        // Each half rounded once more after the exact sum or difference, as onnxruntime does.
        expect(out.OUTPUT0).toEqual(a.map((x, i) => half(half(x) + half(b[i]!))));
        expect(out.OUTPUT1).toEqual(a.map((x, i) => half(half(x) - half(b[i]!))));
        // 65504 + 65504 overflows to ∞; −0 − 0 stays −0.
        expect(out.OUTPUT0![2]).toBe(Infinity);
        expect(Object.is(out.OUTPUT1![4], -0)).toBe(true);
      } finally {
        api.close();
      }
    });
  });
});
