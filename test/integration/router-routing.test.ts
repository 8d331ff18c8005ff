// What the router adds to a call on its way to a pod, through a real router, real pods and real
// NATS: stream answers marked final as a pod marks them, a pod the router's view holds stale answered
// as retryable rather than NOT_FOUND, and the version header the router alone may set.
import * as grpc from '@grpc/grpc-js';
import type { Heartbeat } from '../../lib/events';
import { ROUTED_VERSION_HEADER } from '../../lib/grpc/client';
import type { ModelInferResponseOut } from '../../lib/grpc/types';
import { heldOutDigits } from '../../tools/models/mnist-data';
import type { InferenceService } from '../../services/inference/inference-service';
import type { RouterService } from '../../services/router/router-service';
import { inferenceClient, startTestMesh, unary, waitReady, type TestMesh } from '../helpers/mesh';
import { startTestRouter } from '../helpers/services';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

const digit = heldOutDigits(1)[0]!;
const mnistRequest = (id = '') => ({ id, model_name: 'mnist', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], contents: { fp32_contents: Array.from(digit.pixels) } }] });
type StreamAnswer = { error_message: string; infer_response: ModelInferResponseOut | null };

/** Writes `requests` on one ModelStreamInfer stream through `address` and resolves to every answer. */
async function stream(address: string, requests: object[]): Promise<StreamAnswer[]> {
  const client = inferenceClient(address);
  try {
    const call = client.ModelStreamInfer();
    const answers: StreamAnswer[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (a: StreamAnswer) => answers.push(a));
      call.on('end', resolve);
      call.on('error', reject);
    });
    for (const r of requests) call.write(r);
    call.end();
    await done;
    return answers;
  } finally {
    client.close();
  }
}

describe('router: what it adds to a call', () => {
  let mesh: TestMesh;
  let pod: InferenceService;
  let router: RouterService;
  let address: string;

  beforeAll(async () => {
    mesh = await startTestMesh();
    await mesh.push('mnist', 'mnist.onnx');
    pod = await mesh.startPod({ INFERMESH_INTRA_OP_THREADS: '1' });
    const c = inferenceClient(`127.0.0.1:${pod.port}`);
    await waitReady(c, ['mnist']);
    c.close();
    router = await startTestRouter(mesh.nats.url, mesh.registry.port);
    address = `127.0.0.1:${router.port}`;
    await waitFor('the router to know the pod', () => router.membership.candidates('mnist', 1).length === 1);
  });

  afterAll(async () => {
    await router?.shutdown(5_000);
    await mesh?.close();
  });

  it('marks every ModelStreamInfer answer triton_final_response, errors included, as a pod does', async () => {
    const answers = await stream(address, [mnistRequest('good'), { id: 'bad', model_name: 'nope', inputs: [] }]);
    const byId = new Map(answers.map((a) => [a.infer_response?.id, a]));
    expect(byId.get('good')?.error_message).toBe('');
    expect(byId.get('good')?.infer_response?.model_version).toBe('1');
    expect(byId.get('bad')?.error_message).toBe("model 'nope' not found");
    for (const a of answers) expect(a.infer_response?.parameters.triton_final_response).toMatchObject({ bool_param: true, parameter_choice: 'bool_param' });
  });

  it('a pod the router\'s view holds stale (restarted, no heartbeat yet) answers UNAVAILABLE, and a retry with no other pod answers it too, never NOT_FOUND', async () => {
    // The router believes a pod at the real pod's address holds model digits version 1, as it
    // believed of a pod that restarted on its port and has not sent its first heartbeat; it has
    // failed before, so this failure ejects it and the retry finds no pod with the version.
    const stale = (id: string, state: Heartbeat['state'] = 'serving'): Heartbeat => ({
      schema: 1, pod: id, address: pod.address, state, inflight: 0, time: new Date().toISOString(),
      models: [{ name: 'digits', version: 1, state: 'READY', provider: 'cpu' }],
    });
    const why = "this pod does not hold model 'digits' version 1 (a router's view of it is out of date)";
    const client = inferenceClient(address);
    try {
      // ModelInfer, on the front door's bare HTTP/2 path.
      router.membership.update(stale('restarted'));
      router.membership.all().find((p) => p.id === 'restarted')!.failures = 4;
      const err = await unary((cb) => client.ModelInfer({ model_name: 'digits', inputs: [] }, { deadline: Date.now() + 10_000 }, cb)).catch((e: grpc.ServiceError) => e);
      expect(err).toMatchObject({ code: grpc.status.UNAVAILABLE, details: why });
      expect(router.membership.candidates('digits', 1)).toEqual([]); // ejected: the pod's failure
      // A request of a ModelStreamInfer stream, on the typed path.
      router.membership.update(stale('restarted-too'));
      router.membership.all().find((p) => p.id === 'restarted-too')!.failures = 4;
      const [answer] = await stream(address, [{ id: 's', model_name: 'digits', inputs: [] }]);
      expect(answer?.error_message).toBe(why);
      expect(router.membership.candidates('digits', 1)).toEqual([]);
      // A client that names the version itself is told the same.
      router.membership.update(stale('restarted-named'));
      router.membership.all().find((p) => p.id === 'restarted-named')!.failures = 4;
      const named = await unary((cb) => client.ModelInfer({ model_name: 'digits', model_version: '1', inputs: [] }, { deadline: Date.now() + 10_000 }, cb)).catch((e: grpc.ServiceError) => e);
      expect(named).toMatchObject({ code: grpc.status.UNAVAILABLE, details: why });
    } finally {
      client.close();
      for (const id of ['restarted', 'restarted-too', 'restarted-named']) router.membership.update(stale(id, 'draining'));
    }
    // A client calling the pod directly, without the router's header, still hears NOT_FOUND.
    const direct = inferenceClient(`127.0.0.1:${pod.port}`);
    const err = await unary((cb) => direct.ModelInfer({ model_name: 'digits', inputs: [] }, cb)).catch((e: grpc.ServiceError) => e);
    direct.close();
    expect(err).toMatchObject({ code: grpc.status.NOT_FOUND, details: "model 'digits' not found" });
  });

  it('a client\'s own infermesh-version header is dropped at the door: the traffic split routes its call', async () => {
    const client = inferenceClient(address);
    try {
      const md = new grpc.Metadata();
      md.set(ROUTED_VERSION_HEADER, '999');
      const res = await unary<ModelInferResponseOut>((cb) => client.ModelInfer(mnistRequest(), md, { deadline: Date.now() + 10_000 }, cb));
      expect(res.model_version).toBe('1');
      const probs = res.outputs[0]!.contents!.fp32_contents;
      expect(probs.indexOf(Math.max(...probs))).toBe(digit.label);
      // And on a stream (the typed path, which forwards no client metadata).
      const call = client.ModelStreamInfer(md);
      const answer = new Promise<StreamAnswer>((resolve, reject) => {
        call.on('data', resolve);
        call.on('error', reject);
      });
      call.write(mnistRequest('s'));
      call.end();
      expect((await answer).infer_response?.model_version).toBe('1');
    } finally {
      client.close();
    }
  });
});
