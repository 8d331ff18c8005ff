// Original file: proto/infermesh/registry/v1/rollouts.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { RolloutRequest as _infermesh_registry_v1_RolloutRequest, RolloutRequest__Output as _infermesh_registry_v1_RolloutRequest__Output } from '../../../infermesh/registry/v1/RolloutRequest';
import type { RolloutStatus as _infermesh_registry_v1_RolloutStatus, RolloutStatus__Output as _infermesh_registry_v1_RolloutStatus__Output } from '../../../infermesh/registry/v1/RolloutStatus';
import type { SetRolloutWeightRequest as _infermesh_registry_v1_SetRolloutWeightRequest, SetRolloutWeightRequest__Output as _infermesh_registry_v1_SetRolloutWeightRequest__Output } from '../../../infermesh/registry/v1/SetRolloutWeightRequest';
import type { StartRolloutRequest as _infermesh_registry_v1_StartRolloutRequest, StartRolloutRequest__Output as _infermesh_registry_v1_StartRolloutRequest__Output } from '../../../infermesh/registry/v1/StartRolloutRequest';

export interface RolloutsClient extends grpc.Client {
  GetRollout(argument: _infermesh_registry_v1_RolloutRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  GetRollout(argument: _infermesh_registry_v1_RolloutRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  GetRollout(argument: _infermesh_registry_v1_RolloutRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  GetRollout(argument: _infermesh_registry_v1_RolloutRequest, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  getRollout(argument: _infermesh_registry_v1_RolloutRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  getRollout(argument: _infermesh_registry_v1_RolloutRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  getRollout(argument: _infermesh_registry_v1_RolloutRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  getRollout(argument: _infermesh_registry_v1_RolloutRequest, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  
  PauseRollout(argument: _infermesh_registry_v1_RolloutRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  PauseRollout(argument: _infermesh_registry_v1_RolloutRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  PauseRollout(argument: _infermesh_registry_v1_RolloutRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  PauseRollout(argument: _infermesh_registry_v1_RolloutRequest, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  pauseRollout(argument: _infermesh_registry_v1_RolloutRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  pauseRollout(argument: _infermesh_registry_v1_RolloutRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  pauseRollout(argument: _infermesh_registry_v1_RolloutRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  pauseRollout(argument: _infermesh_registry_v1_RolloutRequest, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  
  PromoteRollout(argument: _infermesh_registry_v1_RolloutRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  PromoteRollout(argument: _infermesh_registry_v1_RolloutRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  PromoteRollout(argument: _infermesh_registry_v1_RolloutRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  PromoteRollout(argument: _infermesh_registry_v1_RolloutRequest, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  promoteRollout(argument: _infermesh_registry_v1_RolloutRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  promoteRollout(argument: _infermesh_registry_v1_RolloutRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  promoteRollout(argument: _infermesh_registry_v1_RolloutRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  promoteRollout(argument: _infermesh_registry_v1_RolloutRequest, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  
  ResumeRollout(argument: _infermesh_registry_v1_RolloutRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  ResumeRollout(argument: _infermesh_registry_v1_RolloutRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  ResumeRollout(argument: _infermesh_registry_v1_RolloutRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  ResumeRollout(argument: _infermesh_registry_v1_RolloutRequest, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  resumeRollout(argument: _infermesh_registry_v1_RolloutRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  resumeRollout(argument: _infermesh_registry_v1_RolloutRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  resumeRollout(argument: _infermesh_registry_v1_RolloutRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  resumeRollout(argument: _infermesh_registry_v1_RolloutRequest, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  
  RollbackRollout(argument: _infermesh_registry_v1_RolloutRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  RollbackRollout(argument: _infermesh_registry_v1_RolloutRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  RollbackRollout(argument: _infermesh_registry_v1_RolloutRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  RollbackRollout(argument: _infermesh_registry_v1_RolloutRequest, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  rollbackRollout(argument: _infermesh_registry_v1_RolloutRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  rollbackRollout(argument: _infermesh_registry_v1_RolloutRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  rollbackRollout(argument: _infermesh_registry_v1_RolloutRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  rollbackRollout(argument: _infermesh_registry_v1_RolloutRequest, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  
  SetRolloutWeight(argument: _infermesh_registry_v1_SetRolloutWeightRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  SetRolloutWeight(argument: _infermesh_registry_v1_SetRolloutWeightRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  SetRolloutWeight(argument: _infermesh_registry_v1_SetRolloutWeightRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  SetRolloutWeight(argument: _infermesh_registry_v1_SetRolloutWeightRequest, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  setRolloutWeight(argument: _infermesh_registry_v1_SetRolloutWeightRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  setRolloutWeight(argument: _infermesh_registry_v1_SetRolloutWeightRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  setRolloutWeight(argument: _infermesh_registry_v1_SetRolloutWeightRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  setRolloutWeight(argument: _infermesh_registry_v1_SetRolloutWeightRequest, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  
  StartRollout(argument: _infermesh_registry_v1_StartRolloutRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  StartRollout(argument: _infermesh_registry_v1_StartRolloutRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  StartRollout(argument: _infermesh_registry_v1_StartRolloutRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  StartRollout(argument: _infermesh_registry_v1_StartRolloutRequest, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  startRollout(argument: _infermesh_registry_v1_StartRolloutRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  startRollout(argument: _infermesh_registry_v1_StartRolloutRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  startRollout(argument: _infermesh_registry_v1_StartRolloutRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  startRollout(argument: _infermesh_registry_v1_StartRolloutRequest, callback: grpc.requestCallback<_infermesh_registry_v1_RolloutStatus__Output>): grpc.ClientUnaryCall;
  
}

export interface RolloutsHandlers extends grpc.UntypedServiceImplementation {
  GetRollout: grpc.handleUnaryCall<_infermesh_registry_v1_RolloutRequest__Output, _infermesh_registry_v1_RolloutStatus>;
  
  PauseRollout: grpc.handleUnaryCall<_infermesh_registry_v1_RolloutRequest__Output, _infermesh_registry_v1_RolloutStatus>;
  
  PromoteRollout: grpc.handleUnaryCall<_infermesh_registry_v1_RolloutRequest__Output, _infermesh_registry_v1_RolloutStatus>;
  
  ResumeRollout: grpc.handleUnaryCall<_infermesh_registry_v1_RolloutRequest__Output, _infermesh_registry_v1_RolloutStatus>;
  
  RollbackRollout: grpc.handleUnaryCall<_infermesh_registry_v1_RolloutRequest__Output, _infermesh_registry_v1_RolloutStatus>;
  
  SetRolloutWeight: grpc.handleUnaryCall<_infermesh_registry_v1_SetRolloutWeightRequest__Output, _infermesh_registry_v1_RolloutStatus>;
  
  StartRollout: grpc.handleUnaryCall<_infermesh_registry_v1_StartRolloutRequest__Output, _infermesh_registry_v1_RolloutStatus>;
  
}

export interface RolloutsDefinition extends grpc.ServiceDefinition {
  GetRollout: MethodDefinition<_infermesh_registry_v1_RolloutRequest, _infermesh_registry_v1_RolloutStatus, _infermesh_registry_v1_RolloutRequest__Output, _infermesh_registry_v1_RolloutStatus__Output>
  PauseRollout: MethodDefinition<_infermesh_registry_v1_RolloutRequest, _infermesh_registry_v1_RolloutStatus, _infermesh_registry_v1_RolloutRequest__Output, _infermesh_registry_v1_RolloutStatus__Output>
  PromoteRollout: MethodDefinition<_infermesh_registry_v1_RolloutRequest, _infermesh_registry_v1_RolloutStatus, _infermesh_registry_v1_RolloutRequest__Output, _infermesh_registry_v1_RolloutStatus__Output>
  ResumeRollout: MethodDefinition<_infermesh_registry_v1_RolloutRequest, _infermesh_registry_v1_RolloutStatus, _infermesh_registry_v1_RolloutRequest__Output, _infermesh_registry_v1_RolloutStatus__Output>
  RollbackRollout: MethodDefinition<_infermesh_registry_v1_RolloutRequest, _infermesh_registry_v1_RolloutStatus, _infermesh_registry_v1_RolloutRequest__Output, _infermesh_registry_v1_RolloutStatus__Output>
  SetRolloutWeight: MethodDefinition<_infermesh_registry_v1_SetRolloutWeightRequest, _infermesh_registry_v1_RolloutStatus, _infermesh_registry_v1_SetRolloutWeightRequest__Output, _infermesh_registry_v1_RolloutStatus__Output>
  StartRollout: MethodDefinition<_infermesh_registry_v1_StartRolloutRequest, _infermesh_registry_v1_RolloutStatus, _infermesh_registry_v1_StartRolloutRequest__Output, _infermesh_registry_v1_RolloutStatus__Output>
}
