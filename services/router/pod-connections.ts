// The router's connections to each pod: a few bare HTTP/2 connections for ModelInfer's bytes (one
// connection caps large-message throughput), and one typed grpc-js client for every other call.
// With TLS on, every connection to a pod checks that its certificate carries the identity the
// pod's heartbeat claims (claimedPodIdentity: spiffe://infermesh/pod/<its name, or the identity
// pods sharing a certificate claim>), and a heartbeat is believed only once a handshake with its
// address proved that identity (PodIdentityCheck).
import { inferenceClient, type ClientTls } from '../../lib/grpc/client';
import { H2Upstream, type H2UpstreamOptions } from '../../lib/h2/upstream';
import type { InferenceClient } from '../../lib/grpc/types';
import type { Logger } from '../../lib/log';
import { claimedPodIdentity, expectIdentity, probeIdentities, type TlsFiles } from '../../lib/tls';
import type { Heartbeat } from '../../lib/events';
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
}

export class PodConnections {
  private readonly byAddress = new Map<string, Connections>();
  /** With TLS: the identity each address proved (connections there expect it). */
  private readonly identities = new Map<string, string>();

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
      };
      this.byAddress.set(address, c);
    }
    return c;
  }

  /**
   * Connects to `pod`'s address and checks that its certificate (verified against the CA) carries
   * the identity its heartbeat claims (`pod.identity`); resolves to undefined when it does, else to
   * why not. Only with TLS on.
   */
  async verify(pod: Pick<Pod, 'address' | 'identity'>): Promise<string | undefined> {
    if (!this.tls) return undefined;
    const expected = pod.identity;
    let ids: string[];
    try {
      ids = await probeIdentities(pod.address, this.tls);
    } catch (err) {
      return `no verified TLS connection: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (!ids.includes(expected)) return `its certificate carries ${ids.join(', ') || 'no SPIFFE ID'}, not ${expected}`;
    if (this.identities.get(pod.address) !== expected) {
      // Connections made for another identity there would refuse this pod: start afresh.
      this.close(pod.address);
      this.identities.set(pod.address, expected);
    }
    return undefined;
  }

  /** The HTTP/2 connections to `address`, for ModelInfer's bytes. */
  h2(address: string): H2Upstream {
    return this.get(address).h2;
  }

  /** A typed client for `address`. */
  typed(address: string): InferenceClient {
    return this.get(address).typed;
  }

  /** Closes the connections of a pod that left. */
  close(address: string): void {
    const c = this.byAddress.get(address);
    if (!c) return;
    this.byAddress.delete(address);
    this.identities.delete(address);
    c.h2.close();
    c.typed.close();
  }

  closeAll(): void {
    for (const a of [...this.byAddress.keys()]) this.close(a);
    this.identities.clear();
  }
}

/**
 * With TLS on, gives a pod traffic only once it proved the identity its heartbeat claims: checks
 * each pod that joins, and again every `retryMs` while it has not (a pod that was not listening
 * yet); a pod whose certificate names someone else gets one warning, naming both.
 */
export class PodIdentityCheck {
  private readonly checking = new Set<Pod>();
  private readonly tried = new WeakMap<Pod, number>();
  private readonly warned = new WeakSet<Pod>();
  /** Claims that a proven pod moved, by `name identity address`: when each was last checked, and whether it was warned about (as not proven, as refused). */
  private readonly moves = new Map<string, { tried: number; warned: boolean; refused: boolean; checking: boolean }>();

  constructor(private readonly conns: PodConnections, private readonly membership: Membership, private readonly log: Logger, private readonly retryMs = 5_000) {}

  /** Checks `pod` unless a check is running or ran less than retryMs ago. */
  check(pod: Pod): void {
    if (this.checking.has(pod) || Date.now() - (this.tried.get(pod) ?? 0) < this.retryMs) return;
    this.checking.add(pod);
    this.tried.set(pod, Date.now());
    void this.conns.verify(pod).then((why) => {
      this.checking.delete(pod);
      if (why === undefined) {
        this.membership.setVerified(pod, true);
        if (this.warned.has(pod)) this.log.info('pod proved its identity: it gets traffic', { pod: pod.id, identity: pod.identity, address: pod.address });
        return;
      }
      if (this.warned.has(pod)) return;
      this.warned.add(pod);
      this.log.warn('pod does not prove the name its heartbeat claims: no traffic', { pod: pod.id, identity: pod.identity, address: pod.address, reason: why });
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
    claim.tried = Date.now();
    claim.checking = true;
    void this.conns.verify({ address: hb.address, identity }).then((why) => {
      claim.checking = false;
      if (why === undefined) {
        // Checked again by the membership: the address may have been taken meanwhile.
        const refusedNow = this.membership.move(hb);
        if (refusedNow !== undefined) {
          this.refuseMove(claim, pod, hb, identity, refusedNow);
          return;
        }
        this.moves.delete(key);
        this.log.info('pod proved its name at a new address: it moves there', { pod: pod.id, from: pod.address, address: hb.address, identity });
        return;
      }
      if (claim.warned) return;
      claim.warned = true;
      this.log.warn('a heartbeat moves a pod to an address that does not prove its name: ignored', { pod: pod.id, address: pod.address, claimed: hb.address, identity, reason: why });
    });
  }

  /** One warning per claim that the membership refuses to move a proven pod. */
  private refuseMove(claim: { refused: boolean }, pod: Pod, hb: Heartbeat, identity: string, why: string): void {
    if (claim.refused) return;
    claim.refused = true;
    this.log.warn('a heartbeat moves a proven pod where it cannot go: ignored', { pod: pod.id, address: pod.address, identity: pod.identity, claimed: hb.address, claimedIdentity: identity, reason: why });
  }

  /** Checks again the pods that have not proven their identity. */
  sweep(): void {
    for (const pod of this.membership.unverified()) this.check(pod);
  }
}
