// THE PEER, not infermesh: the server a TypeScript team would write instead of adopting a serving
// system (issue 19), measured beside a pod with the same client. @grpc/grpc-js and onnxruntime-node in
// one process, the Open Inference Protocol's ModelInfer for one FP32 model, raw tensor contents in and
// out, onnxruntime's defaults but for the thread count when one is given. Nothing infermesh adds is here:
// no validation beyond the tensor's size, no batching, no queue bound, no statistics.
//
// node dist/bench/peer-server.js MODEL.onnx INTRA_OP_THREADS (0: onnxruntime's default): prints the port once it serves.
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ort } from '../lib/ort';
import { PROTO_ROOT } from '../lib/grpc/proto';

interface InferRequest {
  model_name: string;
  inputs: { name: string; shape: string[] }[];
  outputs: { name: string }[];
  raw_input_contents: Buffer[];
}

async function main(): Promise<void> {
  const [modelPath, threads] = process.argv.slice(2);
  // THREADS 0: onnxruntime's own default (the machine's cores).
  const session = await ort.InferenceSession.create(path.resolve(modelPath!), { executionProviders: ['cpu'], ...(Number(threads) > 0 && { intraOpNumThreads: Number(threads) }) });
  const def = protoLoader.loadSync(path.join(PROTO_ROOT, 'inference', 'grpc_service.proto'), { keepCase: true, longs: String, includeDirs: [path.join(PROTO_ROOT, 'inference')] });
  const proto = grpc.loadPackageDefinition(def) as unknown as { inference: { GRPCInferenceService: { service: grpc.ServiceDefinition } } };
  const server = new grpc.Server();
  server.addService(proto.inference.GRPCInferenceService.service, {
    ModelInfer: async (call: grpc.ServerUnaryCall<InferRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      try {
        const req = call.request;
        const input = req.inputs[0]!;
        const raw = req.raw_input_contents[0]!;
        const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
        const names = req.outputs.length ? req.outputs.map((o) => o.name) : [...session.outputNames];
        const out = await session.run({ [input.name]: new ort.Tensor('float32', data, input.shape.map(Number)) }, names);
        callback(null, {
          model_name: req.model_name,
          outputs: names.map((name) => ({ name, datatype: 'FP32', shape: out[name]!.dims.map(String) })),
          raw_output_contents: names.map((name) => {
            const bytes = out[name]!.data as Float32Array;
            return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
          }),
        });
      } catch (err) {
        callback({ code: grpc.status.INVALID_ARGUMENT, details: err instanceof Error ? err.message : String(err) });
      }
    },
  });
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    process.stdout.write(`${port}\n`);
  });
}

void main();
