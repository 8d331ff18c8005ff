// Original file: proto/infermesh/registry/v1/registry.proto

import type { PushHeader as _infermesh_registry_v1_PushHeader, PushHeader__Output as _infermesh_registry_v1_PushHeader__Output } from '../../../infermesh/registry/v1/PushHeader';

export interface PushVersionRequest {
  'header'?: (_infermesh_registry_v1_PushHeader | null);
  'chunk'?: (Buffer | Uint8Array | string);
  'content'?: "header"|"chunk";
}

export interface PushVersionRequest__Output {
  'header'?: (_infermesh_registry_v1_PushHeader__Output | null);
  'chunk'?: (Buffer);
  'content'?: "header"|"chunk";
}
