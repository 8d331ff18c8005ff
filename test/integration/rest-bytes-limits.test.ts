// The router's HTTP/REST door bounds BYTES elements itself (INFERMESH_MAX_BYTES_ELEMENTS), before
// converting any: a JSON body of millions of empty strings, small on the wire, is refused with 400
// at the door instead of costing the router a Buffer an element and then being refused by the pod.
import { startTestMesh, inferenceClient, waitReady, type TestMesh } from '../helpers/mesh';
import { startTestRouter } from '../helpers/services';
import { waitFor } from '../helpers/wait';
import type { RouterService } from '../../services/router/router-service';

jest.setTimeout(120_000);

const MODEL = 'identity_bytes';
/** The router's limit; the pod keeps the default (1 Mi), so a refusal at this one is the router's. */
const ROUTER_MAX_BYTES_ELEMENTS = 1000;

let mesh: TestMesh;
let router: RouterService;
let base: string;

async function post(body: string): Promise<{ status: number; json: { error?: string; outputs?: { data: unknown[] }[] } }> {
  const res = await fetch(`${base}/v2/models/${MODEL}/infer`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  return { status: res.status, json: await res.json() as never };
}

/** A request of `n` empty BYTES elements, written without building an array of them. */
const emptyStrings = (n: number) => `{"inputs":[{"name":"INPUT0","datatype":"BYTES","shape":[1,${n}],"data":[${'"",'.repeat(n - 1)}""]}]}`;

beforeAll(async () => {
  mesh = await startTestMesh();
  await mesh.push(MODEL, 'fixtures/identity_bytes.onnx');
  const pod = await mesh.startPod();
  await waitReady(inferenceClient(`127.0.0.1:${pod.port}`), [MODEL]);
  router = await startTestRouter(mesh.nats.url, mesh.registry.port, { INFERMESH_MAX_BYTES_ELEMENTS: String(ROUTER_MAX_BYTES_ELEMENTS) });
  base = `http://127.0.0.1:${router.httpPort}`;
  await waitFor('the router to route the model', () => router.membership.candidates(MODEL, 1).length + router.membership.readyVersions(MODEL).size > 0);
});

afterAll(async () => {
  await router?.shutdown(5_000);
  await mesh?.close();
});

describe('BYTES elements at the REST door', () => {
  it('passes as many as INFERMESH_MAX_BYTES_ELEMENTS and refuses one more with 400, naming the tensor and the limit', async () => {
    const at = await post(emptyStrings(ROUTER_MAX_BYTES_ELEMENTS));
    expect(at.status).toBe(200);
    expect(at.json.outputs![0]!.data).toEqual(new Array(ROUTER_MAX_BYTES_ELEMENTS).fill(''));
    const over = await post(emptyStrings(ROUTER_MAX_BYTES_ELEMENTS + 1));
    expect(over.status).toBe(400);
    expect(over.json.error).toBe(`tensor 'INPUT0': the request's BYTES elements pass the limit of ${ROUTER_MAX_BYTES_ELEMENTS}`);
  });

  it('refuses 2.7 million empty strings (8 MB of JSON) without a heap of hundreds of MB', async () => {
    const body = emptyStrings(2_700_000);
    global.gc?.();
    const before = process.memoryUsage().heapUsed;
    const res = await post(body);
    const grown = process.memoryUsage().heapUsed - before;
    expect(res.status).toBe(400);
    expect(res.json.error).toBe(`tensor 'INPUT0': the request's BYTES elements pass the limit of ${ROUTER_MAX_BYTES_ELEMENTS}`);
    // Parsing the JSON holds its text and an array of 2.7 million (about 40 MB); a Buffer an element took 900 MB.
    expect(grown).toBeLessThan(200 * 1024 * 1024);
  });
});
