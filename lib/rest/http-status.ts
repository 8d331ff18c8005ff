// gRPC status codes as HTTP statuses for the Open Inference Protocol's REST form: the mapping
// grpc-gateway uses (google.rpc.Code's documented HTTP equivalents), which agrees with Triton's
// HTTP server where Triton has the code (400 for a bad request, 404 for an unknown model, 503 when
// unavailable, 500 for an internal error). An error's body is the spec's {"error": "..."}.

/** HTTP status of each gRPC code (by number); unknown codes are 500. */
const HTTP_OF_GRPC: readonly number[] = [
  200, // OK
  499, // CANCELLED: the client closed the request
  500, // UNKNOWN
  400, // INVALID_ARGUMENT
  504, // DEADLINE_EXCEEDED
  404, // NOT_FOUND
  409, // ALREADY_EXISTS
  403, // PERMISSION_DENIED
  429, // RESOURCE_EXHAUSTED
  400, // FAILED_PRECONDITION
  409, // ABORTED
  400, // OUT_OF_RANGE
  501, // UNIMPLEMENTED
  500, // INTERNAL
  503, // UNAVAILABLE
  500, // DATA_LOSS
  401, // UNAUTHENTICATED
];

/** The HTTP status that stands for gRPC status `code`. */
export function httpStatusOf(code: number): number {
  return HTTP_OF_GRPC[code] ?? 500;
}

/** The spec's error body. */
export function errorBody(message: string): string {
  return JSON.stringify({ error: message });
}
