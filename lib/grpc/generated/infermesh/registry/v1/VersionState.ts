// Original file: proto/infermesh/registry/v1/registry.proto

export const VersionState = {
  VERSION_STATE_UNSPECIFIED: 'VERSION_STATE_UNSPECIFIED',
  VERSION_STATE_AVAILABLE: 'VERSION_STATE_AVAILABLE',
  VERSION_STATE_ARCHIVED: 'VERSION_STATE_ARCHIVED',
} as const;

export type VersionState =
  | 'VERSION_STATE_UNSPECIFIED'
  | 0
  | 'VERSION_STATE_AVAILABLE'
  | 1
  | 'VERSION_STATE_ARCHIVED'
  | 2

export type VersionState__Output = typeof VersionState[keyof typeof VersionState]
