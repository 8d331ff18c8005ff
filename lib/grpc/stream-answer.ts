// ModelStreamInfer answers as every server of the mesh writes them (pods and the router alike).
// Triton marks each answer triton_final_response (true: a non-decoupled model answers a request
// once), which clients that set triton_enable_empty_final_response wait for; it sends an empty
// final answer only for decoupled models, which onnxruntime models are not. An answer without it
// leaves such a client waiting for ever. An answer's bytes are wrapped so by infer-answer.ts
// (streamAnswerBytes); an error is written here.
import type { ModelInferRequestOut } from './types';
import type { ModelStreamInferResponse } from './generated/inference/ModelStreamInferResponse';

/** Triton's stream parameter: the answer is its request's last (ours always are). */
export const FINAL_RESPONSE = Object.freeze({ triton_final_response: Object.freeze({ bool_param: true }) });


/** The stream answer to `req` that failed with `message`: its id, model and version, marked final. */
export function streamError(req: Pick<ModelInferRequestOut, 'id' | 'model_name' | 'model_version'>, message: string): ModelStreamInferResponse {
  return { error_message: message, infer_response: { id: req.id, model_name: req.model_name, model_version: req.model_version, parameters: FINAL_RESPONSE } };
}
