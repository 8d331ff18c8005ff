// NATS subjects and the schemas of every message infermesh sends over them, in one place.
// Registry events go to a JetStream stream (a consumer that was down replays what it missed);
// pod heartbeats are plain NATS messages (only the latest matters). Every decode validates.
import { randomUUID } from 'node:crypto';
import { DeliverPolicy, DiscardPolicy, JetStreamApiError, RetentionPolicy, StorageType, type Consumer, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { ErrorCode, MeshError } from './errors';
import { deleteConsumer, nameToken, resources } from './nats';
import { isPodIdentityName } from './tls';

/**
 * Subjects. Events: infermesh.events.<model>.<type>, the model name as one token (`nameToken`:
 * unchanged for letters, digits, '_' and '-'; '=' for the events about no model, key.created and
 * key.revoked); heartbeats: one subject for all pods.
 */
export const subjects = {
  eventsAll: 'infermesh.events.>',
  /** Every event of one model. */
  eventsOf: (model: string) => `infermesh.events.${nameToken(model)}.>`,
  event: (model: string, type: EventType) => `infermesh.events.${nameToken(model)}.${type}`,
  heartbeat: 'infermesh.pods.heartbeat',
  /**
   * A request on this subject makes every pod send a heartbeat soon (used by routers and registries
   * that start or reconnect): an empty message, without headers or a reply subject (isDiscoverRequest).
   */
  discover: 'infermesh.pods.discover',
  /**
   * A router asks for a version no pod holds (a request waits for it): the placement controller
   * puts it on a pod (docs/placement.md). Only routers may publish it.
   */
  placementDemand: 'infermesh.placement.demand',
} as const;

/**
 * Whether a message on `subjects.discover` is a discover request, as routers and registries send
 * it: core NATS, empty, without headers or a reply subject. Anything else that lands there is not
 * one: a JetStream push consumer whose deliver subject was set to it (a router's or pod's NATS
 * identity may create one on the event stream, and nats-server before 2.10 cannot restrict where it
 * delivers) sends events, which have a body and an ack reply subject, and idle heartbeats and flow
 * control, which are status messages in headers (`NATS/1.0 100 Idle Heartbeat`).
 */
export function isDiscoverRequest(msg: { data: Uint8Array; headers?: unknown; reply?: string }): boolean {
  return msg.data.length === 0 && msg.headers === undefined && !msg.reply;
}

/** The schema version every event and heartbeat carries; decoders reject others. */
export const SCHEMA_VERSION = 1;

/** One version's share of a model's traffic, in percent. */
export interface TrafficWeight {
  version: number;
  weight: number;
}

/** Dynamic batching settings a model asks pods for; unset fields take the pods' defaults. */
export interface BatchingConfig {
  enabled?: boolean;
  maxBatchSize?: number;
  maxQueueDelayUs?: number;
  preferredBatchSizes?: number[];
  maxQueueSize?: number;
}

/** One input of a warm-up request (registry.proto WarmupInput): its whole shape and raw bytes. */
export interface WarmupInputConfig {
  name: string;
  dims: number[];
  /** The raw tensor (raw_input_contents form), base64; absent: zeros. */
  rawData?: string;
}

/** One warm-up request (registry.proto WarmupSample). */
export interface WarmupSampleConfig {
  name: string;
  inputs: WarmupInputConfig[];
  /** Runs; absent: once. */
  count?: number;
}

/** A model's serving configuration (stored in its registry record, carried by model.config.changed). */
export interface ServingConfig {
  dynamicBatching?: BatchingConfig;
  /** Warm-up requests pods run on each version they load; absent: one synthetic request. */
  warmup?: WarmupSampleConfig[];
}

interface EventBase {
  schema: typeof SCHEMA_VERSION;
  /** Unique id; also the JetStream message id, so a retried publish is stored once. */
  id: string;
  /** RFC 3339. */
  time: string;
  /** The model it concerns; '' for an event about no model (key.created, key.revoked). */
  model: string;
  /**
   * Who caused it (audit): `key:<id>`, `jwt:<subject>`, `anonymous` (authentication off), or
   * `controller` for a rollout step the registry's own analysis took. Added to schema 1 as an
   * optional field, so readers of older events (and older readers) are unaffected; events stored
   * before it lack it, and every event the registry publishes now carries it.
   */
  principal?: string;
}

/** A model was created. */
export interface ModelCreatedEvent extends EventBase {
  type: 'model.created';
}

/** A new version's artifact is stored and its record written. */
export interface VersionPublishedEvent extends EventBase {
  type: 'version.published';
  version: number;
  sha256: string;
  sizeBytes: number;
}

/** The versions a model serves, and their weights, changed (a push, or a rollout step). */
export interface TrafficChangedEvent extends EventBase {
  type: 'traffic.changed';
  traffic: TrafficWeight[];
}

/** A model's description, labels or serving config changed; carries all three as they are now. */
export interface ModelConfigChangedEvent extends EventBase {
  type: 'model.config.changed';
  description: string;
  labels: Record<string, string>;
  config: ServingConfig;
}

/** A version was archived: it stays listed and pullable, but is never served again. */
export interface VersionArchivedEvent extends EventBase {
  type: 'version.archived';
  version: number;
}

/** A version's record was deleted, and its artifact too unless another version has the same bytes. */
export interface VersionDeletedEvent extends EventBase {
  type: 'version.deleted';
  version: number;
  sha256: string;
  artifactDeleted: boolean;
}

/** A rollout started, moved, paused, resumed, or ended (promoted or rolled back), by hand or by analysis. */
export interface RolloutChangedEvent extends EventBase {
  type: 'rollout.changed';
  action: 'started' | 'weight' | 'step' | 'promoted' | 'rolled_back' | 'paused' | 'resumed';
  stable: number;
  canary: number;
  /** The canary's share after the change, in percent. */
  weight: number;
  phase: 'progressing' | 'paused' | 'promoted' | 'rolled_back';
  reason: string;
}

/** An API key was created (its record, never its secret or hash); `model` is ''. */
export interface KeyCreatedEvent extends EventBase {
  type: 'key.created';
  keyId: string;
  name: string;
  grants: string[];
}

/** An API key was revoked; `model` is ''. */
export interface KeyRevokedEvent extends EventBase {
  type: 'key.revoked';
  keyId: string;
  name: string;
}

/** Why the placement controller put a version on a pod or took it off (services/registry/placement/plan.ts). */
export type PlacementReason = 'min_copies' | 'demand' | 'load' | 'cooled' | 'memory' | 'pod_gone' | 'not_served';
const PLACEMENT_REASONS: readonly string[] = ['min_copies', 'demand', 'load', 'cooled', 'memory', 'pod_gone', 'not_served'];

/**
 * The pods holding a version changed: `placed` are the pods told to load it now, `removed` those
 * told to unload it (`evicted`: for another version's room), each with the reason; `pods` is the
 * version's copies after the change.
 */
export interface PlacementChangedEvent extends EventBase {
  type: 'placement.changed';
  version: number;
  pods: string[];
  placed: string[];
  removed: string[];
  evicted: string[];
  reason: PlacementReason;
}

/** Every registry event. */
export type MeshEvent =
  | PlacementChangedEvent
  | KeyCreatedEvent
  | KeyRevokedEvent
  | RolloutChangedEvent
  | ModelCreatedEvent
  | VersionPublishedEvent
  | TrafficChangedEvent
  | ModelConfigChangedEvent
  | VersionArchivedEvent
  | VersionDeletedEvent;
export type EventType = MeshEvent['type'];
/** An event's payload, as a publisher builds it (schema, id and time are filled in). */
export type EventInput = DistributiveOmit<MeshEvent, 'schema' | 'id' | 'time'>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A model's load state on a pod, as reported in heartbeats and RepositoryIndex. */
export type ModelState = 'LOADING' | 'READY' | 'UNLOADING' | 'UNAVAILABLE';

/** One model version on a pod. */
export interface PodModel {
  name: string;
  version: number;
  state: ModelState;
  /** The execution provider the session really runs on (cuda or cpu). */
  provider: string;
  reason?: string;
  /** What loading the version cost in resident memory (ModelRepository: after its warm-up, less before). */
  memoryBytes?: number;
  /** Requests it has taken since it was loaded (the placement controller reads rates from the change). */
  requests?: number;
  /** Milliseconds since its last request, or since it was loaded (least recently used first). */
  idleMs?: number;
  /** Requests in flight on it (never evicted while it has some). */
  inflight?: number;
}

/** A router's request for a version that no pod holds (subjects.placementDemand). */
export interface PlacementDemand {
  schema: typeof SCHEMA_VERSION;
  router: string;
  model: string;
  version: number;
  /** Requests waiting for it at this router. */
  waiting: number;
}

/** A pod's memory: the budget for its models, what its loaded versions cost, its resident memory. */
export interface PodMemory {
  budgetBytes: number;
  /** What its versions cost (each one's memoryBytes) and what setAsideBytes holds besides. */
  usedBytes: number;
  /**
   * Of usedBytes, what session workers set aside with a run or a load past its budget hold of
   * versions the pod no longer lists, until they exit (which they may never do): no version's
   * memoryBytes counts it, and placement fits copies beside it. Absent from pods before it was
   * reported: 0.
   */
  setAsideBytes?: number;
  rssBytes: number;
}

/** A pod's announcement of itself: sent every heartbeat interval, at once on changes, and at exit. */
export interface Heartbeat {
  schema: typeof SCHEMA_VERSION;
  pod: string;
  /**
   * The name in spiffe://infermesh/pod/<name> the pod's certificate proves, when it is not the pod
   * name (pods sharing one certificate: INFERMESH_POD_IDENTITY). Absent: the pod name.
   */
  identity?: string;
  /** host:port where the pod serves the Open Inference Protocol. */
  address: string;
  /** serving: takes traffic; draining: finishing in-flight work, send nothing new; stopped: gone. */
  state: 'serving' | 'draining' | 'stopped';
  models: PodModel[];
  /** Requests in flight on the pod when the heartbeat was sent. */
  inflight: number;
  /** Its memory (absent from pods before it was reported). */
  memory?: PodMemory;
  time: string;
  /**
   * With TLS on, the pod signs each heartbeat with its certificate's key (lib/heartbeat-signatures.ts):
   * `boot`, a random id of the pod's process; `seq`, a number each heartbeat of it raises (at least
   * the wall clock in ms); `sig`, the signature (base64) over the rest. Added to schema 1 as
   * optional fields, all three or none: decoders before them ignore them, and a pod before them
   * sends none (routers and the registry with TLS on then take none of its heartbeats once its key
   * is known).
   */
  boot?: string;
  seq?: number;
  sig?: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Thrown when a message on an infermesh subject does not match its schema. */
export class SchemaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchemaError';
  }
}

function check(cond: unknown, what: string): asserts cond {
  if (!cond) throw new SchemaError(what);
}

const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isNat = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const optional = (v: unknown, is: (x: unknown) => boolean) => v === undefined || is(v);

const isWarmupInput = (v: unknown): boolean => isObject(v) && typeof v.name === 'string'
  && Array.isArray(v.dims) && v.dims.every(isNat) && optional(v.rawData, (x) => typeof x === 'string');
const isWarmupSample = (v: unknown): boolean => isObject(v) && typeof v.name === 'string'
  && Array.isArray(v.inputs) && v.inputs.every(isWarmupInput) && optional(v.count, isNat);

/** True when `v` has the shape of a ServingConfig (every field optional). */
function isServingConfig(v: unknown): v is ServingConfig {
  if (!isObject(v)) return false;
  if (!optional(v.warmup, (w) => Array.isArray(w) && w.every(isWarmupSample))) return false;
  const b = v.dynamicBatching;
  if (b === undefined) return true;
  return isObject(b)
    && optional(b.enabled, (x) => typeof x === 'boolean')
    && optional(b.maxBatchSize, isNat)
    && optional(b.maxQueueDelayUs, isNat)
    && optional(b.maxQueueSize, isNat)
    && optional(b.preferredBatchSizes, (x) => Array.isArray(x) && x.every(isNat));
}

function parseObject(bytes: Uint8Array): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(decoder.decode(bytes));
  } catch {
    throw new SchemaError('not JSON');
  }
  check(v !== null && typeof v === 'object' && !Array.isArray(v), 'not an object');
  const o = v as Record<string, unknown>;
  check(o.schema === SCHEMA_VERSION, `unsupported schema ${String(o.schema)}`);
  return o;
}

/** Event types about no model (their `model` is ''). */
const KEY_EVENTS: readonly unknown[] = ['key.created', 'key.revoked'];

const ROLLOUT_ACTIONS: readonly string[] = ['started', 'weight', 'step', 'promoted', 'rolled_back', 'paused', 'resumed'];
const ROLLOUT_PHASES: readonly string[] = ['progressing', 'paused', 'promoted', 'rolled_back'];

/** Builds a complete event from its payload. */
export function newEvent(input: EventInput): MeshEvent {
  return { schema: SCHEMA_VERSION, id: randomUUID(), time: new Date().toISOString(), ...input } as MeshEvent;
}

/** Serialises an event. */
export function encodeEvent(e: MeshEvent): Uint8Array {
  return encoder.encode(JSON.stringify(e));
}

/** Parses and validates an event; throws SchemaError for anything malformed or unknown. */
export function decodeEvent(bytes: Uint8Array): MeshEvent {
  const o = parseObject(bytes);
  check(isStr(o.id) && isStr(o.time) && typeof o.model === 'string', 'event without id, time or model');
  check(o.model !== '' || KEY_EVENTS.includes(o.type), 'event without id, time or model');
  check(optional(o.principal, isStr), 'event with a bad principal');
  switch (o.type) {
    case 'key.created':
      check(isStr(o.keyId) && typeof o.name === 'string' && Array.isArray(o.grants) && o.grants.every(isStr), 'key.created: bad keyId, name or grants');
      return o as unknown as KeyCreatedEvent;
    case 'key.revoked':
      check(isStr(o.keyId) && typeof o.name === 'string', 'key.revoked: bad keyId or name');
      return o as unknown as KeyRevokedEvent;
    case 'model.created':
      return o as unknown as ModelCreatedEvent;
    case 'version.published':
      check(isNat(o.version) && isStr(o.sha256) && isNat(o.sizeBytes), 'version.published: bad version, sha256 or sizeBytes');
      return o as unknown as VersionPublishedEvent;
    case 'rollout.changed':
      check(typeof o.action === 'string' && ROLLOUT_ACTIONS.includes(o.action) && isNat(o.stable) && isNat(o.canary) && isNat(o.weight)
        && typeof o.phase === 'string' && ROLLOUT_PHASES.includes(o.phase) && typeof o.reason === 'string', 'rollout.changed: bad action, versions, weight, phase or reason');
      return o as unknown as RolloutChangedEvent;
    case 'traffic.changed':
      check(Array.isArray(o.traffic) && o.traffic.every((t: unknown) => {
        const w = t as Partial<TrafficWeight> | null;
        return w !== null && typeof w === 'object' && isNat(w.version) && isNat(w.weight);
      }), 'traffic.changed: bad traffic');
      return o as unknown as TrafficChangedEvent;
    case 'model.config.changed':
      check(typeof o.description === 'string', 'model.config.changed: bad description');
      check(isObject(o.labels) && Object.values(o.labels).every((l) => typeof l === 'string'), 'model.config.changed: bad labels');
      check(isServingConfig(o.config), 'model.config.changed: bad config');
      return o as unknown as ModelConfigChangedEvent;
    case 'version.archived':
      check(isNat(o.version), 'version.archived: bad version');
      return o as unknown as VersionArchivedEvent;
    case 'version.deleted':
      check(isNat(o.version) && isStr(o.sha256) && typeof o.artifactDeleted === 'boolean', 'version.deleted: bad version, sha256 or artifactDeleted');
      return o as unknown as VersionDeletedEvent;
    case 'placement.changed': {
      const names = (v: unknown) => Array.isArray(v) && v.every((p) => isStr(p) && p.length <= HEARTBEAT_LIMITS.pod);
      check(isNat(o.version) && names(o.pods) && names(o.placed) && names(o.removed) && names(o.evicted)
        && typeof o.reason === 'string' && PLACEMENT_REASONS.includes(o.reason), 'placement.changed: bad version, pods or reason');
      return o as unknown as PlacementChangedEvent;
    }
    default:
      throw new SchemaError(`unknown event type ${String(o.type)}`);
  }
}

/** Serialises a heartbeat. */
export function encodeHeartbeat(h: Heartbeat): Uint8Array {
  return encoder.encode(JSON.stringify(h));
}

/** Characters of a heartbeat's signature at most: 1,024 bytes in base64, an RSA key of 8,192 bits' (ECDSA P-256's is 72 at most, Ed25519's 64). */
const SIGNATURE_CHARS = 1_368;

/**
 * Longest fields a heartbeat may carry: a pod name as Kubernetes allows (253), an address (a DNS
 * name and a port), a model name as the registry allows (128), a provider's name. A version's
 * reason is text for people, cut to `reason` characters rather than refused (cutReason), so a pod
 * whose load failed with a long message still serves what it has. `versions`: the most versions
 * one heartbeat lists, far more than a pod holds (each loaded version is a session of its own) and
 * fewer than a heartbeat within NATS's max_payload can name (HEARTBEAT_MAX_BYTES: some 25,000 at 41
 * bytes of JSON each at the least), so the bound costs no real pod anything. `signature`: the
 * characters of a signature (base64; a boot id is 16 to 64 base64url characters).
 */
export const HEARTBEAT_LIMITS = Object.freeze({ pod: 253, address: 300, model: 128, provider: 64, reason: 4096, versions: 16_384, signature: SIGNATURE_CHARS });

/**
 * Bytes a heartbeat takes at most: NATS's max_payload as a nats-server leaves it by default (1 MiB),
 * which no message on it passes. What a pod is asked instead of believing its heartbeat
 * (lib/grpc/pod-answers.ts) is received within the same bound, so an answer costs no more than a
 * heartbeat could.
 */
export const HEARTBEAT_MAX_BYTES = 1024 * 1024;

/** A version's reason as a heartbeat keeps it: cut to HEARTBEAT_LIMITS.reason characters, marked with an ellipsis. */
export function cutReason(reason: string): string {
  return reason.length > HEARTBEAT_LIMITS.reason ? `${reason.slice(0, HEARTBEAT_LIMITS.reason)}…` : reason;
}

/** Serialises a placement demand. */
export function encodePlacementDemand(d: PlacementDemand): Uint8Array {
  return encoder.encode(JSON.stringify(d));
}

/** Parses and validates a placement demand (a router's: bounded names, a version number). */
export function decodePlacementDemand(bytes: Uint8Array): PlacementDemand {
  check(bytes.length <= 4096, 'placement demand: too large');
  const o = parseObject(bytes);
  check(isStr(o.router) && o.router.length <= HEARTBEAT_LIMITS.pod && isStr(o.model) && o.model.length <= HEARTBEAT_LIMITS.model
    && isNat(o.version) && o.version > 0 && isNat(o.waiting), 'placement demand: bad router, model, version or waiting');
  return { schema: SCHEMA_VERSION, router: o.router, model: o.model, version: o.version, waiting: o.waiting };
}

/** Parses and validates a heartbeat. */
export function decodeHeartbeat(bytes: Uint8Array): Heartbeat {
  const o = parseObject(bytes);
  check(isStr(o.pod) && isStr(o.address), 'heartbeat without pod or address');
  check((o.pod as string).length <= HEARTBEAT_LIMITS.pod && (o.address as string).length <= HEARTBEAT_LIMITS.address, 'heartbeat: pod name or address too long');
  check(optional(o.identity, isPodIdentityName), 'heartbeat: bad identity');
  check(o.state === 'serving' || o.state === 'draining' || o.state === 'stopped', 'heartbeat: bad state');
  check(isNat(o.inflight), 'heartbeat: bad inflight');
  check(Array.isArray(o.models), 'heartbeat: bad models');
  check((o.models as unknown[]).length <= HEARTBEAT_LIMITS.versions, `heartbeat: more than ${HEARTBEAT_LIMITS.versions} versions`);
  check((o.models as unknown[]).every((m: unknown) => {
    const pm = m as Partial<PodModel> | null;
    return pm !== null && typeof pm === 'object' && isStr(pm.name) && pm.name.length <= HEARTBEAT_LIMITS.model && isNat(pm.version) && isStr(pm.state)
      && optional(pm.provider, (p) => typeof p === 'string' && p.length <= HEARTBEAT_LIMITS.provider) && optional(pm.reason, (r) => typeof r === 'string')
      && optional(pm.memoryBytes, isNat) && optional(pm.requests, isNat) && optional(pm.idleMs, isNat) && optional(pm.inflight, isNat);
  }), 'heartbeat: bad models');
  check(optional(o.memory, (m) => isObject(m) && isNat(m.budgetBytes) && isNat(m.usedBytes) && optional(m.setAsideBytes, isNat) && isNat(m.rssBytes)), 'heartbeat: bad memory');
  const signed = [o.boot, o.seq, o.sig].filter((f) => f !== undefined).length;
  check(signed === 0 || (signed === 3 && typeof o.boot === 'string' && /^[A-Za-z0-9_-]{16,64}$/.test(o.boot) && isNat(o.seq)
    && typeof o.sig === 'string' && o.sig.length <= HEARTBEAT_LIMITS.signature && /^[A-Za-z0-9+/]+={0,2}$/.test(o.sig)), 'heartbeat: bad boot, seq or sig');
  for (const m of o.models as PodModel[]) {
    if (m.reason !== undefined) m.reason = cutReason(m.reason);
  }
  return o as unknown as Heartbeat;
}

/**
 * The event stream's duplicate window: a publish retried within it, with the same event id, is
 * stored once (two minutes, JetStream's default).
 */
export const EVENT_DUPLICATE_WINDOW_MS = 120_000;

/**
 * Creates the event stream when missing (idempotent): file-backed, every event kept, at most
 * `maxConsumers` consumers (INFERMESH_EVENT_STREAM_MAX_CONSUMERS: pods and routers may create
 * consumers on it, and this bounds what one of them can leave there). An identity that may not
 * create it (a pod's, a router's) waits until the registry has.
 */
export async function ensureEventStream(jsm: JetStreamManager, replicas: number, maxConsumers: number): Promise<void> {
  const config = {
    name: resources.eventStream,
    subjects: [subjects.eventsAll],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    num_replicas: replicas,
    max_consumers: maxConsumers,
    duplicate_window: EVENT_DUPLICATE_WINDOW_MS * 1_000_000, // ns
  };
  try {
    await jsm.streams.info(resources.eventStream);
  } catch {
    await jsm.streams.add(config).catch(async (err: unknown) => {
      // Another replica created it first.
      if (await jsm.streams.info(resources.eventStream).then(() => true, () => false)) return;
      // Pods and routers may not create streams (lib/nats-permissions.ts): the registry makes it;
      // wait for it rather than fail a start that came first.
      if (!/permissions violation/i.test(String(err))) throw err;
      for (;;) {
        await new Promise((r) => setTimeout(r, STREAM_WAIT_MS));
        if (await jsm.streams.info(resources.eventStream).then(() => true, () => false)) return;
      }
    });
  }
}

/** How often a service that may not create the event stream looks for it. */
const STREAM_WAIT_MS = 1_000;

/**
 * The consumer bound (max_consumers) the event stream has: the registry compares it with
 * INFERMESH_EVENT_STREAM_MAX_CONSUMERS. A stream made before the bound existed has none (-1), and
 * nats-server refuses to change max_consumers of an existing stream (the client's update type
 * leaves it out), so such a stream keeps it until it is recreated.
 */
export async function eventStreamConsumerBound(jsm: JetStreamManager): Promise<number> {
  return (await jsm.streams.info(resources.eventStream)).config.max_consumers;
}

/** Publishes an event to the stream and resolves once JetStream stored it; returns its sequence. `timeoutMs`: how long to wait for its answer (nats.js's default, 5 s). */
export async function publishEvent(js: JetStreamClient, event: MeshEvent, timeoutMs?: number): Promise<number> {
  const ack = await js.publish(subjects.event(event.model, event.type), encodeEvent(event), { msgID: event.id, ...(timeoutMs === undefined ? {} : { timeout: timeoutMs }) });
  return ack.seq;
}

/** A running event subscription. */
export interface EventFollower {
  /** Ends delivery; resolves once its consumer is deleted on the server (best effort). */
  stop(): Promise<void>;
  /**
   * Settles when delivery ends, its consumer deleted: resolves after stop(), rejects with what
   * `onEvent` threw.
   */
  readonly closed: Promise<void>;
}

/** The largest event a follower may be sent: NATS's 1 MiB max_payload and its headers. */
export const LARGEST_EVENT_BYTES = 1024 * 1024 + 64 * 1024;

/**
 * Bytes of events a follower has fetched ahead of what it has handled, at most (its pulls'
 * max_bytes), by default and at least: two of the largest events (followEvents says why two).
 * nats.js fetches 100 messages ahead by default, so a follower that is slow to hand events on (a
 * WatchEvents reader that stopped reading) held up to 100 MiB once a caller made its models'
 * events large (descriptions of 256 KiB each).
 */
export const DEFAULT_EVENT_FOLLOW_AHEAD_BYTES = 2 * LARGEST_EVENT_BYTES;

/** Options of followEvents(). */
export interface FollowOptions {
  /** Bytes fetched ahead at most (INFERMESH_EVENT_FOLLOW_AHEAD_BYTES); default DEFAULT_EVENT_FOLLOW_AHEAD_BYTES. */
  aheadBytes?: number;
  /** Replay the events stored after this stream sequence (0: all of them); default: only new events. */
  afterSeq?: number;
  /** Only this model's events; default every model's. */
  model?: string;
  /** Called with each malformed event, which is skipped; default: skipped silently. */
  onBadEvent?: (err: unknown, seq: number) => void;
}

/** nats-server's JSMaximumConsumersLimitErr: the stream holds its max_consumers already. */
const MAX_CONSUMERS_ERR_CODE = 10026;

/**
 * Creates a follower's ordered consumer. A full consumer table (the stream's max_consumers,
 * INFERMESH_EVENT_STREAM_MAX_CONSUMERS) is Overloaded (RESOURCE_EXHAUSTED), a condition the caller
 * can wait out, not an internal error.
 */
async function createFollowerConsumer(js: JetStreamClient, opts: FollowOptions): Promise<Consumer> {
  try {
    return await js.consumers.get(resources.eventStream, {
      // One filter subject: nats-server before 2.10 takes no more.
      filter_subjects: opts.model ? subjects.eventsOf(opts.model) : subjects.eventsAll,
      ...(opts.afterSeq !== undefined
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: opts.afterSeq + 1 }
        : { deliver_policy: DeliverPolicy.New }),
    });
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === MAX_CONSUMERS_ERR_CODE) {
      throw new MeshError(ErrorCode.Overloaded, `the event stream ${resources.eventStream} holds the most consumers it may (INFERMESH_EVENT_STREAM_MAX_CONSUMERS); try again later`, { cause: err });
    }
    throw err;
  }
}

/**
 * Delivers registry events in order to `onEvent`, starting after `afterSeq` (replaying what was
 * stored since) or, without it, with the events published from now on. The ordered consumer
 * recreates itself after a NATS outage. Malformed events are passed to `onBadEvent` and skipped.
 * `onEvent` is awaited before the next event is delivered, so a slow receiver holds back delivery
 * (a few events are fetched ahead) rather than letting events pile up in memory. When delivery ends
 * (stop(), or `onEvent` threw) the consumer is deleted on the server before `closed` settles. A
 * full consumer table is an Overloaded MeshError.
 */
export async function followEvents(
  js: JetStreamClient,
  onEvent: (event: MeshEvent, seq: number) => void | Promise<void>,
  opts: FollowOptions = {},
): Promise<EventFollower> {
  const consumer = await createFollowerConsumer(js, opts);
  let messages: Awaited<ReturnType<Consumer['consume']>>;
  try {
    // By bytes, not messages: events range from a hundred bytes to a megabyte. The server fills a
    // pull until the next event does not fit, then ends it (409); nats.js pulls again then only if
    // a pull of its own is already queued, else delivery stalls until it misses heartbeats (with
    // its own threshold, 3/4 of the bound: 9 of 40 events in 30 s at a bound of one event). So the
    // next pull is asked for while the pending ones have less room than the largest event left
    // (the threshold), and with room for one itself (a bound of at least two).
    const ahead = Math.max(opts.aheadBytes ?? DEFAULT_EVENT_FOLLOW_AHEAD_BYTES, DEFAULT_EVENT_FOLLOW_AHEAD_BYTES);
    messages = await consumer.consume({ max_bytes: ahead, threshold_bytes: ahead - LARGEST_EVENT_BYTES });
  } catch (err) {
    await deleteConsumer(consumer);
    throw err;
  }
  const done = (async () => {
    try {
      for await (const m of messages) {
        // nats-server starts a consumer asked for a sequence past the stream's end at the next one:
        // the events before the one asked for are not delivered.
        if (opts.afterSeq !== undefined && m.seq <= opts.afterSeq) continue;
        let event: MeshEvent;
        try {
          event = decodeEvent(m.data);
        } catch (err) {
          opts.onBadEvent?.(err, m.seq);
          continue;
        }
        await onEvent(event, m.seq);
      }
    } finally {
      await messages.close().catch(() => undefined);
      await deleteConsumer(consumer);
    }
  })();
  done.catch(() => undefined); // handled here; callers may still await `closed`
  return {
    closed: done,
    async stop() {
      await messages.close().catch(() => undefined);
      await done.catch(() => undefined);
    },
  };
}
