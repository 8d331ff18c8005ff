// Who may call what on a pod when client certificates are required (INFERMESH_TLS_CLIENT_AUTH):
// routers, every method; the registry, only the questions its placement asks a proven pod
// (lib/grpc/pod-answers.ts); pods, only grpc.health.v1 Check: Kubernetes probes a pod from inside
// its own container with its own certificate (tools/health-probe.ts), and whether a pod serves is
// no secret; anything more would let a pod's certificate reach other pods. A
// pod runs models anyone with the push scope uploaded and answers every team's calls without
// tokens (the router checked them), so a certificate that may call more than it needs is a way
// around those checks. The pod's door (lib/h2 front door) asks podCallRefusal of every stream
// before serving it, the ModelInfer it answers itself and the calls it pipes to the pod's grpc-js
// server alike, unary or streaming: that server listens on loopback only, behind the door.
import type tls from 'node:tls';
import { HEALTH_CHECK_PATH, POD_ANSWER_PATHS } from '../../lib/grpc/pod-answers';
import type { CallGate } from '../../lib/h2/server';
import { peerKinds, peerOfKind, type ServiceKind } from '../../lib/tls';

/** The kinds of service whose certificates a pod admits at all; each connection is held to podCallRefusal. */
const POD_CALLER_KINDS: readonly ServiceKind[] = ['router', 'registry', 'pod'];

const REGISTRY_CALLS: ReadonlySet<string> = new Set(POD_ANSWER_PATHS);

/** What a pod's certificate may call on a pod: the health check its own Kubernetes probes make. */
export const POD_PROBE_PATH = HEALTH_CHECK_PATH;

/**
 * Why a caller whose certificate proves `kinds` may not call the gRPC method at `path` (a
 * PERMISSION_DENIED message naming both), or undefined when it may: a router calls every method, the
 * registry only POD_ANSWER_PATHS, a pod only POD_PROBE_PATH, any other caller nothing.
 */
export function podCallRefusal(kinds: readonly ServiceKind[], path: string): string | undefined {
  if (kinds.includes('router')) return undefined;
  if (kinds.includes('registry')) {
    if (REGISTRY_CALLS.has(path)) return undefined;
    return `a registry certificate may not call ${path} on a pod: it asks pods only ${POD_ANSWER_PATHS.join(' and ')}`;
  }
  if (kinds.includes('pod')) {
    if (path === POD_PROBE_PATH) return undefined;
    return `a pod certificate may not call ${path} on a pod: it may only probe ${POD_PROBE_PATH}`;
  }
  return `a ${kinds.join(' and ') || 'client'} certificate may not call ${path} on a pod: only routers, the registry and pods' own health probes do`;
}

/** The TLS door settings of a pod that requires client certificates: who is let in, and what each connection may call. */
export const podPeers = {
  acceptPeer: peerOfKind(...POD_CALLER_KINDS),
  /** Once per connection: its peer's kinds are read from its certificate then, not per call. */
  callsOf(socket: tls.TLSSocket): CallGate {
    const kinds = peerKinds(socket);
    return (path) => podCallRefusal(kinds, path);
  },
};
