// ModelStreamInfer's bounds (lib/grpc/stream-infer.ts) on a real grpc-js server and client: past
// its bounds a stream reads no more requests (grpc-js went on reading, decoding and holding up to
// 16 past a pause), and takes them again, every one answered, once its requests end; an answer
// that the stream wrapper takes past the message limit fails its request alone, not the stream.
import * as grpc from '@grpc/grpc-js';
import { encodeInferAnswer } from '../../../../lib/grpc/infer-answer';
import { protos } from '../../../../lib/grpc/proto';
import { requestSizeOf, scannedInferenceService } from '../../../../lib/grpc/scanned-service';
import { serveInferStream, type StreamLimits } from '../../../../lib/grpc/stream-infer';
import { streamError } from '../../../../lib/grpc/stream-answer';
import { createServer, listen } from '../../../../lib/grpc/server';
import { doorBudgetsOf } from '../../../../lib/h2/budget';
import type { ModelStreamInferResponse__Output } from '../../../../lib/grpc/generated/inference/ModelStreamInferResponse';
import type { ModelInferRequestOut } from '../../../../lib/grpc/types';

const SCAN = { maxTensors: 16, maxParameters: 16, maxRank: 8, maxBytesElements: 1 << 20, maxElements: 1 << 24 };

/** A grpc-js server answering ModelStreamInfer by `infer` within `limits`; counts the requests it read. */
async function streamServer(limits: StreamLimits, infer: (req: ModelInferRequestOut) => Promise<Buffer>) {
  const { server } = createServer({ maxMessageBytes: limits.maxMessageBytes });
  const scanned = scannedInferenceService(SCAN);
  const read = { requests: 0 };
  const deserialize = scanned.ModelStreamInfer!.requestDeserialize;
  const def: grpc.ServiceDefinition = { ...scanned, ModelStreamInfer: { ...scanned.ModelStreamInfer!, requestDeserialize: (b: Buffer) => (read.requests++, deserialize(b)) } };
  server.addService(def, {
    ModelStreamInfer: (call: grpc.ServerDuplexStream<ModelInferRequestOut, Buffer>) => serveInferStream<ModelInferRequestOut>(call, limits, {
      sizeOf: requestSizeOf,
      infer,
      failed: (req, err) => streamError(req, err instanceof Error ? err.message : String(err)),
    }),
  });
  const port = await listen(server, '127.0.0.1', 0);
  const Client = grpc.makeGenericClientConstructor(protos().inference.GRPCInferenceService.service, 'inference');
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 64 << 20, 'grpc.max_receive_message_length': 64 << 20 });
  return { server, client, read };
}

/** A ModelStreamInfer call on `client`: the answers it got so far, and its end. */
function openStream(client: grpc.Client) {
  const call = (client as unknown as { ModelStreamInfer(): grpc.ClientDuplexStream<unknown, ModelStreamInferResponse__Output> }).ModelStreamInfer();
  const answers: ModelStreamInferResponse__Output[] = [];
  const ended = new Promise<void>((resolve, reject) => {
    call.on('data', (a: ModelStreamInferResponse__Output) => answers.push(a));
    call.on('end', resolve);
    call.on('error', reject);
  });
  return { call, answers, ended };
}

const answerTo = (req: ModelInferRequestOut, bytes = 0) => encodeInferAnswer({ model_name: req.model_name, model_version: '1', id: req.id, outputs: bytes ? [{ name: 'y', datatype: 'UINT8', shape: [bytes] }] : [], raw_output_contents: bytes ? [Buffer.alloc(bytes)] : [] }, 64 << 20);

it('reads no request past its bounds while one is in flight, then answers every one', async () => {
  const waiting: (() => void)[] = [];
  let release = false;
  const { server, client, read } = await streamServer({ maxInFlight: 1, maxRequestBytes: 1, maxAnswerBytes: 1 << 20, maxMessageBytes: 64 << 20 }, (req) => new Promise((resolve) => {
    const done = () => resolve(answerTo(req));
    if (release) done();
    else waiting.push(done);
  }));
  try {
    const { call, answers, ended } = openStream(client);
    const big = Buffer.alloc(1 << 20, 1);
    for (let i = 0; i < 40; i++) call.write({ model_name: 'm', id: String(i), inputs: [{ name: 'x', datatype: 'UINT8', shape: [1, 1 << 20] }], raw_input_contents: [big] });
    call.end();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    // One in flight, and at most the one a read already under way brings.
    expect(waiting.length).toBe(1);
    expect(read.requests).toBeLessThanOrEqual(2);
    release = true;
    for (const done of waiting.splice(0)) done();
    await ended;
    expect(answers.map((a) => a.infer_response?.id)).toEqual(Array.from({ length: 40 }, (_, i) => String(i)));
    expect(read.requests).toBe(40);
  } finally {
    client.close();
    server.forceShutdown();
  }
});

it('fails one request whose wrapped answer passes the message limit, and the stream goes on', async () => {
  const limit = 4096;
  // An answer of exactly the limit: within it as a ModelInferResponse, past it once wrapped.
  const big = (req: ModelInferRequestOut) => {
    for (let n = limit; n > 0; n--) {
      const a = answerTo(req, n);
      if (a.length <= limit) return a;
    }
    throw new Error('unreachable');
  };
  const { server, client } = await streamServer({ maxInFlight: 8, maxRequestBytes: 1 << 20, maxAnswerBytes: 1 << 20, maxMessageBytes: limit }, async (req) => (req.id === 'big' ? big(req) : answerTo(req, 3)));
  try {
    const { call, answers, ended } = openStream(client);
    for (const id of ['small', 'big', 'after']) call.write({ model_name: 'm', id });
    call.end();
    await ended;
    const byId = new Map(answers.map((a) => [a.infer_response?.id, a]));
    expect(byId.get('big')!.error_message).toMatch(/^response of \d+ bytes is larger than the limit of 4096 bytes$/);
    expect(byId.get('small')!.error_message).toBe('');
    expect(byId.get('after')!.error_message).toBe('');
  } finally {
    client.close();
    server.forceShutdown();
  }
});

it('counts its requests and unread answers in the door\'s budgets, and gives them all back when its client cancels', async () => {
  const budgets = doorBudgetsOf({ maxRequestBytes: 64 << 20, maxResponseBytes: 64 << 20 });
  const { server, client } = await streamServer({ maxInFlight: 100, maxRequestBytes: 64 << 20, maxAnswerBytes: 64 << 20, maxMessageBytes: 64 << 20, door: { budgets, who: 'the test door' } },
    async (req) => answerTo(req, 1 << 20));
  try {
    const { call, ended } = openStream(client);
    ended.catch(() => undefined);
    // A client that reads nothing: its answers wait, held in the door's answer budget.
    call.pause();
    for (let i = 0; i < 30; i++) call.write({ model_name: 'm', id: String(i) });
    const until = Date.now() + 10_000;
    while (budgets.answers.used < 4 << 20 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(budgets.answers.used).toBeGreaterThanOrEqual(4 << 20);
    call.cancel();
    while ((budgets.answers.used > 0 || budgets.requests.used > 0) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect({ answers: budgets.answers.used, requests: budgets.requests.used }).toEqual({ answers: 0, requests: 0 });
  } finally {
    client.close();
    server.forceShutdown();
  }
});

it('gives back nothing it never held: an answer whose run ends after its stream was cancelled is not counted', async () => {
  const budgets = doorBudgetsOf({ maxRequestBytes: 64 << 20, maxResponseBytes: 16 << 20 });
  // Each run ends 300 ms after its request: after the cancel below.
  const { server, client } = await streamServer({ maxInFlight: 4, maxRequestBytes: 64 << 20, maxAnswerBytes: 16 << 20, maxMessageBytes: 64 << 20, door: { budgets, who: 'the test door' } },
    (req) => new Promise((resolve) => setTimeout(() => resolve(answerTo(req, 1 << 20)), 300)));
  try {
    for (let i = 0; i < 3; i++) {
      const { call, ended } = openStream(client);
      ended.catch(() => undefined);
      call.write({ model_name: 'm', id: String(i), inputs: [] });
      await new Promise((resolve) => setTimeout(resolve, 100));
      call.cancel();
    }
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect(budgets.answers.used).toBe(0);
    expect(budgets.requests.used).toBe(0);
  } finally {
    client.close();
    server.forceShutdown();
  }
});
