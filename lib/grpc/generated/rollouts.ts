import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { ApiKey as _infermesh_registry_v1_ApiKey, ApiKey__Output as _infermesh_registry_v1_ApiKey__Output } from './infermesh/registry/v1/ApiKey';
import type { ArchiveVersionRequest as _infermesh_registry_v1_ArchiveVersionRequest, ArchiveVersionRequest__Output as _infermesh_registry_v1_ArchiveVersionRequest__Output } from './infermesh/registry/v1/ArchiveVersionRequest';
import type { ArtifactChunk as _infermesh_registry_v1_ArtifactChunk, ArtifactChunk__Output as _infermesh_registry_v1_ArtifactChunk__Output } from './infermesh/registry/v1/ArtifactChunk';
import type { CreateKeyRequest as _infermesh_registry_v1_CreateKeyRequest, CreateKeyRequest__Output as _infermesh_registry_v1_CreateKeyRequest__Output } from './infermesh/registry/v1/CreateKeyRequest';
import type { CreateKeyResponse as _infermesh_registry_v1_CreateKeyResponse, CreateKeyResponse__Output as _infermesh_registry_v1_CreateKeyResponse__Output } from './infermesh/registry/v1/CreateKeyResponse';
import type { CreateModelRequest as _infermesh_registry_v1_CreateModelRequest, CreateModelRequest__Output as _infermesh_registry_v1_CreateModelRequest__Output } from './infermesh/registry/v1/CreateModelRequest';
import type { DeleteVersionRequest as _infermesh_registry_v1_DeleteVersionRequest, DeleteVersionRequest__Output as _infermesh_registry_v1_DeleteVersionRequest__Output } from './infermesh/registry/v1/DeleteVersionRequest';
import type { DeleteVersionResponse as _infermesh_registry_v1_DeleteVersionResponse, DeleteVersionResponse__Output as _infermesh_registry_v1_DeleteVersionResponse__Output } from './infermesh/registry/v1/DeleteVersionResponse';
import type { DynamicBatching as _infermesh_registry_v1_DynamicBatching, DynamicBatching__Output as _infermesh_registry_v1_DynamicBatching__Output } from './infermesh/registry/v1/DynamicBatching';
import type { Event as _infermesh_registry_v1_Event, Event__Output as _infermesh_registry_v1_Event__Output } from './infermesh/registry/v1/Event';
import type { GetModelRequest as _infermesh_registry_v1_GetModelRequest, GetModelRequest__Output as _infermesh_registry_v1_GetModelRequest__Output } from './infermesh/registry/v1/GetModelRequest';
import type { GetVersionRequest as _infermesh_registry_v1_GetVersionRequest, GetVersionRequest__Output as _infermesh_registry_v1_GetVersionRequest__Output } from './infermesh/registry/v1/GetVersionRequest';
import type { ListKeysRequest as _infermesh_registry_v1_ListKeysRequest, ListKeysRequest__Output as _infermesh_registry_v1_ListKeysRequest__Output } from './infermesh/registry/v1/ListKeysRequest';
import type { ListKeysResponse as _infermesh_registry_v1_ListKeysResponse, ListKeysResponse__Output as _infermesh_registry_v1_ListKeysResponse__Output } from './infermesh/registry/v1/ListKeysResponse';
import type { ListModelsRequest as _infermesh_registry_v1_ListModelsRequest, ListModelsRequest__Output as _infermesh_registry_v1_ListModelsRequest__Output } from './infermesh/registry/v1/ListModelsRequest';
import type { ListModelsResponse as _infermesh_registry_v1_ListModelsResponse, ListModelsResponse__Output as _infermesh_registry_v1_ListModelsResponse__Output } from './infermesh/registry/v1/ListModelsResponse';
import type { ListPodsRequest as _infermesh_registry_v1_ListPodsRequest, ListPodsRequest__Output as _infermesh_registry_v1_ListPodsRequest__Output } from './infermesh/registry/v1/ListPodsRequest';
import type { ListPodsResponse as _infermesh_registry_v1_ListPodsResponse, ListPodsResponse__Output as _infermesh_registry_v1_ListPodsResponse__Output } from './infermesh/registry/v1/ListPodsResponse';
import type { ListVersionsRequest as _infermesh_registry_v1_ListVersionsRequest, ListVersionsRequest__Output as _infermesh_registry_v1_ListVersionsRequest__Output } from './infermesh/registry/v1/ListVersionsRequest';
import type { ListVersionsResponse as _infermesh_registry_v1_ListVersionsResponse, ListVersionsResponse__Output as _infermesh_registry_v1_ListVersionsResponse__Output } from './infermesh/registry/v1/ListVersionsResponse';
import type { Model as _infermesh_registry_v1_Model, Model__Output as _infermesh_registry_v1_Model__Output } from './infermesh/registry/v1/Model';
import type { PlacedVersion as _infermesh_registry_v1_PlacedVersion, PlacedVersion__Output as _infermesh_registry_v1_PlacedVersion__Output } from './infermesh/registry/v1/PlacedVersion';
import type { Pod as _infermesh_registry_v1_Pod, Pod__Output as _infermesh_registry_v1_Pod__Output } from './infermesh/registry/v1/Pod';
import type { PodVersion as _infermesh_registry_v1_PodVersion, PodVersion__Output as _infermesh_registry_v1_PodVersion__Output } from './infermesh/registry/v1/PodVersion';
import type { PullArtifactRequest as _infermesh_registry_v1_PullArtifactRequest, PullArtifactRequest__Output as _infermesh_registry_v1_PullArtifactRequest__Output } from './infermesh/registry/v1/PullArtifactRequest';
import type { PushHeader as _infermesh_registry_v1_PushHeader, PushHeader__Output as _infermesh_registry_v1_PushHeader__Output } from './infermesh/registry/v1/PushHeader';
import type { PushVersionRequest as _infermesh_registry_v1_PushVersionRequest, PushVersionRequest__Output as _infermesh_registry_v1_PushVersionRequest__Output } from './infermesh/registry/v1/PushVersionRequest';
import type { RegistryClient as _infermesh_registry_v1_RegistryClient, RegistryDefinition as _infermesh_registry_v1_RegistryDefinition } from './infermesh/registry/v1/Registry';
import type { RevokeKeyRequest as _infermesh_registry_v1_RevokeKeyRequest, RevokeKeyRequest__Output as _infermesh_registry_v1_RevokeKeyRequest__Output } from './infermesh/registry/v1/RevokeKeyRequest';
import type { Rollout as _infermesh_registry_v1_Rollout, Rollout__Output as _infermesh_registry_v1_Rollout__Output } from './infermesh/registry/v1/Rollout';
import type { RolloutAnalysis as _infermesh_registry_v1_RolloutAnalysis, RolloutAnalysis__Output as _infermesh_registry_v1_RolloutAnalysis__Output } from './infermesh/registry/v1/RolloutAnalysis';
import type { RolloutHistoryEntry as _infermesh_registry_v1_RolloutHistoryEntry, RolloutHistoryEntry__Output as _infermesh_registry_v1_RolloutHistoryEntry__Output } from './infermesh/registry/v1/RolloutHistoryEntry';
import type { RolloutRequest as _infermesh_registry_v1_RolloutRequest, RolloutRequest__Output as _infermesh_registry_v1_RolloutRequest__Output } from './infermesh/registry/v1/RolloutRequest';
import type { RolloutStatus as _infermesh_registry_v1_RolloutStatus, RolloutStatus__Output as _infermesh_registry_v1_RolloutStatus__Output } from './infermesh/registry/v1/RolloutStatus';
import type { RolloutsClient as _infermesh_registry_v1_RolloutsClient, RolloutsDefinition as _infermesh_registry_v1_RolloutsDefinition } from './infermesh/registry/v1/Rollouts';
import type { ServingConfig as _infermesh_registry_v1_ServingConfig, ServingConfig__Output as _infermesh_registry_v1_ServingConfig__Output } from './infermesh/registry/v1/ServingConfig';
import type { SetRolloutWeightRequest as _infermesh_registry_v1_SetRolloutWeightRequest, SetRolloutWeightRequest__Output as _infermesh_registry_v1_SetRolloutWeightRequest__Output } from './infermesh/registry/v1/SetRolloutWeightRequest';
import type { StartRolloutRequest as _infermesh_registry_v1_StartRolloutRequest, StartRolloutRequest__Output as _infermesh_registry_v1_StartRolloutRequest__Output } from './infermesh/registry/v1/StartRolloutRequest';
import type { TensorSignature as _infermesh_registry_v1_TensorSignature, TensorSignature__Output as _infermesh_registry_v1_TensorSignature__Output } from './infermesh/registry/v1/TensorSignature';
import type { TrafficTarget as _infermesh_registry_v1_TrafficTarget, TrafficTarget__Output as _infermesh_registry_v1_TrafficTarget__Output } from './infermesh/registry/v1/TrafficTarget';
import type { UpdateModelRequest as _infermesh_registry_v1_UpdateModelRequest, UpdateModelRequest__Output as _infermesh_registry_v1_UpdateModelRequest__Output } from './infermesh/registry/v1/UpdateModelRequest';
import type { Version as _infermesh_registry_v1_Version, Version__Output as _infermesh_registry_v1_Version__Output } from './infermesh/registry/v1/Version';
import type { WarmupInput as _infermesh_registry_v1_WarmupInput, WarmupInput__Output as _infermesh_registry_v1_WarmupInput__Output } from './infermesh/registry/v1/WarmupInput';
import type { WarmupSample as _infermesh_registry_v1_WarmupSample, WarmupSample__Output as _infermesh_registry_v1_WarmupSample__Output } from './infermesh/registry/v1/WarmupSample';
import type { WatchEventsRequest as _infermesh_registry_v1_WatchEventsRequest, WatchEventsRequest__Output as _infermesh_registry_v1_WatchEventsRequest__Output } from './infermesh/registry/v1/WatchEventsRequest';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  infermesh: {
    registry: {
      v1: {
        ApiKey: MessageTypeDefinition<_infermesh_registry_v1_ApiKey, _infermesh_registry_v1_ApiKey__Output>
        ArchiveVersionRequest: MessageTypeDefinition<_infermesh_registry_v1_ArchiveVersionRequest, _infermesh_registry_v1_ArchiveVersionRequest__Output>
        ArtifactChunk: MessageTypeDefinition<_infermesh_registry_v1_ArtifactChunk, _infermesh_registry_v1_ArtifactChunk__Output>
        CreateKeyRequest: MessageTypeDefinition<_infermesh_registry_v1_CreateKeyRequest, _infermesh_registry_v1_CreateKeyRequest__Output>
        CreateKeyResponse: MessageTypeDefinition<_infermesh_registry_v1_CreateKeyResponse, _infermesh_registry_v1_CreateKeyResponse__Output>
        CreateModelRequest: MessageTypeDefinition<_infermesh_registry_v1_CreateModelRequest, _infermesh_registry_v1_CreateModelRequest__Output>
        DeleteVersionRequest: MessageTypeDefinition<_infermesh_registry_v1_DeleteVersionRequest, _infermesh_registry_v1_DeleteVersionRequest__Output>
        DeleteVersionResponse: MessageTypeDefinition<_infermesh_registry_v1_DeleteVersionResponse, _infermesh_registry_v1_DeleteVersionResponse__Output>
        DynamicBatching: MessageTypeDefinition<_infermesh_registry_v1_DynamicBatching, _infermesh_registry_v1_DynamicBatching__Output>
        Event: MessageTypeDefinition<_infermesh_registry_v1_Event, _infermesh_registry_v1_Event__Output>
        GetModelRequest: MessageTypeDefinition<_infermesh_registry_v1_GetModelRequest, _infermesh_registry_v1_GetModelRequest__Output>
        GetVersionRequest: MessageTypeDefinition<_infermesh_registry_v1_GetVersionRequest, _infermesh_registry_v1_GetVersionRequest__Output>
        ListKeysRequest: MessageTypeDefinition<_infermesh_registry_v1_ListKeysRequest, _infermesh_registry_v1_ListKeysRequest__Output>
        ListKeysResponse: MessageTypeDefinition<_infermesh_registry_v1_ListKeysResponse, _infermesh_registry_v1_ListKeysResponse__Output>
        ListModelsRequest: MessageTypeDefinition<_infermesh_registry_v1_ListModelsRequest, _infermesh_registry_v1_ListModelsRequest__Output>
        ListModelsResponse: MessageTypeDefinition<_infermesh_registry_v1_ListModelsResponse, _infermesh_registry_v1_ListModelsResponse__Output>
        ListPodsRequest: MessageTypeDefinition<_infermesh_registry_v1_ListPodsRequest, _infermesh_registry_v1_ListPodsRequest__Output>
        ListPodsResponse: MessageTypeDefinition<_infermesh_registry_v1_ListPodsResponse, _infermesh_registry_v1_ListPodsResponse__Output>
        ListVersionsRequest: MessageTypeDefinition<_infermesh_registry_v1_ListVersionsRequest, _infermesh_registry_v1_ListVersionsRequest__Output>
        ListVersionsResponse: MessageTypeDefinition<_infermesh_registry_v1_ListVersionsResponse, _infermesh_registry_v1_ListVersionsResponse__Output>
        Model: MessageTypeDefinition<_infermesh_registry_v1_Model, _infermesh_registry_v1_Model__Output>
        PlacedVersion: MessageTypeDefinition<_infermesh_registry_v1_PlacedVersion, _infermesh_registry_v1_PlacedVersion__Output>
        Pod: MessageTypeDefinition<_infermesh_registry_v1_Pod, _infermesh_registry_v1_Pod__Output>
        PodVersion: MessageTypeDefinition<_infermesh_registry_v1_PodVersion, _infermesh_registry_v1_PodVersion__Output>
        PullArtifactRequest: MessageTypeDefinition<_infermesh_registry_v1_PullArtifactRequest, _infermesh_registry_v1_PullArtifactRequest__Output>
        PushHeader: MessageTypeDefinition<_infermesh_registry_v1_PushHeader, _infermesh_registry_v1_PushHeader__Output>
        PushVersionRequest: MessageTypeDefinition<_infermesh_registry_v1_PushVersionRequest, _infermesh_registry_v1_PushVersionRequest__Output>
        Registry: SubtypeConstructor<typeof grpc.Client, _infermesh_registry_v1_RegistryClient> & { service: _infermesh_registry_v1_RegistryDefinition }
        RevokeKeyRequest: MessageTypeDefinition<_infermesh_registry_v1_RevokeKeyRequest, _infermesh_registry_v1_RevokeKeyRequest__Output>
        Rollout: MessageTypeDefinition<_infermesh_registry_v1_Rollout, _infermesh_registry_v1_Rollout__Output>
        RolloutAnalysis: MessageTypeDefinition<_infermesh_registry_v1_RolloutAnalysis, _infermesh_registry_v1_RolloutAnalysis__Output>
        RolloutHistoryEntry: MessageTypeDefinition<_infermesh_registry_v1_RolloutHistoryEntry, _infermesh_registry_v1_RolloutHistoryEntry__Output>
        RolloutRequest: MessageTypeDefinition<_infermesh_registry_v1_RolloutRequest, _infermesh_registry_v1_RolloutRequest__Output>
        RolloutStatus: MessageTypeDefinition<_infermesh_registry_v1_RolloutStatus, _infermesh_registry_v1_RolloutStatus__Output>
        Rollouts: SubtypeConstructor<typeof grpc.Client, _infermesh_registry_v1_RolloutsClient> & { service: _infermesh_registry_v1_RolloutsDefinition }
        ServingConfig: MessageTypeDefinition<_infermesh_registry_v1_ServingConfig, _infermesh_registry_v1_ServingConfig__Output>
        SetRolloutWeightRequest: MessageTypeDefinition<_infermesh_registry_v1_SetRolloutWeightRequest, _infermesh_registry_v1_SetRolloutWeightRequest__Output>
        StartRolloutRequest: MessageTypeDefinition<_infermesh_registry_v1_StartRolloutRequest, _infermesh_registry_v1_StartRolloutRequest__Output>
        TensorSignature: MessageTypeDefinition<_infermesh_registry_v1_TensorSignature, _infermesh_registry_v1_TensorSignature__Output>
        TrafficTarget: MessageTypeDefinition<_infermesh_registry_v1_TrafficTarget, _infermesh_registry_v1_TrafficTarget__Output>
        UpdateModelRequest: MessageTypeDefinition<_infermesh_registry_v1_UpdateModelRequest, _infermesh_registry_v1_UpdateModelRequest__Output>
        Version: MessageTypeDefinition<_infermesh_registry_v1_Version, _infermesh_registry_v1_Version__Output>
        VersionState: EnumTypeDefinition
        WarmupInput: MessageTypeDefinition<_infermesh_registry_v1_WarmupInput, _infermesh_registry_v1_WarmupInput__Output>
        WarmupSample: MessageTypeDefinition<_infermesh_registry_v1_WarmupSample, _infermesh_registry_v1_WarmupSample__Output>
        WatchEventsRequest: MessageTypeDefinition<_infermesh_registry_v1_WatchEventsRequest, _infermesh_registry_v1_WatchEventsRequest__Output>
      }
    }
  }
}

