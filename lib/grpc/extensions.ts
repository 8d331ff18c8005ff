// The Triton protocol extensions an infermesh inference endpoint serves, for ServerMetadata: the
// same list on pods and on the router (which passes requests and answers through unchanged). Only
// what works is listed; test/integration/server-metadata.test.ts probes every one of Triton's.

/**
 * Triton extension names (server/docs/protocol/extension_*.md) served:
 * - `model_configuration`: ModelConfig answers Triton's model config.
 * - `statistics`: ModelStatistics.
 * - `parameters`: requests may carry custom `parameters`; they are accepted and, as with Triton's
 *   onnxruntime backend, not used by the model.
 * - `binary_tensor_data`: tensors as raw bytes (`raw_input_contents` / `raw_output_contents`), the
 *   gRPC form of Triton's binary tensor data, for every datatype.
 * - `classification`: an output requested with the `classification` parameter (tritonclient's
 *   `class_count`) comes back as BYTES "<value>:<index>" (services/inference/classification.ts).
 * Not served, so not listed: `model_repository` (RepositoryModelLoad/Unload do not exist; models
 * come from the registry), `schedule_policy`, `sequence`, `system_shared_memory`,
 * `cuda_shared_memory`, `trace`, `logging`.
 */
export const INFERENCE_EXTENSIONS: readonly string[] = Object.freeze(['model_configuration', 'statistics', 'parameters', 'binary_tensor_data', 'classification']);
