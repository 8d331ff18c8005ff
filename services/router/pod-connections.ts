// The router's connections to each pod: a few bare HTTP/2 connections for ModelInfer's bytes (one
// connection caps large-message throughput), and one typed grpc-js client for every other call.
// With TLS on, every connection to a pod checks that its certificate carries the identity the
// pod's heartbeat claims (claimedPodIdentity: spiffe://infermesh/pod/<its name, or the identity
// pods sharing a certificate claim>), and a heartbeat is believed only once a handshake with its
// address proved that identity (PodIdentityCheck). Those handshakes go through the process's
// bounded probes (TlsFiles.probes), and warnings about claims that fail are a line per interval
// (ClaimWarnings): heartbeats anyone holding the pod NATS identity can invent cost no more.
import type { KeyObject } from 'node:crypto';
import { inferenceClient, type ClientTls } from '../../lib/grpc/client';
import { answerClients, askServing as servingAnswer, askVersions as versionsAnswer, type AnswerClients } from '../../lib/grpc/pod-answers';
import type { ServingAnswer } from '../../lib/heartbeat-confirmation';
import { H2Upstream, type H2UpstreamOptions } from '../../lib/h2/upstream';
import type { InferenceClient } from '../../lib/grpc/types';
import type { Logger } from '../../lib/log';
import { claimedPodIdentity, expectIdentity, type ProbedPeer, type TlsFiles } from '../../lib/tls';
import { claimLimitsOf, ClaimWarnings } from '../../lib/pod-claims';
import { signedBy } from '../../lib/heartbeat-signatures';
import type { Heartbeat, PodModel } from '../../lib/events';
import type { Membership, Pod } from './membership';

/**
 * Settings of the router's HTTP/2 connections to an upstream: each carries `maxRequests` streams
 * (a client's stream ids are odd) before it is replaced; 0: until its stream ids run out.
 */
export function upstreamOptions(maxRequests: number): H2UpstreamOptions {
  return maxRequests > 0 ? { maxStreamId: 2 * maxRequests - 1 } : {};
}

interface Connections {
  h2: H2Upstream;
  typed: InferenceClient;
  /** The TLS the connections were made with (undefined with TLS off). */
  tls: ClientTls | undefined;
  /**
   * grpc.health.v1 and RepositoryIndex, for a pod's own word on what its heartbeats claim (received
   * within a heartbeat's bound): made when first asked, as only the confirmations of TLS on ask.
   */
  answers?: AnswerClients;
}

export class PodConnections {
  private readonly byAddress = new Map<string, Connections>();
  /** With TLS: the identity each address proved (connections there expect it). */
  private readonly identities = new Map<string, string>();
  /** With TLS: the public key of the certificate each address proved its identity with, which its pod signs heartbeats with. */
  private readonly keys = new Map<string, KeyObject>();

  /**
   * `perPod` connections to each pod; each carries `maxRequestsPerConnection` requests (0: until
   * its ids run out). `tls`: the router's material (its certificate is the client certificate pods
   * may ask for); unset: plain h2c.
   */
  constructor(private readonly perPod: number, private readonly maxMessageBytes: number, private readonly maxRequestsPerConnection = 0, readonly tls?: TlsFiles) {}

  /** TLS of a client of the pod at `address` (undefined with TLS off): it must prove the identity it proved before. */
  clientTls(address: string): ClientTls | undefined {
    const tls = this.tls;
    if (!tls) return undefined;
    // An address that proved nothing expects an identity no certificate carries: no connection.
    return { files: tls, identity: this.identities.get(address) ?? claimedPodIdentity({ pod: '' }) };
  }

  private get(address: string): Connections {
    let c = this.byAddress.get(address);
    if (!c) {
      const tls = this.clientTls(address);
      c = {
        h2: new H2Upstream(address, this.perPod, {
          ...upstreamOptions(this.maxRequestsPerConnection),
          ...(tls && { tls: { context: () => tls.files.context(), checkServerIdentity: expectIdentity(tls.identity!) } }),
        }),
        typed: inferenceClient(address, { maxMessageBytes: this.maxMessageBytes, tls }),
        tls,
      };
      this.byAddress.set(address, c);
    }
    return c;
  }

  /** The answer clients of `address`, made on first use with the TLS of its other connections. */
  private answers(address: string): AnswerClients {
    const c = this.get(address);
    return (c.answers ??= answerClients(address, c.tls));
  }

  /** Whether verify(`address`) would get a probe now (TLS off: nothing to probe). */
  admitsProbe(address: string): boolean {
    return !this.tls || this.tls.probes.admits(address);
  }

  /**
   * Connects to `pod`'s address and checks that its certificate (verified against the CA) carries
   * the identity its heartbeat claims (`pod.identity`); resolves to undefined when it does, else to
   * why not. Only with TLS on. The handshake waits its turn among the process's probes
   * (INFERMESH_IDENTITY_PROBE_*), and is refused when they are all taken (admitsProbe()).
   */
  async verify(pod: Pick<Pod, 'address' | 'identity'>): Promise<string | undefined> {
    if (!this.tls) return undefined;
    const expected = pod.identity;
    let peer: ProbedPeer;
    try {
      const probe = this.tls.probes.probe(pod.address);
      if (!probe) return `no identity probe: ${this.probesTaken()}`;
      peer = await probe;
    } catch (err) {
      return `no verified TLS connection: ${err instanceof Error ? err.message : String(err)}`;
    }
    const { ids, publicKey } = peer;
    if (!ids.includes(expected)) return `its certificate carries ${ids.join(', ') || 'no SPIFFE ID'}, not ${expected}`;
    if (this.identities.get(pod.address) !== expected) {
      // Connections made for another identity there would refuse this pod: start afresh.
      this.close(pod.address);
      this.identities.set(pod.address, expected);
    }
    if (publicKey) this.keys.set(pod.address, publicKey);
    return undefined;
  }

  /** The public key of the certificate `address` last proved its identity with (verify()); undefined: none. */
  keyOf(address: string): KeyObject | undefined {
    return this.keys.get(address);
  }

  /** How the process's identity probes are taken, for a refusal. */
  probesTaken(): string {
    const load = this.tls?.probes.load;
    return load ? `${load.running} in flight and ${load.waiting} waiting, the most allowed (INFERMESH_IDENTITY_PROBE_CONCURRENCY, INFERMESH_IDENTITY_PROBE_QUEUE)` : 'TLS is off';
  }

  /** The HTTP/2 connections to `address`, for ModelInfer's bytes. */
  h2(address: string): H2Upstream {
    return this.get(address).h2;
  }

  /** A typed client for `address`. */
  typed(address: string): InferenceClient {
    return this.get(address).typed;
  }

  /**
   * Whether the pod at `address` says it serves (grpc.health.v1 Check, over a connection that
   * demands the identity the address proved): `answer` is its status, or why none came within
   * `timeoutMs` (refused, closed, the deadline).
   */
  askServing(address: string, timeoutMs: number): Promise<ServingAnswer> {
    return servingAnswer(this.answers(address).health, timeoutMs);
  }

  /**
   * The versions the pod at `address` lists, in every state, with their reasons (RepositoryIndex,
   * over a connection that demands the identity the address proved); rejects when no answer came
   * within `timeoutMs`, or one no pod gives (larger than a heartbeat, or beyond its limits).
   */
  askVersions(address: string, timeoutMs: number): Promise<PodModel[]> {
    return versionsAnswer(this.answers(address).index, timeoutMs);
  }

  /** Closes the connections of a pod that left. */
  close(address: string): void {
    const c = this.byAddress.get(address);
    if (!c) return;
    this.byAddress.delete(address);
    this.identities.delete(address);
    this.keys.delete(address);
    c.h2.close();
    c.typed.close();
    c.answers?.health.close();
    c.answers?.index.close();
  }

  closeAll(): void {
    for (const a of [...this.byAddress.keys()]) this.close(a);
    this.identities.clear();
    this.keys.clear();
  }
}

/**
 * With TLS on, gives a pod traffic only once it proved the identity its heartbeat claims: checks
 * each pod that joins, and again every `retryMs` (INFERMESH_IDENTITY_RETRY_MS) while it has
 * not (a pod that was not listening yet); a pod whose certificate names someone else gets a warning, naming both (one per pod, and
 * of those at most one line per INFERMESH_REFUSED_CLAIM_LOG_INTERVAL_MS, `warnings`).
 */
export class PodIdentityCheck {
  private readonly checking = new Set<Pod>();
  private readonly tried = new WeakMap<Pod, number>();
  private readonly warned = new WeakSet<Pod>();
  /** Claims that a proven pod moved, by `name identity address`: when each was last checked, and whether it was warned about (as not proven, as refused). */
  private readonly moves = new Map<string, { tried: number; warned: boolean; refused: boolean; checking: boolean }>();

  constructor(
    private readonly conns: PodConnections,
    private readonly membership: Membership,
    private readonly log: Logger,
    private readonly retryMs: number,
    private readonly warnings = new ClaimWarnings(log, claimLimitsOf(conns.tls?.settings).refusedClaimLogIntervalMs),
  ) {}

  /**
   * Why a heartbeat of a pod not yet known, which would have to prove itself, is not taken now
   * (undefined: it is): every identity probe is taken (the membership's `admit`).
   */
  admit(hb: Heartbeat): string | undefined {
    if (this.conns.admitsProbe(hb.address)) return undefined;
    return `no identity probe: ${this.conns.probesTaken()}`;
  }

  /** Whether `pod`'s identity probe is running (the membership's `proving`: claims in its name wait for it). */
  proving(pod: Pod): boolean {
    return this.checking.has(pod);
  }

  /** Checks `pod` unless a check is running or ran less than retryMs ago, or no probe is free (the next sweep tries again). */
  check(pod: Pod): void {
    if (this.checking.has(pod) || Date.now() - (this.tried.get(pod) ?? 0) < this.retryMs) return;
    if (!this.conns.admitsProbe(pod.address)) {
      this.warnings.warn('pods wait to prove their names: every identity probe is taken', { pod: pod.id, address: pod.address, reason: this.conns.probesTaken() });
      return;
    }
    this.checking.add(pod);
    this.tried.set(pod, Date.now());
    void this.conns.verify(pod).then((why) => {
      this.checking.delete(pod);
      if (why === undefined) {
        this.membership.setVerified(pod, true);
        if (this.warned.has(pod)) this.log.info('pod proved its identity: it gets traffic', { pod: pod.id, identity: pod.identity, address: pod.address });
        return;
      }
      this.membership.proofFailed(pod);
      if (this.warned.has(pod)) return;
      // Marked warned only once its line was written: one kept back within the interval is tried again.
      if (this.warnings.warn('pod does not prove the name its heartbeat claims: no traffic', { pod: pod.id, identity: pod.identity, address: pod.address, reason: why })) this.warned.add(pod);
    });
  }

  /**
   * A heartbeat says `pod`, proven at its address, is now at `hb.address` or claims another
   * identity: it moves once that address proves that identity (checked at most every retryMs per
   * claim; one warning when it does not). `refused` (Membership's moveRefusal()): it cannot move,
   * and is not checked; one warning per claim.
   */
  checkMove(pod: Pod, hb: Heartbeat, refused?: string): void {
    const identity = claimedPodIdentity(hb);
    const key = `${hb.pod} ${identity} ${hb.address}`;
    let m = this.moves.get(key);
    if (refused === undefined && m && (m.checking || Date.now() - m.tried < this.retryMs)) return;
    // Claims come from heartbeats, which anyone able to publish one can invent: keep a bounded few.
    if (!m && this.moves.size >= 1024) this.moves.clear();
    if (!m) this.moves.set(key, (m = { tried: 0, warned: false, refused: false, checking: false }));
    const claim = m;
    if (refused !== undefined) {
      this.refuseMove(claim, pod, hb, identity, refused);
      return;
    }
    if (!this.conns.admitsProbe(hb.address)) {
      this.warnings.warn('pods wait to prove their names: every identity probe is taken', { pod: pod.id, address: hb.address, reason: this.conns.probesTaken() });
      return;
    }
    claim.tried = Date.now();
    claim.checking = true;
    void this.conns.verify({ address: hb.address, identity }).then((proof) => {
      claim.checking = false;
      // The address proving the identity shows only that a holder of that certificate answers there
      // (the pod itself, under another name of its address): the move is the pod's own word only
      // signed with that certificate's key. Else any holder of the pod NATS identity could move a
      // proven pod to an alias of its address, where it proves itself afresh and gets no traffic
      // meanwhile, and back at its next heartbeat.
      const key = this.conns.keyOf(hb.address);
      const why = proof ?? (key && signedBy(hb, key) ? undefined : 'the heartbeat is not signed with the key of the certificate there');
      if (why === undefined) {
        // Checked again by the membership: the address may have been taken meanwhile.
        const refusedNow = this.membership.move(hb);
        if (refusedNow !== undefined) {
          this.refuseMove(claim, pod, hb, identity, refusedNow);
          return;
        }
        // The claim is kept, with when it was checked: a forger holding the pod's certificate (one
        // shared by its peers) can make it again at once, and would move the pod back and forth
        // as fast as handshakes end; checked again after retryMs, as a claim that failed.
        claim.warned = false;
        claim.refused = false;
        this.log.info('pod proved its name at a new address: it moves there', { pod: pod.id, from: pod.address, address: hb.address, identity });
        return;
      }
      if (claim.warned) return;
      claim.warned = true;
      this.warnings.warn('a heartbeat moves a pod to an address that does not prove its name: ignored', { pod: pod.id, address: pod.address, claimed: hb.address, identity, reason: why });
    });
  }

  /** One warning per claim that the membership refuses to move a proven pod. */
  private refuseMove(claim: { refused: boolean }, pod: Pod, hb: Heartbeat, identity: string, why: string): void {
    if (claim.refused) return;
    claim.refused = true;
    this.warnings.warn('a heartbeat moves a proven pod where it cannot go: ignored', { pod: pod.id, address: pod.address, identity: pod.identity, claimed: hb.address, claimedIdentity: identity, reason: why });
  }

  /**
   * `pod`, proven, has a heartbeat in its name whose signature its known key refuses: its certificate
   * may have rotated. Its address proves its identity again (if a probe is free; the caller bounds
   * how often, lib/heartbeat-signatures.ts) and `learn` gets the key it proves with.
   */
  reprobe(pod: Pod, learn: (key: KeyObject) => void): void {
    if (!this.conns.admitsProbe(pod.address)) return;
    void this.conns.verify(pod).then((why) => {
      const key = this.conns.keyOf(pod.address);
      if (why === undefined && key && this.membership.holds(pod)) learn(key);
    });
  }

  /** Checks again the pods that have not proven their identity. */
  sweep(): void {
    for (const pod of this.membership.unverified()) this.check(pod);
  }
}
