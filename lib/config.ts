// Configuration: environment variables with the INFERMESH_ prefix, read once at start-up into a
// frozen, typed object. A bad value stops the process at boot with the variable's name.
// Nothing below a service's main.ts reads process.env; everything gets its part of Config.
import os from 'node:os';
import { MeshError, ErrorCode } from './errors';
import { DEFAULT_H2_LIMITS as H2 } from './h2/limits';
import { DEFAULT_CLAIM_LIMITS as CLAIMS } from './pod-claims';
import { DEFAULT_TLS_MIN_VERSION, isPodIdentityName, TLS_MIN_VERSIONS } from './tls';
import { DEFAULT_MAX_ONNX_GRAPH_NODES } from './onnx';
import { DEFAULT_EVENT_FOLLOW_AHEAD_BYTES, EVENT_DUPLICATE_WINDOW_MS } from './events';
import { DEFAULT_MAX_ROUTER_REPORTS, DEFAULT_MAX_UNCOUNTED_WINDOWS } from './window-stats';
import { DEFAULT_RETRY, JETSTREAM_REQUEST_TIMEOUT_MS, retryWorstCaseMs } from './retry';
import type { LogLevel } from './log';

type Parser<T> = (raw: string, name: string) => T;

interface Setting<T> {
  env: string;
  parse: Parser<T>;
  default: T;
  doc: string;
}

function setting<T>(env: string, parse: Parser<T>, def: T, doc: string): Setting<T> {
  return { env, parse, default: def, doc };
}

function bad(name: string, raw: string, expected: string): never {
  throw new MeshError(ErrorCode.InvalidArgument, `${name}=${JSON.stringify(raw)} is invalid: expected ${expected}`);
}

/** The longest a registry retries a version's write: retry()'s defaults over nats.js's request timeout (36 s). */
const VERSION_WRITE_RETRY_MS = retryWorstCaseMs(JETSTREAM_REQUEST_TIMEOUT_MS);
/**
 * How far replicas' clocks may disagree where one judges the age of a time another stamped: a few
 * seconds (4 s), for nodes whose time sync has drifted, not a guess at an unsynchronised cluster.
 */
const REPLICA_CLOCK_MARGIN_MS = 4_000;

const str: Parser<string> = (raw) => raw;
const int = (min: number, max = Number.MAX_SAFE_INTEGER): Parser<number> => (raw, name) => {
  const n = Number(raw);
  if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    bad(name, raw, `an integer in [${min}, ${max}]`);
  }
  return n;
};
/**
 * The longest delay Node's timers take (2^31 - 1 ms, about 24.8 days): a longer one fires after 1 ms
 * with a TimeoutOverflowWarning, so a setting meant as "practically never" would act as "at once".
 */
export const MAX_TIMER_MS = 2_147_483_647;
/** A duration in milliseconds: an integer in [min, max], max at most MAX_TIMER_MS. */
const ms = (min: number, max = MAX_TIMER_MS): Parser<number> => int(min, Math.min(max, MAX_TIMER_MS));
const bool: Parser<boolean> = (raw, name) => {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  return bad(name, raw, 'true or false');
};
const oneOf = <T extends string>(...values: T[]): Parser<T> => (raw, name) =>
  (values as string[]).includes(raw) ? (raw as T) : bad(name, raw, `one of ${values.join(', ')}`);
const list = <T extends string>(...values: T[]): Parser<T[]> => (raw, name) => {
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) if (!(values as string[]).includes(item)) bad(name, raw, `a comma-separated list of ${values.join(', ')}`);
  if (items.length === 0) bad(name, raw, 'at least one item');
  return items as T[];
};

/** When onnxruntime's intra-op threads spin (INFERMESH_INTRA_OP_SPINNING); true and false are on and off. */
export type SpinningPolicy = 'on' | 'runs' | 'off';
/** Host names, comma-separated: letters, digits, '-' and '.' each, or `*` for any. */
const hostNames: Parser<string[]> = (raw, name) => {
  const items = raw.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const h of items) if (h !== '*' && !/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(h)) bad(name, raw, 'host names separated by commas, or *');
  return items;
};
const spinningPolicy: Parser<SpinningPolicy> = (raw, name) => {
  const policy = raw.toLowerCase();
  if (policy === 'on' || policy === 'runs' || policy === 'off') return policy;
  if (/^(1|true|yes)$/i.test(raw)) return 'on';
  if (/^(0|false|no)$/i.test(raw)) return 'off';
  return bad(name, raw, 'one of on, runs, off');
};

const podIdentityName: Parser<string> = (raw, name) => (isPodIdentityName(raw) ? raw : bad(name, raw, '1 to 253 letters, digits, ".", "-" or "_" (one SPIFFE path segment)'));

/** Execution providers the inference pods know, in onnxruntime's names. */
/** onnxruntime execution providers a pod may ask for: CUDA (needs the binaries onnxruntime-node downloads at install), WebGPU (bundled: Dawn on Vulkan, D3D12 or Metal), CPU. */
export type ExecutionProvider = 'cuda' | 'webgpu' | 'cpu';

const MiB = 1024 * 1024;

/** Every setting: its variable, parser, default and one line of documentation. */
export const settings = {
  // Shared by every service.
  natsUrl: setting('INFERMESH_NATS_URL', str, 'nats://127.0.0.1:4222', 'NATS server URL(s), comma-separated'),
  natsUser: setting('INFERMESH_NATS_USER', str, '', 'NATS user name (empty: none)'),
  natsPassword: setting('INFERMESH_NATS_PASSWORD', str, '', 'NATS password (empty: none)'),
  natsToken: setting('INFERMESH_NATS_TOKEN', str, '', 'NATS auth token (empty: none)'),
  natsNkeySeedFile: setting('INFERMESH_NATS_NKEY_SEED_FILE', str, '', 'file holding this service\'s NATS nkey seed (SU...), its identity on NATS; the nats-server config names its public key and permissions (lib/nats-permissions.ts). Empty: no nkey (the default; the local mesh sets it for each service)'),
  logLevel: setting('INFERMESH_LOG_LEVEL', oneOf<LogLevel>('debug', 'info', 'warn', 'error'), 'info', 'log level'),
  listenHost: setting('INFERMESH_LISTEN_HOST', str, '0.0.0.0', 'address the gRPC server binds'),
  maxMessageBytes: setting('INFERMESH_MAX_MESSAGE_BYTES', int(1024, 2 ** 31 - 1), 64 * MiB, 'largest gRPC message accepted or sent'),
  shutdownTimeoutMs: setting('INFERMESH_SHUTDOWN_TIMEOUT_MS', ms(0), 20_000, 'budget for a graceful shutdown before it is forced'),
  registryUrl: setting('INFERMESH_REGISTRY_URL', str, '127.0.0.1:8003', 'host:port of the registry (used by pods and the router)'),
  // Events carry each change at once (their reads are retried); the resync is the net under an
  // event missed or a read that failed for this long. 30 s: the period pods and routers always had.
  registryResyncIntervalMs: setting('INFERMESH_REGISTRY_RESYNC_INTERVAL_MS', ms(1_000, 86_400_000), 30_000, 'pods and routers: how often they read every model from the registry whatever events said; an event\'s read that fails is retried for at most this long'),

  // TLS (lib/tls.ts; what each defends: docs/security.md). The same PEM files serve every hop a
  // service has: its gRPC ports, its client connections and NATS. Reloaded when they change.
  tlsCertFile: setting('INFERMESH_TLS_CERT_FILE', str, '', 'PEM certificate chain of this service (server and client usage); with INFERMESH_TLS_KEY_FILE turns TLS on (empty: TLS off, plain h2c)'),
  tlsKeyFile: setting('INFERMESH_TLS_KEY_FILE', str, '', 'PEM private key of INFERMESH_TLS_CERT_FILE (never logged)'),
  tlsCaFile: setting('INFERMESH_TLS_CA_FILE', str, '', 'PEM bundle of the CA(s) that sign the mesh\'s certificates: servers are verified against it, and clients when client auth is on (required when TLS is on)'),
  tlsClientAuth: setting('INFERMESH_TLS_CLIENT_AUTH', bool, false, 'servers require a client certificate signed by INFERMESH_TLS_CA_FILE (mutual TLS between services); the router\'s public port follows INFERMESH_ROUTER_TLS_CLIENT_AUTH instead'),
  routerTlsClientAuth: setting('INFERMESH_ROUTER_TLS_CLIENT_AUTH', bool, false, 'the router\'s front door requires a client certificate signed by INFERMESH_TLS_CA_FILE (default: clients need none, tokens say who they are)'),
  // A heartbeat's claim is proven by a TLS handshake with the address it names (the identity
  // probe); any holder of the shared pod NATS identity can invent claims, so the probes a router or
  // registry makes are bounded (lib/pod-claims.ts, which holds the defaults).
  identityProbeConcurrency: setting('INFERMESH_IDENTITY_PROBE_CONCURRENCY', int(1, 1_000_000), CLAIMS.identityProbeConcurrency, 'routers and registry: identity probes (a TLS handshake with the address a heartbeat names) in flight at once, each a socket; the others wait (a handshake takes milliseconds: 64 prove thousands of pods a second)'),
  identityProbeQueue: setting('INFERMESH_IDENTITY_PROBE_QUEUE', int(0, 1_000_000), CLAIMS.identityProbeQueue, 'routers and registry: identity probes waiting for one in flight; beyond it a heartbeat of a pod not yet proven is ignored (tried again at its next heartbeat) and a warning logged (Envoy\'s circuit breaker max_pending_requests: 1024)'),
  identityProbeTimeoutMs: setting('INFERMESH_IDENTITY_PROBE_TIMEOUT_MS', ms(100, 3_600_000), CLAIMS.identityProbeTimeoutMs, 'routers and registry: an identity probe\'s TLS handshake must end within this, else the claim is not proven (Envoy\'s connect_timeout: 5 s)'),
  identityRetryMs: setting('INFERMESH_IDENTITY_RETRY_MS', ms(100, 3_600_000), CLAIMS.identityRetryMs, 'routers and registry, TLS on: an address that has not proven the identity a heartbeat claims (not listening yet, or the wrong certificate) is checked again this often, as is (routers) a claimed move of a proven pod (as INFERMESH_TLS_RELOAD_INTERVAL_MS: a certificate put right is seen within 5 s)'),
  refusedClaimLogIntervalMs: setting('INFERMESH_REFUSED_CLAIM_LOG_INTERVAL_MS', ms(0, 3_600_000), CLAIMS.refusedClaimLogIntervalMs, 'routers and registry: a warning about heartbeats whose claims are refused (an address that does not prove the identity, a full view, the probes all taken) is logged at most this often per kind, saying how many alike it stands for (Linux printk_ratelimit: 5 s; 0: every one)'),
  // With TLS on, a proven pod's heartbeat is a hint (lib/heartbeat-confirmation.ts): what it would
  // change of the pod's versions or serving state is asked of the pod itself, by routers and placement.
  heartbeatConfirmIntervalMs: setting('INFERMESH_HEARTBEAT_CONFIRM_INTERVAL_MS', ms(0, 3_600_000), CLAIMS.heartbeatConfirmIntervalMs, 'routers and registry (placement), TLS on: least time between two confirmations of one proven pod\'s heartbeat claims (a call to the pod: RepositoryIndex, or a health check for a goodbye); heartbeats in between wait (the latest goodbye and the latest change of versions), so a flood costs each pod at most one health check and one RepositoryIndex per interval per router and registry (250 ms: four a second, and a real change, an unloading version, still leaves routing well within INFERMESH_UNLOAD_GRACE_MS\' 2 s; 0: no wait but one call at a time)'),
  heartbeatConfirmTimeoutMs: setting('INFERMESH_HEARTBEAT_CONFIRM_TIMEOUT_MS', ms(100, 60_000), CLAIMS.heartbeatConfirmTimeoutMs, 'routers and registry (placement), TLS on: deadline of a confirmation call to a proven pod; a goodbye whose health check misses it is asked once more, and honoured (the pod stopped) when that misses it too, as the router\'s health checks need two failures; a version change keeps what was known (Kubernetes\' probe timeoutSeconds: 1 s, the router\'s health checks\' deadline)'),
  heartbeatConfirmBackoffMs: setting('INFERMESH_HEARTBEAT_CONFIRM_BACKOFF_MS', ms(0, 3_600_000), CLAIMS.heartbeatConfirmBackoffMs, 'routers and registry (placement), TLS on: most time between two RepositoryIndex calls to a proven pod whose answers keep contradicting the heartbeats in its name; the wait doubles from INFERMESH_HEARTBEAT_CONFIRM_INTERVAL_MS with each such answer, up to this, and an answer that agrees ends it (1 s: a version a rollout retires still leaves routing within INFERMESH_UNLOAD_GRACE_MS\' 2 s under such a flood, and a pod that answers thousands of versions costs a quarter of what it would every interval; below the interval: no backoff)'),
  heartbeatVerifiesPerSecond: setting('INFERMESH_HEARTBEAT_VERIFIES_PER_SECOND', int(1, 1_000_000), CLAIMS.heartbeatVerifiesPerSecond, 'routers and registry (placement), TLS on: signature checks of heartbeats in one proven pod\'s name per second, for those going on from the pod process already known and as many for those naming another (a restart); heartbeats beyond are not taken, unchecked (20: a pod signs about one a second, more while versions load; a forger\'s flood costs a view at most 40 checks a second per pod, about 1% of a core)'),
  tlsMinVersion: setting('INFERMESH_TLS_MIN_VERSION', oneOf(...TLS_MIN_VERSIONS), DEFAULT_TLS_MIN_VERSION, 'lowest TLS version every port of the service speaks, and its lib/h2 and NATS connections (not its grpc-js clients, which grpc-js gives Node\'s default; they reach only the mesh\'s own ports): TLSv1.2 or TLSv1.3, nothing older (nginx\'s ssl_protocols and Envoy\'s tls_minimum_protocol_version for servers: TLSv1.2); set in the service, whatever Node\'s own default (--tls-min-v1.0 lowers it)'),
  tlsReloadIntervalMs: setting('INFERMESH_TLS_RELOAD_INTERVAL_MS', ms(100), 5_000, 'how often the TLS files are read for a change; a changed set that is valid serves new connections, a bad one is logged and the old kept'),

  // Registry.
  registryPort: setting('INFERMESH_REGISTRY_PORT', int(0, 65535), 8003, 'registry gRPC port'),
  maxArtifactBytes: setting('INFERMESH_MAX_ARTIFACT_BYTES', int(1), 2048 * MiB, 'largest model artifact the registry accepts'),
  // A push stages its bytes on the registry's disk until they are stored: these bound how many do
  // at once, so one key cannot hold N × INFERMESH_MAX_ARTIFACT_BYTES of it, and how long one may idle.
  registryUploadDir: setting('INFERMESH_REGISTRY_UPLOAD_DIR', str, '', 'registry: folder pushes are staged in (one infermesh-upload-* folder each) until they are stored (empty: the OS temp folder, TMPDIR)'),
  registryMaxUploadsPerCaller: setting('INFERMESH_REGISTRY_MAX_UPLOADS_PER_CALLER', int(1, 1_000_000), 5, 'registry: pushes one caller (key, JWT subject or service certificate; one client address when authentication is off) may have in progress at once on a replica; beyond it RESOURCE_EXHAUSTED (5: dockerd\'s max-concurrent-uploads, the most layers one docker push sends at once)'),
  registryMaxUploads: setting('INFERMESH_REGISTRY_MAX_UPLOADS', int(1, 1_000_000), 16, 'registry: pushes a replica takes at once, every caller\'s together; beyond it RESOURCE_EXHAUSTED. No peer bounds this (the Docker distribution registry takes any number): 16 keeps the staged bytes under 16 × INFERMESH_MAX_ARTIFACT_BYTES; size it, or that, to INFERMESH_REGISTRY_UPLOAD_DIR\'s disk'),
  registryUploadIdleTimeoutMs: setting('INFERMESH_REGISTRY_UPLOAD_IDLE_TIMEOUT_MS', ms(0), 60_000, 'registry: a push that sends nothing (header or chunk) for this long is ended with DEADLINE_EXCEEDED and its staged bytes removed (nginx client_body_timeout: 60 s between two reads of a body; 0: never)'),
  registryUploadSweepMinAgeMs: setting('INFERMESH_REGISTRY_UPLOAD_SWEEP_MIN_AGE_MS', ms(30_000), 300_000, 'registry: an upload folder in INFERMESH_REGISTRY_UPLOAD_DIR untouched for this long was left by a registry that stopped mid-push, and is removed; the folder is looked over at start-up and then this often (a push in progress touches its folder every 10 s, whichever replica has it)'),
  // Triton has no such limit (its model_warmup reads files beside the model); ours is stored in the
  // model's KV record and its model.config.changed event, both NATS messages (max_payload 1 MiB by default).
  maxModelMetadataBytes: setting('INFERMESH_MAX_MODEL_METADATA_BYTES', int(1, 512 * 1024), 256 * 1024, 'registry: most a model\'s description and labels may take together, as UTF-8 (Kubernetes\' limit on an object\'s annotations: 256 KiB); a model\'s record, with its rollout history, and its events must fit NATS\'s 1 MiB max_payload'),
  maxWarmupConfigBytes: setting('INFERMESH_MAX_WARMUP_CONFIG_BYTES', int(0, 64 * MiB), 256 * 1024, 'registry: most a model\'s warm-up samples (ServingConfig.warmup) may take as stored, raw data in base64 included'),
  // Triton bounds neither (model_warmup's count and inputs are whatever the model's config says).
  maxWarmupRuns: setting('INFERMESH_MAX_WARMUP_RUNS', int(1), 100, 'registry: most runs a model\'s warm-up may ask for, every sample\'s count (at least 1) added'),
  maxWarmupElements: setting('INFERMESH_MAX_WARMUP_ELEMENTS', int(1), 64 * MiB, 'registry: most elements a model\'s warm-up samples may hold, every input of every sample added (the default INFERMESH_MAX_TENSOR_ELEMENTS: one largest tensor)'),
  // No well-known server bounds it (onnx's checker does not); the reader refuses a model past it at
  // push and again before a pod loads one (lib/onnx DEFAULT_MAX_ONNX_GRAPH_NODES says why 100 000).
  maxGraphNodes: setting('INFERMESH_MAX_GRAPH_NODES', int(1, 100_000_000), DEFAULT_MAX_ONNX_GRAPH_NODES, 'registry and pods: most nodes a model may have, its graph\'s, its subgraphs\' and its local functions\' together; a larger one is refused at push (INVALID_ARGUMENT) and not loaded by a pod (UNAVAILABLE, with why). onnxruntime\'s session creation grows faster than the node count (64 000 nodes: over a minute); exported models have a few hundred, the largest tens of thousands'),
  jetstreamReplicas: setting('INFERMESH_JETSTREAM_REPLICAS', int(1, 5), 1, 'replicas of the KV bucket, object store and event stream'),
  // Pods and routers may create consumers on the event stream (their followers are ordered
  // consumers, lib/events.ts followEvents); this bounds how many a compromised one can leave there.
  eventStreamMaxConsumers: setting('INFERMESH_EVENT_STREAM_MAX_CONSUMERS', int(16, 1_000_000), 1024, 'most consumers the event stream holds (its max_consumers, set when the registry creates it): one per registry replica, router and pod follower, each reset\'s old one kept up to 5 minutes (the client\'s inactive threshold)'),
  // Each open WatchEvents holds a consumer on that stream (deleted when it ends). One caller gets
  // what the console gives one caller's live pages (INFERMESH_CONSOLE_MAX_STREAMS_PER_CALLER, 16:
  // Envoy's and nginx's per-client limits), and all of them together no more than half the
  // stream's bound, so routers and pods still get theirs.
  registryMaxWatchesPerCaller: setting('INFERMESH_REGISTRY_MAX_WATCHES_PER_CALLER', int(1, 1_000_000), 16, 'registry: WatchEvents streams one caller (one key, JWT subject or service certificate; one client address when authentication is off) may hold open at once on a replica; beyond it RESOURCE_EXHAUSTED'),
  registryMaxWatches: setting('INFERMESH_REGISTRY_MAX_WATCHES', int(0, 1_000_000), 0, 'registry: WatchEvents streams a replica holds open at once, every caller\'s together (each a consumer on the event stream); beyond it RESOURCE_EXHAUSTED. 0 (the default): half of INFERMESH_EVENT_STREAM_MAX_CONSUMERS; it must stay below that bound, which every replica, router and pod share'),
  eventFollowAheadBytes: setting('INFERMESH_EVENT_FOLLOW_AHEAD_BYTES', int(DEFAULT_EVENT_FOLLOW_AHEAD_BYTES, 1024 * MiB), DEFAULT_EVENT_FOLLOW_AHEAD_BYTES, 'bytes of events each event follower (a WatchEvents stream, a console page, a router\'s or pod\'s follower) fetches ahead of what it has handled (nats.js fetches 100 messages ahead, up to 100 MiB of events of 1 MiB); at least two of the largest events (NATS\'s 1 MiB max_payload and its headers; 2 MiB + 128 KiB, the default), so that a pull with room for the next event is always asked for before the last one runs out'),

  // PullArtifact and WatchEvents stream for as long as their clients read. What one has waiting
  // for its client is bounded (the stream waits, holding back the object store or the event
  // consumer), and a client that takes none of it for the send timeout loses the stream, with the
  // consumer, reader and slot it held.
  registrySendTimeoutMs: setting('INFERMESH_REGISTRY_SEND_TIMEOUT_MS', ms(0, 86_400_000), 60_000, 'registry: a PullArtifact or WatchEvents stream with messages waiting whose client takes none of them for this long is reset (RST_STREAM CANCEL: the client sees CANCELLED) and gives back what it held (nginx send_timeout: 60 s between two writes the client takes; progress is counted a message at a time, an artifact chunk of 128 KiB or one event; 0: never)'),
  registryMaxStreamBufferBytes: setting('INFERMESH_REGISTRY_MAX_STREAM_BUFFER_BYTES', int(4096, 256 * MiB), MiB, 'registry: bytes a PullArtifact or WatchEvents stream may have written and not yet taken by HTTP/2 (its client\'s flow-control window); beyond it the stream reads no more from the object store or the event stream until its client reads (one message of any size is written when nothing waits; INFERMESH_CONSOLE_MAX_STREAM_BUFFER_BYTES\'s default, 1 MiB)'),

  // The pods the registry shows (ListPods, the console), from their heartbeats.
  registryMaxPods: setting('INFERMESH_REGISTRY_MAX_PODS', int(1, 1_000_000), 10_000, 'registry: pods it keeps in view (ListPods, the console); heartbeats of further pods are ignored until one goes (a bound on memory, whatever arrives)'),
  registryMaxPodBytes: setting('INFERMESH_REGISTRY_MAX_POD_BYTES', int(1024 * 1024), 64 * MiB, 'registry: heartbeat bytes it keeps in view, every pod\'s latest together (each up to NATS\'s max_payload, 1 MiB); a heartbeat that does not fit is ignored until others shrink or go'),
  // Routers refuse a revoked key within 2 s (the keys bucket's watch); a watch open before must not outlive it by more.
  watchRecheckMs: setting('INFERMESH_WATCH_RECHECK_MS', ms(100, 3_600_000), 2_000, 'registry: how often the token of an open event watch (WatchEvents, a console page\'s live stream) is checked again; a revoked key or an expired JWT ends it'),

  // The web console (services/registry/console/, docs/console.md): served by the registry over HTTP,
  // or HTTPS with the registry's TLS files. Its connections follow the INFERMESH_HTTP_* limits of the REST door.
  consoleEnabled: setting('INFERMESH_CONSOLE', bool, true, 'registry: serve the web console and its JSON API on INFERMESH_CONSOLE_PORT'),
  consolePort: setting('INFERMESH_CONSOLE_PORT', int(0, 65535), 8004, 'registry: the web console\'s HTTP port'),
  // nginx's client_max_body_size: 1 MiB.
  consoleMaxBodyBytes: setting('INFERMESH_CONSOLE_MAX_BODY_BYTES', int(256, 64 * MiB), MiB, 'registry: largest body of a console action (JSON); beyond it 413 (nginx client_max_body_size: 1 MiB)'),
  // Each live stream holds a follower of the event stream's messages in memory and a socket.
  consoleMaxStreams: setting('INFERMESH_CONSOLE_MAX_STREAMS', int(1, 1_000_000), 256, 'registry: live streams (pages open) the console serves at once; beyond it 503'),
  // Envoy's per-client connection limits (and nginx's limit_conn) keep one client from taking them all.
  consoleMaxStreamsPerCaller: setting('INFERMESH_CONSOLE_MAX_STREAMS_PER_CALLER', int(1, 1_000_000), 16, 'registry: live streams one caller (one key, one JWT subject, anonymous when authentication is off) may hold at once; beyond it 429'),
  consolePodsIntervalMs: setting('INFERMESH_CONSOLE_PODS_INTERVAL_MS', ms(100, 3_600_000), 1_000, 'registry: a live page is told of the pods at most this often'),
  // DNS rebinding: a page of another site whose name comes to resolve to this address would
  // otherwise reach a console without authentication from a browser inside.
  consoleAllowedHosts: setting('INFERMESH_CONSOLE_ALLOWED_HOSTS', hostNames, [] as string[], 'registry: with authentication off, the console answers only requests addressed (Host) to an IP address, localhost, or one of these names (* for any)'),
  // nginx's proxy_buffers hold 8 × 4 KiB per connection before they stop reading the upstream; a
  // live page is told everything, so it gets more, and one that does not read is dropped, not queued for.
  consoleMaxStreamBufferBytes: setting('INFERMESH_CONSOLE_MAX_STREAM_BUFFER_BYTES', int(4096, 256 * MiB), MiB, 'registry: bytes a live stream may have waiting for its page to read them; beyond it the stream is closed (the page reconnects and reloads)'),
  consoleEventsKept: setting('INFERMESH_CONSOLE_EVENTS_KEPT', int(1, 1_000_000), 500, 'registry: the newest events the console keeps for pages that open (read back from the event stream at start)'),
  consoleEventsKeptBytes: setting('INFERMESH_CONSOLE_EVENTS_KEPT_BYTES', int(64 * 1024), 8 * MiB, 'registry: bytes of the events the console keeps, as JSON (an event may be up to a NATS message, 1 MiB); the oldest go first'),
  consoleWindowsKept: setting('INFERMESH_CONSOLE_WINDOWS_KEPT', int(1, 100_000), 90, 'registry: closed analysis windows kept per model for the console\'s charts (90 of 10 s: 15 minutes)'),

  // Placement (services/registry/placement/, docs/placement.md): which pods hold which versions,
  // decided by one registry replica at a time, ModelMesh's model of many models on few pods.
  placement: setting('INFERMESH_PLACEMENT', bool, true, 'registry: place versions: pods load the versions the placement controller puts on them (within their memory budget), and a router asks for a version no pod holds and waits for it; off: every pod loads every served version. Pods and routers follow what the registry says (a model\'s `placed`); set it alike on every registry replica'),
  placementMinCopies: setting('INFERMESH_PLACEMENT_MIN_COPIES', int(0, 1_000_000), 2, 'registry: copies (pods) every served version keeps loaded at least, fewer when there are fewer pods (0: a version is loaded on its first request; ModelMesh keeps none loaded until asked, KServe\'s InferenceService one per replica)'),
  placementRequestsPerCopy: setting('INFERMESH_PLACEMENT_REQUESTS_PER_COPY', int(1), 1_000, 'registry: requests per second one copy of a version is sized for; a version receiving more gets more copies, up to one per pod, and loses them as it cools'),
  placementMinResidencyMs: setting('INFERMESH_PLACEMENT_MIN_RESIDENCY_MS', ms(0), 30_000, 'registry: a copy placed less than this long ago is neither evicted nor removed as its version cools (hysteresis: two models never evict each other in a loop)'),
  placementEvictIdleMs: setting('INFERMESH_PLACEMENT_EVICT_IDLE_MS', ms(0), 10_000, 'registry: a copy that served a request less than this long ago is never evicted for another version (least recently used first among the idle)'),
  placementLeaseMs: setting('INFERMESH_PLACEMENT_LEASE_MS', ms(1_000, 3_600_000), 10_000, 'registry: how long the placement controller\'s leadership (a JetStream KV lease) lasts without renewal; renewed every third of it, taken over by another replica once it lapses'),
  placementIntervalMs: setting('INFERMESH_PLACEMENT_INTERVAL_MS', ms(100, 3_600_000), 2_000, 'registry: how often the leader plans again without a change (rates, idleness and residency move with time); a change (a pod, a split, a demand) plans at once'),
  placementVersionOverheadMb: setting('INFERMESH_PLACEMENT_VERSION_OVERHEAD_MB', int(0, 1_000_000), 16, 'registry: memory a version not yet measured on any pod is assumed to take beyond its artifact\'s size, in MiB, until pods have measured three others (then the 90th percentile of their overheads)'),
  placementMemoryReservePercent: setting('INFERMESH_PLACEMENT_MEMORY_RESERVE_PERCENT', int(0, 90), 5, 'registry: share of each pod\'s model budget placement leaves free: a version\'s cost is measured on a pod that serves meanwhile, and a new copy may cost a few percent more than the estimate it was placed by'),
  routerMaxColdWaiting: setting('INFERMESH_ROUTER_MAX_COLD_WAITING', int(0, 1_000_000), 1_024, 'router: requests it holds while the version they need is loaded on a pod (lazy loading); beyond it RESOURCE_EXHAUSTED (0: none wait, UNAVAILABLE)'),
  routerMaxColdWaitingPerVersion: setting('INFERMESH_ROUTER_MAX_COLD_WAITING_PER_VERSION', int(1, 1_000_000), 256, 'router: of those, requests waiting for one version (a caller asking for a version that cannot load holds no more than this); beyond it RESOURCE_EXHAUSTED'),
  routerColdWaitMs: setting('INFERMESH_ROUTER_COLD_WAIT_MS', ms(100, 3_600_000), 60_000, 'router: longest a request waits for its version to load, when its deadline is later or it has none (Triton\'s and KServe\'s load timeouts are minutes; the client\'s deadline ends it first)'),

  analysisWindowMs: setting('INFERMESH_ANALYSIS_WINDOW_MS', ms(100), 10_000, 'length of the windows in which routers count each version\'s outcomes for rollout analysis; the same on routers and the registry, which drops reports of windows of another length'),
  rolloutMaxRouterReports: setting('INFERMESH_ROLLOUT_MAX_ROUTER_REPORTS', int(1, 1_000_000), DEFAULT_MAX_ROUTER_REPORTS, 'registry: router reports merged into one analysis window of one model (a router reports once a window: 256 routers, far beyond a fleet\'s, with no peer that bounds it); reports of further routers are left out and the window is not counted, so a flood of made-up routers holds the rollout, and pauses it after INFERMESH_ROLLOUT_MAX_UNCOUNTED_WINDOWS, but never passes it on part of the data. A second report of one router for one window is dropped, reports for models the registry does not hold, for windows off the INFERMESH_ANALYSIS_WINDOW_MS grid or already judged too'),
  rolloutMaxUncountedWindows: setting('INFERMESH_ROLLOUT_MAX_UNCOUNTED_WINDOWS', int(1, 1_000_000), DEFAULT_MAX_UNCOUNTED_WINDOWS, 'registry: windows in a row a rollout\'s analysis leaves uncounted (a router routed by another split than the step\'s, or reports past INFERMESH_ROLLOUT_MAX_ROUTER_REPORTS or past a window\'s versions were left out) before the rollout is paused, saying why (naming those routers), until an operator resumes it (10 windows of 10 s: three times a router\'s 30 s resync)'),

  // The front doors of the router and the pods (lib/h2): a hardened HTTP/2 peer's limits, each
  // with the nginx, Envoy, nghttp2 or grpc-go default it follows (lib/h2/limits.ts; what each stops:
  // docs/security.md).
  h2MaxConcurrentStreams: setting('INFERMESH_H2_MAX_CONCURRENT_STREAMS', int(1, 2 ** 31 - 1), H2.maxConcurrentStreams, 'streams a client may have open on one connection (nginx http2_max_concurrent_streams: 128; Envoy edge: 100)'),
  h2StreamWindowBytes: setting('INFERMESH_H2_STREAM_WINDOW_BYTES', int(0, 2 ** 31 - 1), H2.streamWindowBytes, 'flow-control window of each client stream (node:http2 and grpc-go start at 64 KiB; 1 MiB keeps a large upload at speed)'),
  h2ConnectionWindowBytes: setting('INFERMESH_H2_CONNECTION_WINDOW_BYTES', int(65_535, 2 ** 31 - 1), H2.connectionWindowBytes, 'flow-control window of each client connection (Envoy edge: 1 MiB)'),
  h2MaxHeaderListBytes: setting('INFERMESH_H2_MAX_HEADER_LIST_BYTES', int(1024, 2 ** 24), H2.maxHeaderListBytes, 'largest decoded header list of a request, 32 octets per field counted (gRPC C-core: 16 KiB; Envoy: 60 KiB); larger ones are refused with RST_STREAM ENHANCE_YOUR_CALM'),
  h2MaxHeaderBlockBytes: setting('INFERMESH_H2_MAX_HEADER_BLOCK_BYTES', int(1024, 2 ** 24), H2.maxHeaderBlockBytes, 'largest field block as sent, every HEADERS and CONTINUATION octet (padding included) counted; beyond it GOAWAY ENHANCE_YOUR_CALM'),
  h2MaxContinuationFrames: setting('INFERMESH_H2_MAX_CONTINUATION_FRAMES', int(0, 1_000_000), H2.maxContinuationFrames, 'CONTINUATION frames one field block may take (nghttp2 1.61 max_continuations: 8, against CVE-2024-27316)'),
  h2MaxSettingsEntries: setting('INFERMESH_H2_MAX_SETTINGS_ENTRIES', int(7, 2730), H2.maxSettingsEntries, 'entries one SETTINGS frame may carry (nghttp2 max_settings, node:http2 maxSettings: 32)'),
  h2SettingsPerSecond: setting('INFERMESH_H2_MAX_SETTINGS_PER_SECOND', int(1), H2.settingsPerSecond, 'SETTINGS frames a client may send a second beyond INFERMESH_H2_SETTINGS_BURST; more is GOAWAY ENHANCE_YOUR_CALM'),
  h2SettingsBurst: setting('INFERMESH_H2_SETTINGS_BURST', int(1), H2.settingsBurst, 'SETTINGS frames a client may send at once'),
  h2ResetsPerSecond: setting('INFERMESH_H2_MAX_RESETS_PER_SECOND', int(1), H2.resetsPerSecond, 'RST_STREAM frames a client may send a second beyond INFERMESH_H2_RESET_BURST (nghttp2 1.57 against Rapid Reset, CVE-2023-44487: 33); more is GOAWAY ENHANCE_YOUR_CALM'),
  h2ResetBurst: setting('INFERMESH_H2_RESET_BURST', int(1), H2.resetBurst, 'RST_STREAM frames a client may send at once (nghttp2 1.57: 1,000)'),
  h2MaxConsecutiveEmptyFrames: setting('INFERMESH_H2_MAX_CONSECUTIVE_EMPTY_FRAMES', int(0, 1_000_000), H2.maxConsecutiveEmptyFrames, 'DATA, HEADERS or CONTINUATION frames in a row with nothing in them and no end flag (Envoy max_consecutive_inbound_frames_with_empty_payload: 1); more is GOAWAY ENHANCE_YOUR_CALM'),
  h2MaxOutputBytes: setting('INFERMESH_H2_MAX_OUTPUT_BYTES', int(16 * 1024), H2.maxOutputBytes, 'output queued for a client that is not reading, past which the door stops reading from it and sending it data (Envoy per_connection_buffer_limit_bytes: 1 MiB)'),
  h2MaxRequestBytesPerConnection: setting('INFERMESH_H2_MAX_REQUEST_BYTES_PER_CONNECTION', int(0), H2.maxRequestBytesPerConnection, 'request bytes one client connection may hold in the door (messages read whole and data not yet passed on); a message that does not fit is refused RESOURCE_EXHAUSTED before it is read, other data waits for its window; at least INFERMESH_MAX_MESSAGE_BYTES, else the service does not start'),
  h2MaxRequestBytes: setting('INFERMESH_H2_MAX_REQUEST_BYTES', int(0), H2.maxRequestBytes, 'request bytes the whole door may hold (every connection together); at least INFERMESH_MAX_MESSAGE_BYTES, else the service does not start'),
  h2MaxResponseBytesPerConnection: setting('INFERMESH_H2_MAX_RESPONSE_BYTES_PER_CONNECTION', int(0), H2.maxResponseBytesPerConnection, 'answer bytes waiting for one client connection to read them; beyond it further answers are refused RESOURCE_EXHAUSTED (one answer of any size is taken by a connection that holds none)'),
  h2MaxResponseBytes: setting('INFERMESH_H2_MAX_RESPONSE_BYTES', int(0), H2.maxResponseBytes, 'answer bytes waiting for clients in the whole door'),
  h2PrefaceTimeoutMs: setting('INFERMESH_H2_PREFACE_TIMEOUT_MS', ms(1), H2.prefaceTimeoutMs, 'a client\'s preface and first SETTINGS must arrive within this (Go x/net/http2: 10 s)'),
  h2SettingsAckTimeoutMs: setting('INFERMESH_H2_SETTINGS_ACK_TIMEOUT_MS', ms(1), H2.settingsAckTimeoutMs, 'a client must acknowledge the door\'s SETTINGS within this, else GOAWAY SETTINGS_TIMEOUT (RFC 9113 §6.5.3)'),
  h2HeadersTimeoutMs: setting('INFERMESH_H2_HEADERS_TIMEOUT_MS', ms(1), H2.headersTimeoutMs, 'a field block, once begun, must be complete within this (slowloris)'),
  h2IdleTimeoutMs: setting('INFERMESH_H2_IDLE_TIMEOUT_MS', ms(0), H2.idleTimeoutMs, 'a client connection without a stream for this long is closed, PINGs or not (nginx keepalive_timeout: 75 s; 0: never)'),
  h2StreamIdleTimeoutMs: setting('INFERMESH_H2_STREAM_IDLE_TIMEOUT_MS', ms(0), H2.streamIdleTimeoutMs, 'a stream with no frame either way for this long is reset (Envoy stream_idle_timeout: 5 min; 0: never)'),
  h2GoawayNoticeTimeoutMs: setting('INFERMESH_H2_GOAWAY_NOTICE_TIMEOUT_MS', ms(0), H2.goawayNoticeTimeoutMs, 'a graceful close (idle, connection age, drain) first sends GOAWAY with the highest stream id and a PING, serving the requests that crossed it, and names the last stream once the PING is answered or after this long (a drain: half its budget at most) (RFC 9113 §6.8; grpc-go: 1 min; 0: at once, refusing them)'),
  h2KeepaliveMinIntervalMs: setting('INFERMESH_H2_KEEPALIVE_MIN_INTERVAL_MS', ms(0), H2.keepaliveMinIntervalMs, 'client PINGs closer together than this are strikes unless the door sent data in between (grpc-go keepalive.EnforcementPolicy.MinTime: 5 min)'),
  h2KeepalivePermitWithoutStream: setting('INFERMESH_H2_KEEPALIVE_PERMIT_WITHOUT_STREAM', bool, H2.keepalivePermitWithoutStream, 'whether a client may ping at that interval with no stream open (grpc-go PermitWithoutStream: false)'),
  h2MaxPingStrikes: setting('INFERMESH_H2_MAX_PING_STRIKES', int(0, 1_000_000), H2.maxPingStrikes, 'PING strikes allowed; one more is GOAWAY ENHANCE_YOUR_CALM "too_many_pings" (grpc-go: 2)'),
  streamMaxInFlight: setting('INFERMESH_STREAM_MAX_IN_FLIGHT', int(1, 1_000_000), 100, 'ModelStreamInfer (router and pods): requests of one stream in flight; past it, or past the door\'s request budget of a connection (INFERMESH_H2_MAX_REQUEST_BYTES_PER_CONNECTION at the router; at a pod, whose connections are held to its door-wide budgets, INFERMESH_H2_MAX_REQUEST_BYTES) or the door\'s total, shared with its unary calls, the stream\'s next requests wait in HTTP/2\'s flow control, and its unread answers stay within the answer budgets the same way (grpc-go\'s default of 100 concurrent streams on a connection)'),

  // Router.
  routerPort: setting('INFERMESH_ROUTER_PORT', int(0, 65535), 8001, 'router gRPC port (the front door)'),
  routerPolicy: setting('INFERMESH_ROUTER_POLICY', oneOf('p2c', 'round-robin'), 'p2c', 'load-balancing policy: p2c (least loaded of two random pods) or round-robin'),
  routerMaxOutstanding: setting('INFERMESH_ROUTER_MAX_OUTSTANDING', int(1), 4096, 'requests in flight through one router; beyond it RESOURCE_EXHAUSTED'),
  routerMaxPods: setting('INFERMESH_ROUTER_MAX_PODS', int(1, 1_000_000), 10_000, 'router: pods it keeps (proven or not), as INFERMESH_REGISTRY_MAX_PODS; heartbeats of further pods are ignored, with a warning, until one goes (a bound on memory and probes, whatever arrives)'),
  routerMaxOutstandingPerPod: setting('INFERMESH_ROUTER_MAX_OUTSTANDING_PER_POD', int(1), 512, 'requests in flight from one router to one pod'),
  // A write's events wait in its record's outbox only when their publish failed (a registry killed
  // between the two, NATS timing out); 10 s: well within the event stream's two-minute duplicate
  // window and below the 30 s resync pods and routers fall back on.
  registryOutboxIntervalMs: setting('INFERMESH_REGISTRY_OUTBOX_INTERVAL_MS', ms(100, 3_600_000), 10_000, 'registry: how often it publishes the events a write left in its record\'s outbox unpublished (a model\'s, or an API key\'s); at start-up it reads every model and key record to find them, then only those the outbox index (KV key outboxes.pending) names; a version\'s write whose event is older than INFERMESH_REGISTRY_OUTBOX_VERSION_WRITE_GRACE_MS and still not made is given up (its record fenced)'),
  // 5 s: nats.js's JetStream request timeout, one publish attempt's wait. At most half the event
  // stream's duplicate window (EVENT_DUPLICATE_WINDOW_MS, 2 min), as the flush budget below.
  registryOutboxCallWaitMs: setting('INFERMESH_REGISTRY_OUTBOX_CALL_WAIT_MS', ms(100, EVENT_DUPLICATE_WINDOW_MS / 2), 5_000, 'registry: how long a write\'s call waits for its events to be published (one attempt each, no retry) before it answers; the write is made either way, and what is not published by then is the periodic flush\'s'),
  // 60 s: half the event stream's duplicate window, so a copy a flush sends late is still dropped as
  // a duplicate of one another flush sent meanwhile: more would let a late copy be stored twice.
  registryOutboxFlushBudgetMs: setting('INFERMESH_REGISTRY_OUTBOX_FLUSH_BUDGET_MS', ms(1_000, EVENT_DUPLICATE_WINDOW_MS / 2), EVENT_DUPLICATE_WINDOW_MS / 2, 'registry: the most one periodic flush spends publishing one record\'s pending events, retries included (INFERMESH_REGISTRY_OUTBOX_PUBLISH_ATTEMPTS of up to INFERMESH_REGISTRY_OUTBOX_PUBLISH_TIMEOUT_MS each); what is left is the next flush\'s'),
  // 5 s: nats.js's JetStream request timeout, which a publish with no wait of its own would wait.
  registryOutboxPublishTimeoutMs: setting('INFERMESH_REGISTRY_OUTBOX_PUBLISH_TIMEOUT_MS', ms(100, EVENT_DUPLICATE_WINDOW_MS / 2), JETSTREAM_REQUEST_TIMEOUT_MS, 'registry: how long one attempt to publish an outbox\'s event waits for JetStream\'s answer (a write\'s call and a periodic flush alike, each within its own wait or budget); a publish not answered by then counts as failed'),
  // 6: lib/retry.ts's, as the registry's other JetStream requests are retried.
  registryOutboxPublishAttempts: setting('INFERMESH_REGISTRY_OUTBOX_PUBLISH_ATTEMPTS', int(1, 100), DEFAULT_RETRY.attempts, 'registry: attempts a periodic flush makes to publish one event (waiting 200 ms, doubling to 3 s, between them) before it leaves the rest to the next flush; INFERMESH_REGISTRY_OUTBOX_FLUSH_BUDGET_MS ends them sooner once spent (a write\'s call makes one)'),
  // Derived from no setting: it must outlast the retries of the write it waits for, which are
  // lib/retry.ts's defaults over nats.js's request timeout, plus REPLICA_CLOCK_MARGIN_MS for
  // replicas' clocks that disagree (the event's time is its writer's); loadConfig refuses less.
  registryOutboxVersionWriteGraceMs: setting('INFERMESH_REGISTRY_OUTBOX_VERSION_WRITE_GRACE_MS', ms(1_000, 3_600_000), VERSION_WRITE_RETRY_MS + REPLICA_CLOCK_MARGIN_MS, 'registry: how old the event of a version\'s write (push, archive, delete; stored in its model\'s outbox ahead of the write) must be before a flush that does not find the write made gives it up (fences the version\'s record, so the write can no longer be made, and drops the event); younger, the model\'s later events wait behind it. At least the 36 s a registry retries such a write (6 attempts of up to 5 s and the waits between) plus 4 s for clocks that disagree: the start-up refuses less'),
  artifactSweepIntervalMs: setting('INFERMESH_ARTIFACT_SWEEP_INTERVAL_MS', ms(0), 3_600_000, 'registry: how often it deletes artifacts no version refers to (left by an interrupted delete), first at start-up (0: never)'),
  artifactSweepMinAgeMs: setting('INFERMESH_ARTIFACT_SWEEP_MIN_AGE_MS', ms(0), 3_600_000, 'registry: only artifacts stored longer ago than this are swept, so a push on its way to its record is never touched'),
  routerMaxConnectionAgeMs: setting('INFERMESH_ROUTER_MAX_CONNECTION_AGE_MS', ms(0), 0, 'router: close each client connection after about this long (GOAWAY; calls in flight finish), so long-lived clients spread over routers added later (0: never)'),
  routerConnectionsPerPod: setting('INFERMESH_ROUTER_CONNECTIONS_PER_POD', int(1, 64), 2, 'HTTP/2 connections the router keeps to each pod'),
  routerMaxRequestsPerConnection: setting('INFERMESH_ROUTER_MAX_REQUESTS_PER_CONNECTION', int(0, 2 ** 30), 0, 'router: requests one HTTP/2 connection to a pod (or to its own grpc-js server) carries before it is replaced, gracefully (0: until its stream ids run out, about 2^30; as Envoy\'s max_requests_per_connection, unlimited by default)'),
  // The router's HTTP/REST door (services/router/rest-door.ts; docs/rest.md).
  routerHttpEnabled: setting('INFERMESH_ROUTER_HTTP', bool, true, 'router: serve the Open Inference Protocol over HTTP/REST too, on INFERMESH_ROUTER_HTTP_PORT'),
  routerHttpPort: setting('INFERMESH_ROUTER_HTTP_PORT', int(0, 65535), 8000, 'router HTTP/REST port (Triton\'s HTTP port; gRPC is on INFERMESH_ROUTER_PORT, Triton\'s 8001)'),
  httpMaxJsonBytes: setting('INFERMESH_HTTP_MAX_JSON_BYTES', int(1024, 2 ** 31 - 1), 8 * MiB, 'largest JSON part of a REST request (parsing JSON holds several times its size; larger tensors go as binary data, up to INFERMESH_MAX_MESSAGE_BYTES in all); beyond it 413'),
  httpMaxJsonAnswerBytes: setting('INFERMESH_HTTP_MAX_JSON_ANSWER_BYTES', int(1024, 2 ** 31 - 1), 64 * MiB, 'largest JSON data of a REST answer, reckoned from its outputs\' sizes before it is made (an FP32 output of 64 MiB could take 400 MiB as JSON); beyond it 429 pointing at binary data'),
  httpMaxResponseBytes: setting('INFERMESH_HTTP_MAX_RESPONSE_BYTES', int(1024), 256 * MiB, 'REST answer bytes waiting for their clients to read them, every connection together (as INFERMESH_H2_MAX_RESPONSE_BYTES); an answer that does not fit is replaced by a 429'),
  httpMaxRequestBytes: setting('INFERMESH_HTTP_MAX_REQUEST_BYTES', int(1024), 256 * MiB, 'REST request bytes the door holds at once, every connection together (as INFERMESH_H2_MAX_REQUEST_BYTES): bodies, charged as they arrive, then the gRPC message each is made into in its place (up to 4 times a JSON body); a body that does not fit is answered 429 before it is read, a message that does not fit 429'),
  httpMaxRequestBytesPerConnection: setting('INFERMESH_HTTP_MAX_REQUEST_BYTES_PER_CONNECTION', int(1024), H2.maxRequestBytesPerConnection, 'REST request bytes one connection may hold of INFERMESH_HTTP_MAX_REQUEST_BYTES (its pipelined requests together), as INFERMESH_H2_MAX_REQUEST_BYTES_PER_CONNECTION (64 MiB: one message of INFERMESH_MAX_MESSAGE_BYTES); a body that passes it is answered 429 and its connection closed; at least INFERMESH_MAX_MESSAGE_BYTES, else the router does not start'),
  httpMaxHeaderBytes: setting('INFERMESH_HTTP_MAX_HEADER_BYTES', int(1024, 2 ** 24), 16 * 1024, 'largest request line and headers of a REST request (Node\'s --max-http-header-size: 16 KiB; nginx large_client_header_buffers: 8 KiB a line); beyond it 431'),
  httpMaxHeaders: setting('INFERMESH_HTTP_MAX_HEADERS', int(1, 1_000_000), 100, 'header fields of a REST (or console) request (Envoy max_headers_count and Kestrel MaxRequestHeaderCount: 100; node:http drops those past its 2000 unseen); beyond it 431'),
  httpHeadersTimeoutMs: setting('INFERMESH_HTTP_HEADERS_TIMEOUT_MS', ms(1), 60_000, 'a REST request\'s headers must arrive within this (nginx client_header_timeout and Node\'s headersTimeout: 60 s)'),
  httpRequestTimeoutMs: setting('INFERMESH_HTTP_REQUEST_TIMEOUT_MS', ms(0), 300_000, 'a REST request must arrive whole within this, from its first byte: a total, however steadily it comes (Node\'s requestTimeout: 300 s; INFERMESH_HTTP_BODY_TIMEOUT_MS bounds a stall; 0: no limit)'),
  httpBodyTimeoutMs: setting('INFERMESH_HTTP_BODY_TIMEOUT_MS', ms(0), 60_000, 'a REST body of which no byte arrives for this long is answered 408 and its connection closed, giving back the bytes it held (nginx client_body_timeout: 60 s, between two successive reads; INFERMESH_HTTP_REQUEST_TIMEOUT_MS bounds the whole request; 0: no limit)'),
  httpKeepAliveTimeoutMs: setting('INFERMESH_HTTP_KEEPALIVE_TIMEOUT_MS', ms(0), 75_000, 'an idle REST connection is closed after this (nginx keepalive_timeout: 75 s)'),
  httpMaxRequestsPerConnection: setting('INFERMESH_HTTP_MAX_REQUESTS_PER_CONNECTION', int(0), 1000, 'requests one REST connection carries before the door closes it after its answer (nginx keepalive_requests: 1000; 0: no limit)'),
  httpSendTimeoutMs: setting('INFERMESH_HTTP_SEND_TIMEOUT_MS', ms(0), 60_000, 'a REST answer held in INFERMESH_HTTP_MAX_RESPONSE_BYTES whose client takes none of it for this long has its connection closed, giving its bytes back (nginx send_timeout: 60 s, between two writes; 0: no limit)'),
  httpLingeringTimeMs: setting('INFERMESH_HTTP_LINGERING_TIME_MS', ms(0, 3_600_000), 30_000, 'a connection an HTTP door closes while its client may still be sending (a refused body, a 408, 431 or 400, any Connection: close) is half-closed after its answer and what its client still sends is read and dropped, for at most this in all, so the client reads the answer rather than a reset (nginx lingering_time: 30 s; 0: no lingering, destroyed once its answer is flushed)'),
  httpLingeringTimeoutMs: setting('INFERMESH_HTTP_LINGERING_TIMEOUT_MS', ms(0, 3_600_000), 5_000, 'such a lingering connection is destroyed once its client sends nothing for this long (or takes nothing of its answer before it sends more) (nginx lingering_timeout: 5 s; 0: destroyed at once, its answer perhaps unsent)'),
  httpMaxConnections: setting('INFERMESH_HTTP_MAX_CONNECTIONS', int(1), 4096, 'REST connections the door holds at once; more are closed as they come (nginx worker_connections: 512 a worker)'),
  healthCheckIntervalMs: setting('INFERMESH_HEALTH_CHECK_INTERVAL_MS', ms(0), 2_000, 'router: how often it checks each pod\'s grpc.health.v1 (0: never)'),
  podTtlMs: setting('INFERMESH_POD_TTL_MS', ms(100), 5_000, 'a pod with no heartbeat for this long is forgotten (by routers and the registry, judged on what they have read: a stall of their own event loop is caught up on first, lib/listening-clock.ts)'),
  // nats.js notices a server that stopped answering only after two missed pings (here one every
  // 10 s: 20 to 30 s), far past the TTL; a probe of its own lets a process tell a silent pod from a
  // silent NATS in time (lib/nats.ts NatsLiveness).
  natsProbeIntervalMs: setting('INFERMESH_NATS_PROBE_INTERVAL_MS', ms(0, 3_600_000), 0, 'routers and registry: how often they ask NATS for a round trip (a PING it must answer); while one is late (INFERMESH_NATS_PROBE_TIMEOUT_MS) or NATS is disconnected, pods\' silences are not held against them, and once it answers every pod is asked to speak up, its silence counted on from where it stood (a fresh TTL at each return would let a NATS late now and then keep a dead pod). 0 (the default): a fifth of INFERMESH_POD_TTL_MS (1 s at its default), so a hung NATS is noticed within two fifths of the TTL; with the timeout, less than the TTL. With INFERMESH_AUTH the same round trips prove the API keys\' watch current'),
  natsProbeTimeoutMs: setting('INFERMESH_NATS_PROBE_TIMEOUT_MS', ms(0, 3_600_000), 0, 'routers and registry: a NATS round trip (INFERMESH_NATS_PROBE_INTERVAL_MS) not answered within this counts as NATS away (Kubernetes\' probe timeoutSeconds: 1 s). 0 (the default): a fifth of INFERMESH_POD_TTL_MS (1 s at its default)'),

  // Authentication and authorization (lib/auth; docs/security.md).
  authEnabled: setting('INFERMESH_AUTH', bool, false, 'calls need authorization: Bearer <API key or JWT> with the scope they use (health checks stay open)'),
  authJwksUrl: setting('INFERMESH_AUTH_JWKS_URL', str, '', 'URL of the OIDC issuer\'s JWKS that signs accepted JWTs (empty: JWTs are not accepted; set with the issuer and audience)'),
  authJwtIssuer: setting('INFERMESH_AUTH_JWT_ISSUER', str, '', 'the `iss` an accepted JWT must carry'),
  authJwtAudience: setting('INFERMESH_AUTH_JWT_AUDIENCE', str, '', 'the `aud` an accepted JWT must carry'),
  // Envoy's jwt_authn caches verified JWTs (jwt_cache_config, 100 entries by default) until they expire.
  authCacheTtlMs: setting('INFERMESH_AUTH_CACHE_TTL_MS', ms(0, 3_600_000), 30_000, 'how long a verified token is trusted without a second look; a revoked key is refused at once through the keys bucket\'s watch, this bounds how long an API key is trusted once that watch is not known current (NATS away or cut off)'),
  authCacheEntries: setting('INFERMESH_AUTH_CACHE_ENTRIES', int(0, 10_000_000), 10_000, 'verified tokens cached per process, the oldest dropped first (0: verify every call)'),
  authMaxKeyReads: setting('INFERMESH_AUTH_MAX_KEY_READS', int(1, 1_000_000), 64, 'reads of the keys bucket in flight at once for API keys not yet known (made a moment ago, or made up); past it such a key is answered UNAVAILABLE'),
  authBootstrapTokenFile: setting('INFERMESH_AUTH_BOOTSTRAP_TOKEN_FILE', str, '', 'registry: a file holding an admin API key; its record is made at start when missing (only its hash is stored)'),

  // Inference pods.
  inferencePort: setting('INFERMESH_INFERENCE_PORT', int(0, 65535), 8002, 'inference gRPC port (0: any free port)'),
  // ModelMesh sizes a pod's model memory from its container's limit the same way (less a reserve
  // for the runtime); KServe's docs count about 0.1 GB per model served from a shared pod.
  modelMemoryMb: setting('INFERMESH_MODEL_MEMORY_MB', int(0, 16 * 1024 * 1024), 0, 'pod: memory its loaded models may take, in MiB (0: its container\'s memory limit, or the machine\'s memory, less INFERMESH_MODEL_MEMORY_HEADROOM_MB); reported in heartbeats'),
  modelMemoryHeadroomMb: setting('INFERMESH_MODEL_MEMORY_HEADROOM_MB', int(0, 16 * 1024 * 1024), 512, 'pod: memory kept out of the model budget for the process itself (Node, gRPC, requests in flight), in MiB'),
  // A router's name is in its window reports, which the registry refuses with any other name.
  podName: setting('INFERMESH_POD_NAME', (raw, name) => (raw === '' ? raw : podIdentityName(raw, name)), '', 'this pod\'s or router\'s unique name: 1 to 253 letters, digits, ".", "-" or "_", as a Kubernetes pod name (empty: hostname-pid)'),
  podIdentity: setting('INFERMESH_POD_IDENTITY', podIdentityName, '', 'with TLS: the name in spiffe://infermesh/pod/<name> this pod\'s certificate proves, sent in its heartbeat, for pods that share one certificate (letters, digits, . - _). Empty: the pod name, each pod its own certificate'),
  advertiseHost: setting('INFERMESH_ADVERTISE_HOST', str, '127.0.0.1', 'host the router uses to reach this pod (in Kubernetes: the pod IP)'),
  advertiseAddress: setting('INFERMESH_ADVERTISE_ADDRESS', str, '', 'host:port the router uses to reach this pod, when the bound port is not reachable as is (NAT, port forwarding); overrides INFERMESH_ADVERTISE_HOST'),
  heartbeatIntervalMs: setting('INFERMESH_HEARTBEAT_INTERVAL_MS', ms(50), 1_000, 'how often a pod announces itself; also the most often it answers discover requests, the requests within one interval sharing one heartbeat at its end (1 s: an mDNS responder multicasts an answer at most once a second, RFC 6762 §6)'),
  executionProviders: setting('INFERMESH_EXECUTION_PROVIDERS', list<ExecutionProvider>('cuda', 'webgpu', 'cpu'), ['cuda', 'cpu'] as ExecutionProvider[], 'onnxruntime execution providers, in order of preference: cuda, webgpu (onnxruntime-node\'s bundled WebGPU provider, Dawn on Vulkan), cpu; a pod falls back along the list and reports what its sessions run on'),
  sessionWorkers: setting('INFERMESH_SESSION_WORKERS', int(1, 64), 1, 'worker threads (onnxruntime sessions) per loaded model version'),
  // A session worker allocates little on V8's heap (tensors live in ArrayBuffers outside it); at
  // the process's --max-semi-space-size=32, which the main thread needs, each worker's young
  // generation grew to tens of MB: 40 MNIST versions took 775 MB of a pod, 460 MB at 2.
  sessionWorkerYoungGenerationMb: setting('INFERMESH_SESSION_WORKER_YOUNG_GENERATION_MB', int(1, 1024), 2, 'pod: V8 young generation of each session worker thread, in MB (its resourceLimits.maxYoungGenerationSizeMb; the workers do not take the process\'s --max-semi-space-size)'),
  // onnxruntime builds an ai.onnx.ml decision tree by recursing once per level on the stack of the
  // thread making the session: a tree 8 000 levels deep (a 500 KB model) overflows a worker's 4 MiB
  // and ends the process. Such a version gets workers of its own with the stack its deepest tree
  // needs (lib/onnx TREE_LEVELS_PER_STACK_MIB); stack is address space, used as deep as it goes.
  sessionWorkerMaxStackMb: setting('INFERMESH_SESSION_WORKER_MAX_STACK_MB', int(4, 65_536), 1_024, 'pod: most stack a version\'s own session worker threads get, in MiB, for a model whose decision trees are deep (Node\'s default for a worker thread is 4 MiB); a model whose trees need more fails to load, with why, rather than end the pod'),
  // A session worker costs a V8 isolate (about 8 MB resident) whatever it holds, a small model's
  // session about 1 MB: a pod's small versions share a few workers, a session each on one of them
  // (41 MNIST versions: 545-565 MB resident with a worker each, 220-250 MB shared). Loading or
  // running a version blocks the others on its worker, so large models and long runs keep their own.
  sharedSessionWorkers: setting('INFERMESH_SHARED_SESSION_WORKERS', int(0, 256), 0, 'pod: session worker threads shared by its versions whose models are small and quick (INFERMESH_SHARED_SESSION_MAX_*) and whose runs cost what their inputs\' shapes say (a model with a Loop, an If, or a Range, Tile, Pad… sized by an input\'s values gets workers of its own): each holds a session of every version placed on it (INFERMESH_SESSION_WORKERS of them per version, on different workers), so a version adds a session, not a thread; a shared session runs on one intra-op thread where the pod fits threads to versions (0: the pod\'s CPUs less one for its event loop, at least 1; CPUs counted as for INFERMESH_INTRA_OP_THREADS)'),
  sharedSessionMaxModelBytes: setting('INFERMESH_SHARED_SESSION_MAX_MODEL_BYTES', int(0), 16 * MiB, 'pod: largest artifact whose sessions go on the shared session workers (loading one holds up the runs of the others on its worker, about 2 ms a MiB); a larger one gets INFERMESH_SESSION_WORKERS workers of its own (0: every version does, as before sharing)'),
  sharedSessionMaxRunUs: setting('INFERMESH_SHARED_SESSION_MAX_RUN_US', int(0, 60_000_000), 1_000, 'pod: a version on the shared session workers whose warm-up runs, or else its batch timed as the thread fitting times it, take this many µs or more is loaded again on workers of its own, so its runs never hold up the others\' (0: run time never moves one; the default is INFERMESH_INTRA_OP_SERIAL_RUN_US\'s: the versions that share are those the fitting gives one thread)'),
  intraOpThreads: setting('INFERMESH_INTRA_OP_THREADS', int(0, 256), 0, 'onnxruntime intra-op threads per session (0: the pod\'s CPUs / workers, its cgroup CPU quota where one is set, else os.availableParallelism(); onnxruntime\'s own default is the host\'s cores)'),
  intraOpSerialRunUs: setting('INFERMESH_INTRA_OP_SERIAL_RUN_US', int(0, 60_000_000), 1_000, 'with INFERMESH_INTRA_OP_THREADS=0 and the warm-up on: a version whose warm-up sample (without samples: a synthetic batch of its max batch size) runs in less than this many µs, on the pod\'s threads and then on one, runs on one intra-op thread, its operators too small for waking other threads to pay (0: every version gets the pod\'s threads)'),
  intraOpSpinning: setting('INFERMESH_INTRA_OP_SPINNING', spinningPolicy, 'on', 'how onnxruntime\'s intra-op threads wait for work: on (onnxruntime\'s default: a thread that finishes work spins a while before it sleeps, so the next operator or run finds it awake), runs (spin only while a run goes on, asleep once the session\'s last run returns: a wake-up per run), off (sleep after every operator: a wake-up per operator, the least CPU)'),
  // The hop from the pod's thread to a session worker and back costs about 60 µs here (a message
  // each way between two threads waiting on their event loops), more than MNIST's whole run, and
  // more than a batch of 64 of its rows (about 50 µs on one thread).
  inlineRunUs: setting('INFERMESH_INLINE_RUN_US', int(0, 1_000_000), 200, 'pod: a version whose one-row runs take less than this many µs (timed after its warm-up, on one thread; then 2, 4, … rows up to its max batch size, while under it; where its fastest one-row run was under ten times this but it fell short of its batch size, the session is kept and timed again up to three times, 1, 5 and 30 s apart while the version is idle, keeping the most rows any timing allowed, since a busy machine only slows runs) also gets a session on the pod\'s own thread, where a run of up to the most rows timed under this (a lone request, or a batch the batcher formed) runs at once instead of hopping to its worker; a run of more rows, or while another of the version runs on a worker or waits, goes to the workers (0: never; only CPU versions with no BYTES input, no dynamic dimension but the first, and no operator whose cost follows the request\'s values, such as a Loop or a Range sized by an input)'),
  // onnxruntime makes a session on the thread that asks, and the pod's own thread answers every call
  // and health check: it makes one only for a version whose session its worker made about as fast
  // as a pause of a major GC (MNIST: 2 ms; a graph of 4 000 nodes: 120 ms; 16 000: 3 s).
  inlineMaxLoadMs: setting('INFERMESH_INLINE_MAX_LOAD_MS', ms(0, 60_000), 250, 'pod: a version gets a session on the pod\'s own thread (INFERMESH_INLINE_RUN_US) only when onnxruntime made its session on a worker in less than this many ms, as making it there stalls every call and health check of the pod for as long (0: no version gets one)'),
  // Waking a thread asleep in epoll_wait costs tens of µs on bare metal, hundreds on a VM whose idle
  // CPUs halt; a request at concurrency 1 otherwise pays it on every call (lib/busy-poll.ts).
  podBusyPollUs: setting('INFERMESH_POD_BUSY_POLL_US', int(0, 1_000_000), 250, 'pod: for this many µs after an answer leaves no ModelInfer in flight, the pod\'s thread keeps polling for events instead of sleeping, so that the next request finds it awake; it stops as soon as a request arrives (a run under way wakes it when done); it starts only after an answer of a version that runs on the pod\'s own thread (INFERMESH_INLINE_RUN_US: one on a worker has that worker to wake anyway), and not where it and the answered version\'s onnxruntime threads still spinning (INFERMESH_INTRA_OP_SPINNING=on) would leave none of the pod\'s CPUs free. Spends up to this much CPU per request at low rates, none under load or once idle (0: sleep at once, as node does; the same trade as Linux\'s net.core.busy_poll, off there by default, 50 µs suggested)'),
  modelDir: setting('INFERMESH_MODEL_DIR', str, '', 'where a pod keeps pulled artifacts (empty: a temp folder)'),
  maxTensorElements: setting('INFERMESH_MAX_TENSOR_ELEMENTS', int(1), 64 * MiB, 'largest element count of one request tensor'),
  // Counted before a request is decoded (lib/grpc/request-scan.ts); Triton has no such limits.
  maxRequestTensors: setting('INFERMESH_MAX_REQUEST_TENSORS', int(1), 1024, 'inputs, requested outputs and raw_input_contents entries of one request, each'),
  maxRequestParameters: setting('INFERMESH_MAX_REQUEST_PARAMETERS', int(0), 1024, 'parameters of one request, its inputs and its outputs together'),
  maxTensorRank: setting('INFERMESH_MAX_TENSOR_RANK', int(1, 1024), 64, 'dimensions of one request tensor (numpy 2\'s maximum)'),
  maxBytesElements: setting('INFERMESH_MAX_BYTES_ELEMENTS', int(1), 1024 * 1024, 'BYTES (string) elements of one request, all tensors together: each costs a string whatever its size'),
  // Triton has no such limit. protobufjs keeps each typed-contents element as a JS value (an int64
  // about 85 bytes of heap, one byte on the wire), so this is a sixteenth of the largest tensor's
  // INFERMESH_MAX_TENSOR_ELEMENTS default: at most about 350 MiB of heap for one request.
  maxRequestElements: setting('INFERMESH_MAX_REQUEST_ELEMENTS', int(1), 4 * MiB, 'elements one request may give in typed contents (int64_contents, fp32_contents, bytes_contents...), all tensors together, counted before decoding; larger tensors go in raw_input_contents'),
  // Triton has no such limit; each result is a string of the answer, as a BYTES element of a request is.
  maxClassificationResults: setting('INFERMESH_MAX_CLASSIFICATION_RESULTS', int(1), 1024 * 1024, 'strings one classified output may answer (rows × class_count, class_count capped at a row\'s elements); beyond it INVALID_ARGUMENT'),
  dynamicBatching: setting('INFERMESH_DYNAMIC_BATCHING', bool, true, 'batch concurrent requests of models with a dynamic first dimension whose graph keeps a batch\'s rows apart (a model\'s registry config overrides, and may turn it on for any other)'),
  maxBatchSize: setting('INFERMESH_MAX_BATCH_SIZE', int(1, 65536), 64, 'default largest batch of one run'),
  maxQueueDelayUs: setting('INFERMESH_MAX_QUEUE_DELAY_US', int(0, 10_000_000), 500, 'default longest a request waits for others to batch with, in microseconds (Triton\'s max_queue_delay_microseconds). Under 1 ms no timer is set: a request that finds a free run slot waits only for the requests of the same socket read, and those that come later form the next batch while its run is in flight'),
  maxQueueSize: setting('INFERMESH_MAX_QUEUE_SIZE', int(1), 1024, 'requests queued per model version; beyond it RESOURCE_EXHAUSTED'),
  unloadGraceMs: setting('INFERMESH_UNLOAD_GRACE_MS', ms(0), 2_000, 'how long a version being unloaded still serves requests, while routers learn it is going'),
  warmupTimeoutMs: setting('INFERMESH_WARMUP_TIMEOUT_MS', ms(0), 60_000, 'pod: longest a version\'s warm-up may take; past it the version serves, the reason reported, and a run still going finishes on its worker (Triton has no such budget)'),
  warmup: setting('INFERMESH_WARMUP', bool, true, 'run warm-up requests (the model\'s configured samples, else one on zeros) before a version is marked ready; a failed one is reported, the version serves anyway'),
  // Kubernetes' CrashLoopBackOff doubles from 10 s to 5 min; Triton does not retry a failed load at all.
  loadRetryBaseMs: setting('INFERMESH_LOAD_RETRY_BASE_MS', ms(1), 1_000, 'pod: wait before loading again a version whose load failed, doubling with each failure in a row; a version stopped by a run past its budget waits the same, doubling with each stop in a row (one within twice INFERMESH_LOAD_RETRY_MAX_MS of the last), and besides until every such run of it has ended'),
  runTimeoutMs: setting('INFERMESH_RUN_TIMEOUT_MS', ms(0, 86_400_000), 120_000, 'pod: a run on a version\'s own session workers that takes longer fails DEADLINE_EXCEEDED; onnxruntime cannot stop it, so its worker is set aside to finish alone (its thread busy until then), a new one takes its sessions, and the version is stopped on this pod, UNAVAILABLE with why, and loaded again as a failed load is (INFERMESH_LOAD_RETRY_*) once that run has ended, on workers of its own if it overran a shared one (TorchServe default_response_timeout: 120 s; 0: no limit)'),
  maxSetAsideWorkers: setting('INFERMESH_MAX_SET_ASIDE_WORKERS', int(0, 1024), 2, 'pod: session workers set aside with a run past its budget (INFERMESH_RUN_TIMEOUT_MS), or a load past INFERMESH_LOAD_TIMEOUT_MS (at most one per version, and counted only when a run is set aside: a load is not a caller\'s doing), that the pod keeps at once; one more and it drains and exits, to be started anew by its orchestrator, as each holds a CPU and the memory of its sessions until its run returns, which it may never do (TorchServe restarts a worker past its timeout; 0: no limit)'),
  // TorchServe's default_startup_timeout (a worker's model load) is 120 s. onnxruntime's session
  // creation cannot be stopped and grows faster than a graph's node count (64 000 nodes: over a
  // minute), so a load past it is set aside as a run past INFERMESH_RUN_TIMEOUT_MS is.
  loadTimeoutMs: setting('INFERMESH_LOAD_TIMEOUT_MS', ms(0, 86_400_000), 120_000, 'pod: making a session of a version on its own session workers that takes longer fails the load DEADLINE_EXCEEDED: onnxruntime cannot stop it, so its worker is set aside to finish it alone, a new one takes the other sessions, and the version is UNAVAILABLE with why, loaded again as a failed load is (INFERMESH_LOAD_RETRY_*) once that load has ended, on workers of its own if it overran a shared one (TorchServe default_startup_timeout: 120 s; 0: no limit)'),
  sharedSessionLoadTimeoutMs: setting('INFERMESH_SHARED_SESSION_LOAD_TIMEOUT_MS', ms(0, 86_400_000), 10_000, 'pod: as INFERMESH_LOAD_TIMEOUT_MS, for making a session on the shared session workers, where every other version on its worker waits for it (its runs, its unloads): the models there are at most INFERMESH_SHARED_SESSION_MAX_MODEL_BYTES, which onnxruntime loads in well under a second (about 2 ms a MiB), so one that takes seconds is a graph built to be slow; it moves to workers of its own (0: no limit)'),
  // A version's memory is what the process grew by while its sessions were made and warmed up,
  // which holds only while no other version's are: a load that takes long lets the others by.
  loadAloneMs: setting('INFERMESH_LOAD_ALONE_MS', ms(0, 86_400_000), 10_000, 'pod: a version\'s sessions are made and warmed up while no other version\'s are, so that the memory its load took is its own; one still at it after this long lets the next load start beside it (both then also count what the other took: an overestimate), so a slow load holds up other versions\' loads for no longer (a 16 MiB model loads in well under a second; 0: every load waits for the one before, however long)'),
  sharedSessionRunTimeoutMs: setting('INFERMESH_SHARED_SESSION_RUN_TIMEOUT_MS', ms(0, 86_400_000), 5_000, 'pod: as INFERMESH_RUN_TIMEOUT_MS, for a run on the shared session workers, where every other version on its worker waits for it: the versions there were admitted for runs of under INFERMESH_SHARED_SESSION_MAX_RUN_US, so a run thousands of times that is not a slow machine (raise it where that is 0; 0: no limit)'),
  loadRetryMaxMs: setting('INFERMESH_LOAD_RETRY_MAX_MS', ms(1), 300_000, 'pod: longest wait between loads of a version that keeps failing'),
} as const;

type Settings = typeof settings;
/** The parsed configuration; every service reads the fields it needs. */
export type Config = Readonly<{ [K in keyof Settings]: Settings[K]['default'] }>;

/** Every environment variable infermesh reads (manifests are checked against this list). */
export const knownVariables: readonly string[] = Object.values(settings).map((s) => s.env);

/** Parses `env` (default process.env) into a frozen Config; throws naming the first bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(settings) as [string, Setting<unknown>][]) {
    // NATS_URL is the NATS tools' own convention; honour it when ours is not set.
    const raw = env[s.env] ?? (key === 'natsUrl' ? env.NATS_URL : undefined);
    out[key] = raw === undefined || raw === '' ? s.default : s.parse(raw, s.env);
  }
  if (out.podName === '') out.podName = `${os.hostname()}-${process.pid}`;
  // WatchEvents may not take the whole event stream's consumer table from routers and pods.
  const bound = out.eventStreamMaxConsumers as number;
  if (out.registryMaxWatches === 0) out.registryMaxWatches = Math.floor(bound / 2);
  else if ((out.registryMaxWatches as number) >= bound) {
    bad(settings.registryMaxWatches.env, String(out.registryMaxWatches), `fewer than INFERMESH_EVENT_STREAM_MAX_CONSUMERS (${bound}), whose consumers routers and pods need too`);
  }
  // A NATS that hangs must be noticed before pods' silences pass the TTL (lib/nats.ts NatsLiveness).
  const ttl = out.podTtlMs as number;
  if (out.natsProbeIntervalMs === 0) out.natsProbeIntervalMs = Math.max(10, Math.floor(ttl / 5));
  if (out.natsProbeTimeoutMs === 0) out.natsProbeTimeoutMs = Math.max(10, Math.floor(ttl / 5));
  if ((out.natsProbeIntervalMs as number) + (out.natsProbeTimeoutMs as number) >= ttl) {
    const key = env[settings.natsProbeTimeoutMs.env] ? 'natsProbeTimeoutMs' : 'natsProbeIntervalMs';
    bad(settings[key].env, String(out[key]), `a value with INFERMESH_NATS_PROBE_INTERVAL_MS plus INFERMESH_NATS_PROBE_TIMEOUT_MS less than INFERMESH_POD_TTL_MS (${ttl}): a NATS that hangs would otherwise be noticed only after every pod was forgotten`);
  }
  // A version's write not found made once its event is this old is fenced: a registry still
  // retrying it would then have its push refused (or its archive go round again) for no fault. The
  // event's age is read on another replica's clock than the one that stamped it, so the margin too.
  if ((out.registryOutboxVersionWriteGraceMs as number) < VERSION_WRITE_RETRY_MS + REPLICA_CLOCK_MARGIN_MS) {
    bad(settings.registryOutboxVersionWriteGraceMs.env, String(out.registryOutboxVersionWriteGraceMs), `at least ${VERSION_WRITE_RETRY_MS + REPLICA_CLOCK_MARGIN_MS}: ${VERSION_WRITE_RETRY_MS}, the longest a registry retries a version's write (${DEFAULT_RETRY.attempts} attempts of up to ${JETSTREAM_REQUEST_TIMEOUT_MS} ms and the waits between), plus ${REPLICA_CLOCK_MARGIN_MS} for replicas' clocks that disagree, so a write held up by a JetStream leader election is made, not given up`);
  }
  // The REST door reads a body of up to INFERMESH_MAX_MESSAGE_BYTES whole, charged to its budget:
  // a budget smaller would refuse every such request (429, for ever), which the settings allow.
  const maxMessage = out.maxMessageBytes as number;
  if (out.routerHttpEnabled && (out.httpMaxRequestBytes as number) < maxMessage) {
    bad(settings.httpMaxRequestBytes.env, String(out.httpMaxRequestBytes), `at least INFERMESH_MAX_MESSAGE_BYTES (${maxMessage}), the largest request body the REST door takes, which it holds whole (or lower that, or turn the door off with INFERMESH_ROUTER_HTTP=false)`);
  }
  // The gRPC doors (lib/h2) read a request message whole, admitted against both request budgets
  // before any of it is kept: a budget below the message limit refuses every request between the
  // two, RESOURCE_EXHAUSTED for ever. Answer budgets need no such floor: a connection, and the door,
  // holding no answer takes one of any size.
  for (const key of ['h2MaxRequestBytesPerConnection', 'h2MaxRequestBytes'] as const) {
    if ((out[key] as number) < maxMessage) {
      bad(settings[key].env, String(out[key]), `at least INFERMESH_MAX_MESSAGE_BYTES (${maxMessage}), the largest request message the gRPC doors take, which they hold whole (or lower that)`);
    }
  }
  // Likewise one REST connection's share: a body of the message limit must fit it.
  if (out.routerHttpEnabled && (out.httpMaxRequestBytesPerConnection as number) < maxMessage) {
    bad(settings.httpMaxRequestBytesPerConnection.env, String(out.httpMaxRequestBytesPerConnection), `at least INFERMESH_MAX_MESSAGE_BYTES (${maxMessage}), the largest request body the REST door takes, which one connection holds whole (or lower that, or turn the door off with INFERMESH_ROUTER_HTTP=false)`);
  }
  return Object.freeze(out) as Config;
}
