// Original file: proto/infermesh/registry/v1/registry.proto

import type { TensorSignature as _infermesh_registry_v1_TensorSignature, TensorSignature__Output as _infermesh_registry_v1_TensorSignature__Output } from '../../../infermesh/registry/v1/TensorSignature';
import type { VersionState as _infermesh_registry_v1_VersionState, VersionState__Output as _infermesh_registry_v1_VersionState__Output } from '../../../infermesh/registry/v1/VersionState';
import type { Long } from '@grpc/proto-loader';

export interface Version {
  'model'?: (string);
  'version'?: (number);
  'sha256'?: (string);
  'size_bytes'?: (number | string | Long);
  'created_at'?: (string);
  'inputs'?: (_infermesh_registry_v1_TensorSignature)[];
  'outputs'?: (_infermesh_registry_v1_TensorSignature)[];
  'state'?: (_infermesh_registry_v1_VersionState);
}

export interface Version__Output {
  'model': (string);
  'version': (number);
  'sha256': (string);
  'size_bytes': (string);
  'created_at': (string);
  'inputs': (_infermesh_registry_v1_TensorSignature__Output)[];
  'outputs': (_infermesh_registry_v1_TensorSignature__Output)[];
  'state': (_infermesh_registry_v1_VersionState__Output);
}
