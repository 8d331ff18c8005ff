// What a proven pod says of itself over gRPC, for lib/heartbeat-confirmation.ts: whether it serves
// (grpc.health.v1 Check) and which versions it has (the Open Inference Protocol's RepositoryIndex),
// each asked over a connection whose TLS handshake demands the identity the pod proved, so a pod
// forging heartbeats in another's name cannot answer for it. The router asks over its own
// connections to each pod (services/router/pod-connections.ts); the registry, which calls pods for
// nothing else, keeps a pair of clients per proven pod here (PodAnswerClients).
import * as grpc from '@grpc/grpc-js';
import { healthClient, inferenceClient, unary, type ClientTls } from './client';
import type { HealthClient, InferenceClient } from './types';
import type { RepositoryIndexResponse__Output } from './generated/inference/RepositoryIndexResponse';
import { cutReason, HEARTBEAT_LIMITS, HEARTBEAT_MAX_BYTES, type ModelState, type PodModel } from '../events';
import type { ServingAnswer } from '../heartbeat-confirmation';
import type { TlsFiles } from '../tls';

/** grpc.health.v1 Check's HTTP/2 path: askServing's call, and the one a pod's Kubernetes probes make. */
export const HEALTH_CHECK_PATH = '/grpc.health.v1.Health/Check';

/**
 * The calls asked of a pod here, by HTTP/2 path: grpc.health.v1 Check (askServing) and
 * RepositoryIndex (askVersions). They are all the registry asks of pods (placement reaches them
 * through the registry bucket and NATS; each pod loads and warms up its versions itself), so they
 * are all a pod lets a registry certificate call (services/inference/pod-callers.ts).
 */
export const POD_ANSWER_PATHS: readonly string[] = [HEALTH_CHECK_PATH, '/inference.GRPCInferenceService/RepositoryIndex'];

const MODEL_STATES: ReadonlySet<string> = new Set<ModelState>(['LOADING', 'READY', 'UNLOADING', 'UNAVAILABLE']);

/** The clients a pod is asked over: its answers are received within what its heartbeat may carry. */
export interface AnswerClients {
  health: HealthClient;
  index: InferenceClient;
}

/**
 * Clients of the pod at `address` for its answers: a message larger than a heartbeat
 * (HEARTBEAT_MAX_BYTES, NATS's max_payload) is refused by grpc-js as it arrives
 * (RESOURCE_EXHAUSTED), not decoded, so what a pod answers costs no more than its heartbeat could.
 */
export function answerClients(address: string, tls: ClientTls | undefined): AnswerClients {
  const opts = { maxMessageBytes: HEARTBEAT_MAX_BYTES, tls };
  return { health: healthClient(address, opts), index: inferenceClient(address, opts) };
}

/**
 * A pod's RepositoryIndex answer as the versions a heartbeat lists (PodModel; no provider nor load
 * figures, which RepositoryIndex does not give), under a heartbeat's limits (HEARTBEAT_LIMITS: the
 * versions listed, a model name's length; a long reason cut). Throws on an answer no pod gives (an
 * entry no pod writes, a version named twice, more versions than a heartbeat may list): it is not used.
 */
export function modelsOfIndex(res: RepositoryIndexResponse__Output): PodModel[] {
  if (res.models.length > HEARTBEAT_LIMITS.versions) throw new Error(`RepositoryIndex lists ${res.models.length} versions, more than a heartbeat may (${HEARTBEAT_LIMITS.versions})`);
  const seen = new Set<string>();
  return res.models.map((m) => {
    const version = Number(m.version);
    if (!m.name || m.name.length > HEARTBEAT_LIMITS.model || !/^\d+$/.test(m.version) || !Number.isSafeInteger(version) || !MODEL_STATES.has(m.state)) {
      throw new Error(`RepositoryIndex lists ${JSON.stringify(m.name.slice(0, HEARTBEAT_LIMITS.model))} version ${JSON.stringify(m.version.slice(0, 32))} in state ${JSON.stringify(m.state.slice(0, 32))}`);
    }
    const key = `${m.name}\0${version}`;
    if (seen.has(key)) throw new Error(`RepositoryIndex lists ${JSON.stringify(m.name)} version ${version} twice`);
    seen.add(key);
    return { name: m.name, version, state: m.state as ModelState, provider: '', ...(m.reason && { reason: cutReason(m.reason) }) };
  });
}

/**
 * Whether the pod behind `health` says it serves (grpc.health.v1 Check): `answer` is its status, or
 * why none came within `timeoutMs` (refused, closed, the deadline; `deadlineMissed` for the last).
 */
export async function askServing(health: HealthClient, timeoutMs: number): Promise<ServingAnswer> {
  try {
    const res = await unary<{ status: string }>((cb) => health.Check({ service: '' }, { deadline: Date.now() + timeoutMs }, cb));
    return { serving: res.status === 'SERVING', answer: res.status };
  } catch (err) {
    const deadlineMissed = (err as Partial<grpc.ServiceError>).code === grpc.status.DEADLINE_EXCEEDED;
    return { serving: false, answer: err instanceof Error ? err.message : String(err), ...(deadlineMissed && { deadlineMissed }) };
  }
}

/**
 * The versions the pod behind `index` lists, in every state, with their reasons (RepositoryIndex);
 * rejects when no answer came within `timeoutMs`, or one no pod gives (modelsOfIndex; larger than
 * a heartbeat, answerClients()).
 */
export async function askVersions(index: InferenceClient, timeoutMs: number): Promise<PodModel[]> {
  const res = await unary<RepositoryIndexResponse__Output>((cb) => index.RepositoryIndex({ repository_name: '', ready: false }, { deadline: Date.now() + timeoutMs }, cb));
  return modelsOfIndex(res);
}

/** A proven pod as its clients are made for it: where it is and the identity it proved there (one object per pod while it is known). */
export interface ProvenAddress {
  readonly address: string;
  /** The SPIFFE ID its certificate carried (claimedPodIdentity); a connection carrying another is refused. */
  readonly identity: string;
}

/**
 * A health client and an inference client per proven pod, over TLS demanding the identity the pod
 * proved at its address; made at its first question, closed when it goes. grpc-js closes a
 * connection idle for its client_idle_timeout_ms (30 min), so pods asked nothing hold none.
 */
export class PodAnswerClients {
  private readonly byPod = new Map<ProvenAddress, AnswerClients>();

  /** `tls`: the service's material (its certificate is the client certificate pods may ask for); `timeoutMs`: each question's deadline (INFERMESH_HEARTBEAT_CONFIRM_TIMEOUT_MS). */
  constructor(private readonly tls: TlsFiles, private readonly timeoutMs: number) {}

  /** Whether the pod says it serves (askServing). */
  serving(pod: ProvenAddress): Promise<ServingAnswer> {
    return askServing(this.of(pod).health, this.timeoutMs);
  }

  /** The versions the pod lists (askVersions). */
  versions(pod: ProvenAddress): Promise<PodModel[]> {
    return askVersions(this.of(pod).index, this.timeoutMs);
  }

  private of(pod: ProvenAddress): AnswerClients {
    let c = this.byPod.get(pod);
    if (!c) this.byPod.set(pod, (c = answerClients(pod.address, { files: this.tls, identity: pod.identity })));
    return c;
  }

  /** Closes the clients of a pod that left. */
  close(pod: ProvenAddress): void {
    const c = this.byPod.get(pod);
    if (!c) return;
    this.byPod.delete(pod);
    c.health.close();
    c.index.close();
  }

  closeAll(): void {
    for (const pod of [...this.byPod.keys()]) this.close(pod);
  }
}
