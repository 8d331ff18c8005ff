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
});
