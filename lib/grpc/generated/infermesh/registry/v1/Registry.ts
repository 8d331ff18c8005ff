// Original file: proto/infermesh/registry/v1/registry.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { ApiKey as _infermesh_registry_v1_ApiKey, ApiKey__Output as _infermesh_registry_v1_ApiKey__Output } from '../../../infermesh/registry/v1/ApiKey';
import type { ArchiveVersionRequest as _infermesh_registry_v1_ArchiveVersionRequest, ArchiveVersionRequest__Output as _infermesh_registry_v1_ArchiveVersionRequest__Output } from '../../../infermesh/registry/v1/ArchiveVersionRequest';
import type { ArtifactChunk as _infermesh_registry_v1_ArtifactChunk, ArtifactChunk__Output as _infermesh_registry_v1_ArtifactChunk__Output } from '../../../infermesh/registry/v1/ArtifactChunk';
import type { CreateKeyRequest as _infermesh_registry_v1_CreateKeyRequest, CreateKeyRequest__Output as _infermesh_registry_v1_CreateKeyRequest__Output } from '../../../infermesh/registry/v1/CreateKeyRequest';
import type { CreateKeyResponse as _infermesh_registry_v1_CreateKeyResponse, CreateKeyResponse__Output as _infermesh_registry_v1_CreateKeyResponse__Output } from '../../../infermesh/registry/v1/CreateKeyResponse';
import type { CreateModelRequest as _infermesh_registry_v1_CreateModelRequest, CreateModelRequest__Output as _infermesh_registry_v1_CreateModelRequest__Output } from '../../../infermesh/registry/v1/CreateModelRequest';
import type { DeleteVersionRequest as _infermesh_registry_v1_DeleteVersionRequest, DeleteVersionRequest__Output as _infermesh_registry_v1_DeleteVersionRequest__Output } from '../../../infermesh/registry/v1/DeleteVersionRequest';
import type { DeleteVersionResponse as _infermesh_registry_v1_DeleteVersionResponse, DeleteVersionResponse__Output as _infermesh_registry_v1_DeleteVersionResponse__Output } from '../../../infermesh/registry/v1/DeleteVersionResponse';
import type { Event as _infermesh_registry_v1_Event, Event__Output as _infermesh_registry_v1_Event__Output } from '../../../infermesh/registry/v1/Event';
import type { GetModelRequest as _infermesh_registry_v1_GetModelRequest, GetModelRequest__Output as _infermesh_registry_v1_GetModelRequest__Output } from '../../../infermesh/registry/v1/GetModelRequest';
import type { GetVersionRequest as _infermesh_registry_v1_GetVersionRequest, GetVersionRequest__Output as _infermesh_registry_v1_GetVersionRequest__Output } from '../../../infermesh/registry/v1/GetVersionRequest';
import type { ListKeysRequest as _infermesh_registry_v1_ListKeysRequest, ListKeysRequest__Output as _infermesh_registry_v1_ListKeysRequest__Output } from '../../../infermesh/registry/v1/ListKeysRequest';
import type { ListKeysResponse as _infermesh_registry_v1_ListKeysResponse, ListKeysResponse__Output as _infermesh_registry_v1_ListKeysResponse__Output } from '../../../infermesh/registry/v1/ListKeysResponse';
import type { ListModelsRequest as _infermesh_registry_v1_ListModelsRequest, ListModelsRequest__Output as _infermesh_registry_v1_ListModelsRequest__Output } from '../../../infermesh/registry/v1/ListModelsRequest';
import type { ListModelsResponse as _infermesh_registry_v1_ListModelsResponse, ListModelsResponse__Output as _infermesh_registry_v1_ListModelsResponse__Output } from '../../../infermesh/registry/v1/ListModelsResponse';
import type { ListPodsRequest as _infermesh_registry_v1_ListPodsRequest, ListPodsRequest__Output as _infermesh_registry_v1_ListPodsRequest__Output } from '../../../infermesh/registry/v1/ListPodsRequest';
import type { ListPodsResponse as _infermesh_registry_v1_ListPodsResponse, ListPodsResponse__Output as _infermesh_registry_v1_ListPodsResponse__Output } from '../../../infermesh/registry/v1/ListPodsResponse';
import type { ListVersionsRequest as _infermesh_registry_v1_ListVersionsRequest, ListVersionsRequest__Output as _infermesh_registry_v1_ListVersionsRequest__Output } from '../../../infermesh/registry/v1/ListVersionsRequest';
import type { ListVersionsResponse as _infermesh_registry_v1_ListVersionsResponse, ListVersionsResponse__Output as _infermesh_registry_v1_ListVersionsResponse__Output } from '../../../infermesh/registry/v1/ListVersionsResponse';
import type { Model as _infermesh_registry_v1_Model, Model__Output as _infermesh_registry_v1_Model__Output } from '../../../infermesh/registry/v1/Model';
import type { PullArtifactRequest as _infermesh_registry_v1_PullArtifactRequest, PullArtifactRequest__Output as _infermesh_registry_v1_PullArtifactRequest__Output } from '../../../infermesh/registry/v1/PullArtifactRequest';
import type { PushVersionRequest as _infermesh_registry_v1_PushVersionRequest, PushVersionRequest__Output as _infermesh_registry_v1_PushVersionRequest__Output } from '../../../infermesh/registry/v1/PushVersionRequest';
import type { RevokeKeyRequest as _infermesh_registry_v1_RevokeKeyRequest, RevokeKeyRequest__Output as _infermesh_registry_v1_RevokeKeyRequest__Output } from '../../../infermesh/registry/v1/RevokeKeyRequest';
import type { UpdateModelRequest as _infermesh_registry_v1_UpdateModelRequest, UpdateModelRequest__Output as _infermesh_registry_v1_UpdateModelRequest__Output } from '../../../infermesh/registry/v1/UpdateModelRequest';
import type { Version as _infermesh_registry_v1_Version, Version__Output as _infermesh_registry_v1_Version__Output } from '../../../infermesh/registry/v1/Version';
import type { WatchEventsRequest as _infermesh_registry_v1_WatchEventsRequest, WatchEventsRequest__Output as _infermesh_registry_v1_WatchEventsRequest__Output } from '../../../infermesh/registry/v1/WatchEventsRequest';

export interface RegistryClient extends grpc.Client {
  ArchiveVersion(argument: _infermesh_registry_v1_ArchiveVersionRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientUnaryCall;
  ArchiveVersion(argument: _infermesh_registry_v1_ArchiveVersionRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientUnaryCall;
  ArchiveVersion(argument: _infermesh_registry_v1_ArchiveVersionRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientUnaryCall;
  ArchiveVersion(argument: _infermesh_registry_v1_ArchiveVersionRequest, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientUnaryCall;
  archiveVersion(argument: _infermesh_registry_v1_ArchiveVersionRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientUnaryCall;
  archiveVersion(argument: _infermesh_registry_v1_ArchiveVersionRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientUnaryCall;
  archiveVersion(argument: _infermesh_registry_v1_ArchiveVersionRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientUnaryCall;
  archiveVersion(argument: _infermesh_registry_v1_ArchiveVersionRequest, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientUnaryCall;
  
  CreateKey(argument: _infermesh_registry_v1_CreateKeyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_CreateKeyResponse__Output>): grpc.ClientUnaryCall;
  CreateKey(argument: _infermesh_registry_v1_CreateKeyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_CreateKeyResponse__Output>): grpc.ClientUnaryCall;
  CreateKey(argument: _infermesh_registry_v1_CreateKeyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_CreateKeyResponse__Output>): grpc.ClientUnaryCall;
  CreateKey(argument: _infermesh_registry_v1_CreateKeyRequest, callback: grpc.requestCallback<_infermesh_registry_v1_CreateKeyResponse__Output>): grpc.ClientUnaryCall;
  createKey(argument: _infermesh_registry_v1_CreateKeyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_CreateKeyResponse__Output>): grpc.ClientUnaryCall;
  createKey(argument: _infermesh_registry_v1_CreateKeyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_CreateKeyResponse__Output>): grpc.ClientUnaryCall;
  createKey(argument: _infermesh_registry_v1_CreateKeyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_CreateKeyResponse__Output>): grpc.ClientUnaryCall;
  createKey(argument: _infermesh_registry_v1_CreateKeyRequest, callback: grpc.requestCallback<_infermesh_registry_v1_CreateKeyResponse__Output>): grpc.ClientUnaryCall;
  
  CreateModel(argument: _infermesh_registry_v1_CreateModelRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  CreateModel(argument: _infermesh_registry_v1_CreateModelRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  CreateModel(argument: _infermesh_registry_v1_CreateModelRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  CreateModel(argument: _infermesh_registry_v1_CreateModelRequest, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  createModel(argument: _infermesh_registry_v1_CreateModelRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  createModel(argument: _infermesh_registry_v1_CreateModelRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  createModel(argument: _infermesh_registry_v1_CreateModelRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  createModel(argument: _infermesh_registry_v1_CreateModelRequest, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  
  DeleteVersion(argument: _infermesh_registry_v1_DeleteVersionRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_DeleteVersionResponse__Output>): grpc.ClientUnaryCall;
  DeleteVersion(argument: _infermesh_registry_v1_DeleteVersionRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_DeleteVersionResponse__Output>): grpc.ClientUnaryCall;
  DeleteVersion(argument: _infermesh_registry_v1_DeleteVersionRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_DeleteVersionResponse__Output>): grpc.ClientUnaryCall;
  DeleteVersion(argument: _infermesh_registry_v1_DeleteVersionRequest, callback: grpc.requestCallback<_infermesh_registry_v1_DeleteVersionResponse__Output>): grpc.ClientUnaryCall;
  deleteVersion(argument: _infermesh_registry_v1_DeleteVersionRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_DeleteVersionResponse__Output>): grpc.ClientUnaryCall;
  deleteVersion(argument: _infermesh_registry_v1_DeleteVersionRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_DeleteVersionResponse__Output>): grpc.ClientUnaryCall;
  deleteVersion(argument: _infermesh_registry_v1_DeleteVersionRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_DeleteVersionResponse__Output>): grpc.ClientUnaryCall;
  deleteVersion(argument: _infermesh_registry_v1_DeleteVersionRequest, callback: grpc.requestCallback<_infermesh_registry_v1_DeleteVersionResponse__Output>): grpc.ClientUnaryCall;
  
  GetModel(argument: _infermesh_registry_v1_GetModelRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  GetModel(argument: _infermesh_registry_v1_GetModelRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  GetModel(argument: _infermesh_registry_v1_GetModelRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  GetModel(argument: _infermesh_registry_v1_GetModelRequest, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  getModel(argument: _infermesh_registry_v1_GetModelRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  getModel(argument: _infermesh_registry_v1_GetModelRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  getModel(argument: _infermesh_registry_v1_GetModelRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  getModel(argument: _infermesh_registry_v1_GetModelRequest, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  
  GetVersion(argument: _infermesh_registry_v1_GetVersionRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientUnaryCall;
  GetVersion(argument: _infermesh_registry_v1_GetVersionRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientUnaryCall;
  GetVersion(argument: _infermesh_registry_v1_GetVersionRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientUnaryCall;
  GetVersion(argument: _infermesh_registry_v1_GetVersionRequest, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientUnaryCall;
  getVersion(argument: _infermesh_registry_v1_GetVersionRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientUnaryCall;
  getVersion(argument: _infermesh_registry_v1_GetVersionRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientUnaryCall;
  getVersion(argument: _infermesh_registry_v1_GetVersionRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientUnaryCall;
  getVersion(argument: _infermesh_registry_v1_GetVersionRequest, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientUnaryCall;
  
  ListKeys(argument: _infermesh_registry_v1_ListKeysRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_ListKeysResponse__Output>): grpc.ClientUnaryCall;
  ListKeys(argument: _infermesh_registry_v1_ListKeysRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_ListKeysResponse__Output>): grpc.ClientUnaryCall;
  ListKeys(argument: _infermesh_registry_v1_ListKeysRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_ListKeysResponse__Output>): grpc.ClientUnaryCall;
  ListKeys(argument: _infermesh_registry_v1_ListKeysRequest, callback: grpc.requestCallback<_infermesh_registry_v1_ListKeysResponse__Output>): grpc.ClientUnaryCall;
  listKeys(argument: _infermesh_registry_v1_ListKeysRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_ListKeysResponse__Output>): grpc.ClientUnaryCall;
  listKeys(argument: _infermesh_registry_v1_ListKeysRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_ListKeysResponse__Output>): grpc.ClientUnaryCall;
  listKeys(argument: _infermesh_registry_v1_ListKeysRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_ListKeysResponse__Output>): grpc.ClientUnaryCall;
  listKeys(argument: _infermesh_registry_v1_ListKeysRequest, callback: grpc.requestCallback<_infermesh_registry_v1_ListKeysResponse__Output>): grpc.ClientUnaryCall;
  
  ListModels(argument: _infermesh_registry_v1_ListModelsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_ListModelsResponse__Output>): grpc.ClientUnaryCall;
  ListModels(argument: _infermesh_registry_v1_ListModelsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_ListModelsResponse__Output>): grpc.ClientUnaryCall;
  ListModels(argument: _infermesh_registry_v1_ListModelsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_ListModelsResponse__Output>): grpc.ClientUnaryCall;
  ListModels(argument: _infermesh_registry_v1_ListModelsRequest, callback: grpc.requestCallback<_infermesh_registry_v1_ListModelsResponse__Output>): grpc.ClientUnaryCall;
  listModels(argument: _infermesh_registry_v1_ListModelsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_ListModelsResponse__Output>): grpc.ClientUnaryCall;
  listModels(argument: _infermesh_registry_v1_ListModelsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_ListModelsResponse__Output>): grpc.ClientUnaryCall;
  listModels(argument: _infermesh_registry_v1_ListModelsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_ListModelsResponse__Output>): grpc.ClientUnaryCall;
  listModels(argument: _infermesh_registry_v1_ListModelsRequest, callback: grpc.requestCallback<_infermesh_registry_v1_ListModelsResponse__Output>): grpc.ClientUnaryCall;
  
  ListPods(argument: _infermesh_registry_v1_ListPodsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_ListPodsResponse__Output>): grpc.ClientUnaryCall;
  ListPods(argument: _infermesh_registry_v1_ListPodsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_ListPodsResponse__Output>): grpc.ClientUnaryCall;
  ListPods(argument: _infermesh_registry_v1_ListPodsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_ListPodsResponse__Output>): grpc.ClientUnaryCall;
  ListPods(argument: _infermesh_registry_v1_ListPodsRequest, callback: grpc.requestCallback<_infermesh_registry_v1_ListPodsResponse__Output>): grpc.ClientUnaryCall;
  listPods(argument: _infermesh_registry_v1_ListPodsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_ListPodsResponse__Output>): grpc.ClientUnaryCall;
  listPods(argument: _infermesh_registry_v1_ListPodsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_ListPodsResponse__Output>): grpc.ClientUnaryCall;
  listPods(argument: _infermesh_registry_v1_ListPodsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_ListPodsResponse__Output>): grpc.ClientUnaryCall;
  listPods(argument: _infermesh_registry_v1_ListPodsRequest, callback: grpc.requestCallback<_infermesh_registry_v1_ListPodsResponse__Output>): grpc.ClientUnaryCall;
  
  ListVersions(argument: _infermesh_registry_v1_ListVersionsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_ListVersionsResponse__Output>): grpc.ClientUnaryCall;
  ListVersions(argument: _infermesh_registry_v1_ListVersionsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_ListVersionsResponse__Output>): grpc.ClientUnaryCall;
  ListVersions(argument: _infermesh_registry_v1_ListVersionsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_ListVersionsResponse__Output>): grpc.ClientUnaryCall;
  ListVersions(argument: _infermesh_registry_v1_ListVersionsRequest, callback: grpc.requestCallback<_infermesh_registry_v1_ListVersionsResponse__Output>): grpc.ClientUnaryCall;
  listVersions(argument: _infermesh_registry_v1_ListVersionsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_ListVersionsResponse__Output>): grpc.ClientUnaryCall;
  listVersions(argument: _infermesh_registry_v1_ListVersionsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_ListVersionsResponse__Output>): grpc.ClientUnaryCall;
  listVersions(argument: _infermesh_registry_v1_ListVersionsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_ListVersionsResponse__Output>): grpc.ClientUnaryCall;
  listVersions(argument: _infermesh_registry_v1_ListVersionsRequest, callback: grpc.requestCallback<_infermesh_registry_v1_ListVersionsResponse__Output>): grpc.ClientUnaryCall;
  
  PullArtifact(argument: _infermesh_registry_v1_PullArtifactRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_infermesh_registry_v1_ArtifactChunk__Output>;
  PullArtifact(argument: _infermesh_registry_v1_PullArtifactRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_infermesh_registry_v1_ArtifactChunk__Output>;
  pullArtifact(argument: _infermesh_registry_v1_PullArtifactRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_infermesh_registry_v1_ArtifactChunk__Output>;
  pullArtifact(argument: _infermesh_registry_v1_PullArtifactRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_infermesh_registry_v1_ArtifactChunk__Output>;
  
  PushVersion(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientWritableStream<_infermesh_registry_v1_PushVersionRequest>;
  PushVersion(metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientWritableStream<_infermesh_registry_v1_PushVersionRequest>;
  PushVersion(options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientWritableStream<_infermesh_registry_v1_PushVersionRequest>;
  PushVersion(callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientWritableStream<_infermesh_registry_v1_PushVersionRequest>;
  pushVersion(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientWritableStream<_infermesh_registry_v1_PushVersionRequest>;
  pushVersion(metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientWritableStream<_infermesh_registry_v1_PushVersionRequest>;
  pushVersion(options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientWritableStream<_infermesh_registry_v1_PushVersionRequest>;
  pushVersion(callback: grpc.requestCallback<_infermesh_registry_v1_Version__Output>): grpc.ClientWritableStream<_infermesh_registry_v1_PushVersionRequest>;
  
  RevokeKey(argument: _infermesh_registry_v1_RevokeKeyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_ApiKey__Output>): grpc.ClientUnaryCall;
  RevokeKey(argument: _infermesh_registry_v1_RevokeKeyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_ApiKey__Output>): grpc.ClientUnaryCall;
  RevokeKey(argument: _infermesh_registry_v1_RevokeKeyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_ApiKey__Output>): grpc.ClientUnaryCall;
  RevokeKey(argument: _infermesh_registry_v1_RevokeKeyRequest, callback: grpc.requestCallback<_infermesh_registry_v1_ApiKey__Output>): grpc.ClientUnaryCall;
  revokeKey(argument: _infermesh_registry_v1_RevokeKeyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_ApiKey__Output>): grpc.ClientUnaryCall;
  revokeKey(argument: _infermesh_registry_v1_RevokeKeyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_ApiKey__Output>): grpc.ClientUnaryCall;
  revokeKey(argument: _infermesh_registry_v1_RevokeKeyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_ApiKey__Output>): grpc.ClientUnaryCall;
  revokeKey(argument: _infermesh_registry_v1_RevokeKeyRequest, callback: grpc.requestCallback<_infermesh_registry_v1_ApiKey__Output>): grpc.ClientUnaryCall;
  
  UpdateModel(argument: _infermesh_registry_v1_UpdateModelRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  UpdateModel(argument: _infermesh_registry_v1_UpdateModelRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  UpdateModel(argument: _infermesh_registry_v1_UpdateModelRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  UpdateModel(argument: _infermesh_registry_v1_UpdateModelRequest, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  updateModel(argument: _infermesh_registry_v1_UpdateModelRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  updateModel(argument: _infermesh_registry_v1_UpdateModelRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  updateModel(argument: _infermesh_registry_v1_UpdateModelRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  updateModel(argument: _infermesh_registry_v1_UpdateModelRequest, callback: grpc.requestCallback<_infermesh_registry_v1_Model__Output>): grpc.ClientUnaryCall;
  
  WatchEvents(argument: _infermesh_registry_v1_WatchEventsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_infermesh_registry_v1_Event__Output>;
  WatchEvents(argument: _infermesh_registry_v1_WatchEventsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_infermesh_registry_v1_Event__Output>;
  watchEvents(argument: _infermesh_registry_v1_WatchEventsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_infermesh_registry_v1_Event__Output>;
  watchEvents(argument: _infermesh_registry_v1_WatchEventsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_infermesh_registry_v1_Event__Output>;
  
}

export interface RegistryHandlers extends grpc.UntypedServiceImplementation {
  ArchiveVersion: grpc.handleUnaryCall<_infermesh_registry_v1_ArchiveVersionRequest__Output, _infermesh_registry_v1_Version>;
  
  CreateKey: grpc.handleUnaryCall<_infermesh_registry_v1_CreateKeyRequest__Output, _infermesh_registry_v1_CreateKeyResponse>;
  
  CreateModel: grpc.handleUnaryCall<_infermesh_registry_v1_CreateModelRequest__Output, _infermesh_registry_v1_Model>;
  
  DeleteVersion: grpc.handleUnaryCall<_infermesh_registry_v1_DeleteVersionRequest__Output, _infermesh_registry_v1_DeleteVersionResponse>;
  
  GetModel: grpc.handleUnaryCall<_infermesh_registry_v1_GetModelRequest__Output, _infermesh_registry_v1_Model>;
  
  GetVersion: grpc.handleUnaryCall<_infermesh_registry_v1_GetVersionRequest__Output, _infermesh_registry_v1_Version>;
  
  ListKeys: grpc.handleUnaryCall<_infermesh_registry_v1_ListKeysRequest__Output, _infermesh_registry_v1_ListKeysResponse>;
  
  ListModels: grpc.handleUnaryCall<_infermesh_registry_v1_ListModelsRequest__Output, _infermesh_registry_v1_ListModelsResponse>;
  
  ListPods: grpc.handleUnaryCall<_infermesh_registry_v1_ListPodsRequest__Output, _infermesh_registry_v1_ListPodsResponse>;
  
  ListVersions: grpc.handleUnaryCall<_infermesh_registry_v1_ListVersionsRequest__Output, _infermesh_registry_v1_ListVersionsResponse>;
  
  PullArtifact: grpc.handleServerStreamingCall<_infermesh_registry_v1_PullArtifactRequest__Output, _infermesh_registry_v1_ArtifactChunk>;
  
  PushVersion: grpc.handleClientStreamingCall<_infermesh_registry_v1_PushVersionRequest__Output, _infermesh_registry_v1_Version>;
  
  RevokeKey: grpc.handleUnaryCall<_infermesh_registry_v1_RevokeKeyRequest__Output, _infermesh_registry_v1_ApiKey>;
  
  UpdateModel: grpc.handleUnaryCall<_infermesh_registry_v1_UpdateModelRequest__Output, _infermesh_registry_v1_Model>;
  
  WatchEvents: grpc.handleServerStreamingCall<_infermesh_registry_v1_WatchEventsRequest__Output, _infermesh_registry_v1_Event>;
  
}

export interface RegistryDefinition extends grpc.ServiceDefinition {
  ArchiveVersion: MethodDefinition<_infermesh_registry_v1_ArchiveVersionRequest, _infermesh_registry_v1_Version, _infermesh_registry_v1_ArchiveVersionRequest__Output, _infermesh_registry_v1_Version__Output>
  CreateKey: MethodDefinition<_infermesh_registry_v1_CreateKeyRequest, _infermesh_registry_v1_CreateKeyResponse, _infermesh_registry_v1_CreateKeyRequest__Output, _infermesh_registry_v1_CreateKeyResponse__Output>
  CreateModel: MethodDefinition<_infermesh_registry_v1_CreateModelRequest, _infermesh_registry_v1_Model, _infermesh_registry_v1_CreateModelRequest__Output, _infermesh_registry_v1_Model__Output>
  DeleteVersion: MethodDefinition<_infermesh_registry_v1_DeleteVersionRequest, _infermesh_registry_v1_DeleteVersionResponse, _infermesh_registry_v1_DeleteVersionRequest__Output, _infermesh_registry_v1_DeleteVersionResponse__Output>
  GetModel: MethodDefinition<_infermesh_registry_v1_GetModelRequest, _infermesh_registry_v1_Model, _infermesh_registry_v1_GetModelRequest__Output, _infermesh_registry_v1_Model__Output>
  GetVersion: MethodDefinition<_infermesh_registry_v1_GetVersionRequest, _infermesh_registry_v1_Version, _infermesh_registry_v1_GetVersionRequest__Output, _infermesh_registry_v1_Version__Output>
  ListKeys: MethodDefinition<_infermesh_registry_v1_ListKeysRequest, _infermesh_registry_v1_ListKeysResponse, _infermesh_registry_v1_ListKeysRequest__Output, _infermesh_registry_v1_ListKeysResponse__Output>
  ListModels: MethodDefinition<_infermesh_registry_v1_ListModelsRequest, _infermesh_registry_v1_ListModelsResponse, _infermesh_registry_v1_ListModelsRequest__Output, _infermesh_registry_v1_ListModelsResponse__Output>
  ListPods: MethodDefinition<_infermesh_registry_v1_ListPodsRequest, _infermesh_registry_v1_ListPodsResponse, _infermesh_registry_v1_ListPodsRequest__Output, _infermesh_registry_v1_ListPodsResponse__Output>
  ListVersions: MethodDefinition<_infermesh_registry_v1_ListVersionsRequest, _infermesh_registry_v1_ListVersionsResponse, _infermesh_registry_v1_ListVersionsRequest__Output, _infermesh_registry_v1_ListVersionsResponse__Output>
  PullArtifact: MethodDefinition<_infermesh_registry_v1_PullArtifactRequest, _infermesh_registry_v1_ArtifactChunk, _infermesh_registry_v1_PullArtifactRequest__Output, _infermesh_registry_v1_ArtifactChunk__Output>
  PushVersion: MethodDefinition<_infermesh_registry_v1_PushVersionRequest, _infermesh_registry_v1_Version, _infermesh_registry_v1_PushVersionRequest__Output, _infermesh_registry_v1_Version__Output>
  RevokeKey: MethodDefinition<_infermesh_registry_v1_RevokeKeyRequest, _infermesh_registry_v1_ApiKey, _infermesh_registry_v1_RevokeKeyRequest__Output, _infermesh_registry_v1_ApiKey__Output>
  UpdateModel: MethodDefinition<_infermesh_registry_v1_UpdateModelRequest, _infermesh_registry_v1_Model, _infermesh_registry_v1_UpdateModelRequest__Output, _infermesh_registry_v1_Model__Output>
  WatchEvents: MethodDefinition<_infermesh_registry_v1_WatchEventsRequest, _infermesh_registry_v1_Event, _infermesh_registry_v1_WatchEventsRequest__Output, _infermesh_registry_v1_Event__Output>
}
