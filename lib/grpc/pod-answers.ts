// What a proven pod says of itself over gRPC, for lib/heartbeat-confirmation.ts: whether it serves
// (grpc.health.v1 Check) and which versions it has (the Open Inference Protocol's RepositoryIndex),
// each asked over a connection whose TLS handshake demands the identity the pod proved, so a pod
// forging heartbeats in another's name cannot answer for it. The router asks over its own
// connections to each pod (services/router/pod-connections.ts); the registry, which calls pods for
// nothing else, keeps a pair of clients per proven pod here (PodAnswerClients).
import { healthClient, inferenceClient, unary } from './client';
import type { HealthClient, InferenceClient } from './types';
import type { RepositoryIndexResponse__Output } from './generated/inference/RepositoryIndexResponse';
import type { ModelState, PodModel } from '../events';
import type { TlsFiles } from '../tls';

const MODEL_STATES: ReadonlySet<string> = new Set<ModelState>(['LOADING', 'READY', 'UNLOADING', 'UNAVAILABLE']);

/**
 * A pod's RepositoryIndex answer as the versions a heartbeat lists (PodModel; no provider nor load
 * figures, which RepositoryIndex does not give). Throws on an entry no pod writes: the answer is
 * not used.
 */
export function modelsOfIndex(res: RepositoryIndexResponse__Output): PodModel[] {
  return res.models.map((m) => {
    const version = Number(m.version);
    if (!m.name || !/^\d+$/.test(m.version) || !Number.isSafeInteger(version) || !MODEL_STATES.has(m.state)) {
      throw new Error(`RepositoryIndex lists ${JSON.stringify(m.name)} version ${JSON.stringify(m.version)} in state ${JSON.stringify(m.state)}`);
    }
    return { name: m.name, version, state: m.state as ModelState, provider: '', ...(m.reason && { reason: m.reason }) };
  });
}

/**
 * Whether the pod behind `health` says it serves (grpc.health.v1 Check): `answer` is its status, or
 * why none came within `timeoutMs` (refused, closed, the deadline).
 */
export async function askServing(health: HealthClient, timeoutMs: number): Promise<{ serving: boolean; answer: string }> {
  try {
    const res = await unary<{ status: string }>((cb) => health.Check({ service: '' }, { deadline: Date.now() + timeoutMs }, cb));
    return { serving: res.status === 'SERVING', answer: res.status };
  } catch (err) {
    return { serving: false, answer: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * The versions the pod behind `typed` lists, in every state, with their reasons (RepositoryIndex);
 * rejects when no answer came within `timeoutMs`, or one no pod gives.
 */
export async function askVersions(typed: InferenceClient, timeoutMs: number): Promise<PodModel[]> {
  const res = await unary<RepositoryIndexResponse__Output>((cb) => typed.RepositoryIndex({ repository_name: '', ready: false }, { deadline: Date.now() + timeoutMs }, cb));
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
  private readonly byPod = new Map<ProvenAddress, { health: HealthClient; typed: InferenceClient }>();

  /** `tls`: the service's material (its certificate is the client certificate pods may ask for); `timeoutMs`: each question's deadline (INFERMESH_HEARTBEAT_CONFIRM_TIMEOUT_MS). */
  constructor(private readonly tls: TlsFiles, private readonly timeoutMs: number) {}

  /** Whether the pod says it serves (askServing). */
  serving(pod: ProvenAddress): Promise<{ serving: boolean; answer: string }> {
    return askServing(this.of(pod).health, this.timeoutMs);
  }

  /** The versions the pod lists (askVersions). */
  versions(pod: ProvenAddress): Promise<PodModel[]> {
    return askVersions(this.of(pod).typed, this.timeoutMs);
  }

  private of(pod: ProvenAddress): { health: HealthClient; typed: InferenceClient } {
    let c = this.byPod.get(pod);
    if (!c) {
      const tls = { files: this.tls, identity: pod.identity };
      this.byPod.set(pod, (c = { health: healthClient(pod.address, { tls }), typed: inferenceClient(pod.address, { tls }) }));
    }
    return c;
  }

  /** Closes the clients of a pod that left. */
  close(pod: ProvenAddress): void {
    const c = this.byPod.get(pod);
    if (!c) return;
    this.byPod.delete(pod);
    c.health.close();
    c.typed.close();
  }

  closeAll(): void {
    for (const pod of [...this.byPod.keys()]) this.close(pod);
  }
}
