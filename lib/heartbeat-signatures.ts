// Signed heartbeats. With TLS on every pod holds the same pod NATS identity, so any of them can
// publish a heartbeat in another's name; what a proven pod's heartbeat would change of its versions
// or serving state is asked of the pod (lib/heartbeat-confirmation.ts), but its load figures, the
// memory budget placement counts it with, and its liveness (a heartbeat resets the TTL) cannot be
// asked. So a pod with TLS material signs every heartbeat with its certificate's private key
// (HeartbeatSigner: ECDSA, Ed25519 or RSA, as the key is), over a canonical encoding of the
// heartbeat that names a random id of the process (`boot`) and a sequence number that only grows
// (`seq`, at least the wall clock in ms, so a restarted process goes on above its predecessor);
// routers and the registry learn a proven pod's public key from the certificate its identity probe
// saw (lib/tls.ts probeIdentities), and take a heartbeat in its name only when its signature
// verifies against that key and its sequence is newer than the last they took
// (HeartbeatSignatures): a forged heartbeat, an unsigned one (an older pod's), and a replayed one
// (a dead pod's last) change nothing, not even the pod's silence. A signature that fails may be the
// pod's own after its certificate rotated (by the process whose boot id the view knows): the pod's
// address is probed again, at most once per INFERMESH_IDENTITY_RETRY_MS, through the process's
// bounded probes, and a new key it proves is learned; so may one naming another process (the pod
// restarted where it was with a renewed certificate: no new proof of its address would come), on
// an interval of its own. Checks cost a forger little of the view's time: the cheap ones first (signed at all,
// sequence newer), then at most INFERMESH_HEARTBEAT_VERIFIES_PER_SECOND signature checks per pod
// and second for heartbeats going on from the process the view knows, and as many for those
// naming another (a restart), so a forger who does not know a pod's boot id (pods cannot read
// heartbeats, lib/nats-permissions.ts) cannot spend the checks its own heartbeats need.
// Limits: pods that share one certificate (INFERMESH_POD_IDENTITY) share its key, and any of them
// can sign for the others; a view keeps what it took of a pod for as long as it keeps the pod.
// With TLS off nothing is signed or checked.
import { createPrivateKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Heartbeat } from './events';
import type { ClaimWarnings } from './pod-claims';

/** Begins every signed message: a signature over a heartbeat is one over nothing else. */
const DOMAIN = 'infermesh heartbeat signature 1\n';

/** A copy of `value`'s members, keys sorted; its prototype is null, so a `__proto__` member stays a member. */
function sortedMembers(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const o = value as Record<string, unknown>;
  const out = Object.create(null) as Record<string, unknown>;
  for (const k of Object.keys(o).sort()) out[k] = o[k];
  return out;
}

/**
 * The canonical encoding of a JSON value: object keys sorted (as a JavaScript object keeps them:
 * integer-like keys first, which no heartbeat has), undefined members left out, no white space;
 * what a signer and a verifier agree on whatever order a JSON encoder or decoder gave. Throws
 * RangeError on nesting deeper than the stack.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, sortedMembers) ?? 'null';
}

/** The bytes a heartbeat's signature is over: every field but the signature, boot id and sequence included. */
function signedBytes(hb: Heartbeat): Buffer {
  const { sig: _sig, ...body } = hb;
  return Buffer.from(DOMAIN + canonicalJson(body));
}

/** node:crypto's digest for `key`: none for Ed25519 and Ed448 (they hash as they sign), SHA-256 for ECDSA and RSA. */
function digestOf(key: KeyObject): string | null {
  return key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448' ? null : 'sha256';
}

/** Whether `hb` carries a signature by `key`'s private key over all else it says; false, never a throw, for anything malformed. */
export function signedBy(hb: Heartbeat, key: KeyObject): boolean {
  if (hb.sig === undefined || hb.boot === undefined || hb.seq === undefined) return false;
  try {
    return verify(digestOf(key), signedBytes(hb), key, Buffer.from(hb.sig, 'base64'));
  } catch {
    return false;
  }
}

/**
 * Signs a pod's heartbeats with the private key of its certificate, read from `keyPem` at each
 * heartbeat (the TLS material in force: after a reload, the new key signs).
 */
export class HeartbeatSigner {
  /** This process's id: heartbeats of another process of the pod name another. */
  readonly boot = randomBytes(16).toString('base64url');
  private seq = 0;
  private key: { pem: Buffer; key: KeyObject } | undefined;

  constructor(private readonly keyPem: () => Buffer, private readonly now: () => number = Date.now) {}

  /** `hb` with this process's boot id, the next sequence number, and its signature. */
  sign(hb: Heartbeat): Heartbeat {
    const pem = this.keyPem();
    if (!this.key || !this.key.pem.equals(pem)) this.key = { pem, key: createPrivateKey(pem) };
    const { sig: _sig, ...body } = hb;
    this.seq = Math.max(this.seq + 1, this.now());
    const signed: Heartbeat = { ...body, boot: this.boot, seq: this.seq };
    return { ...signed, sig: sign(digestOf(this.key.key), signedBytes(signed), this.key.key).toString('base64') };
  }
}

/** How a view checks signatures. */
export interface SignatureLimits {
  /**
   * Signature checks per pod per second, for heartbeats going on from the process the view knows,
   * and as many for those naming another (INFERMESH_HEARTBEAT_VERIFIES_PER_SECOND).
   */
  heartbeatVerifiesPerSecond: number;
  /** A pod whose signature failed is probed again (to learn a rotated key) at most this often (INFERMESH_IDENTITY_RETRY_MS). */
  identityRetryMs: number;
}

/** What a view knows of one proven pod's signing. */
interface Signing {
  key: KeyObject;
  /** The boot id and sequence of the last heartbeat taken (none yet: -1). */
  boot: string | undefined;
  seq: number;
  /** When the current second of checks began (performance.now()), and the checks spent in it on each kind. */
  windowAt: number;
  spentOnBoot: number;
  spentOnOther: number;
  /** When a failing signature last had the address probed again: one naming the process known, and one naming another. */
  reprobedAt: number;
  reprobedOtherAt: number;
}

/** Why a heartbeat in a proven pod's name is not taken: the warning, one line per kind per interval. */
const REFUSED = {
  unsigned: 'a heartbeat in a proven pod\'s name is not signed: it is not taken',
  replayed: 'a heartbeat in a proven pod\'s name is not newer than the last taken (a replay): it is not taken',
  budget: 'heartbeats in a proven pod\'s name come faster than their signatures are checked: those beyond are not taken',
  forged: 'a heartbeat in a proven pod\'s name does not verify against the key of the certificate it proved: it is not taken',
} as const;

/**
 * The signatures of proven pods' heartbeats, for a view that knows each pod as a `P`: the router's
 * membership (its Pod) and the registry's placement (the proof of an address). Refusals are a line
 * per kind per interval (`warnings`). `reprobe(pod)`: probe `pod`'s address again and learn() the
 * key it proves; called when a signature fails, at most once per identityRetryMs per pod.
 */
export class HeartbeatSignatures<P extends object> {
  private readonly pods = new WeakMap<P, Signing>();
  private readonly prefix: string;
  /** The monotonic clock the budget's seconds and the re-probes are judged on. */
  private readonly now: () => number;

  constructor(
    private readonly limits: SignatureLimits,
    private readonly warnings: ClaimWarnings,
    private readonly reprobe: (pod: P) => void,
    options: { prefix?: string; now?: () => number } = {},
  ) {
    this.prefix = options.prefix ?? '';
    this.now = options.now ?? (() => performance.now());
  }

  /**
   * `pod` proved its identity with a certificate carrying `key`: its heartbeats count only signed
   * with it. A new key (the certificate rotated) replaces the old; what was taken stays, so no
   * heartbeat older than the last taken counts again.
   */
  learn(pod: P, key: KeyObject): void {
    const known = this.pods.get(pod);
    if (known) {
      known.key = key;
      return;
    }
    this.pods.set(pod, { key, boot: undefined, seq: -1, windowAt: -Infinity, spentOnBoot: 0, spentOnOther: 0, reprobedAt: -Infinity, reprobedOtherAt: -Infinity });
  }

  /** Whether `pod`'s key is known. */
  knows(pod: P): boolean {
    return this.pods.has(pod);
  }

  /**
   * Whether `hb`, in `pod`'s name, counts: always when no key of the pod is known; else only signed
   * with that key, newer than the last that counted, and within the checks' budget.
   */
  admits(pod: P, hb: Heartbeat): boolean {
    const s = this.pods.get(pod);
    if (!s) return true;
    if (hb.sig === undefined || hb.boot === undefined || hb.seq === undefined) return this.refuse('unsigned', hb);
    if (hb.seq <= s.seq) return this.refuse('replayed', hb, { seq: hb.seq, last: s.seq });
    const now = this.now();
    if (now - s.windowAt >= 1_000) {
      s.windowAt = now;
      s.spentOnBoot = 0;
      s.spentOnOther = 0;
    }
    // A forger who does not know the pod's boot id spends only the checks of heartbeats naming another.
    const sameBoot = hb.boot === s.boot;
    if ((sameBoot ? s.spentOnBoot : s.spentOnOther) >= this.limits.heartbeatVerifiesPerSecond) return this.refuse('budget', hb);
    if (sameBoot) s.spentOnBoot++;
    else s.spentOnOther++;
    if (!signedBy(hb, s.key)) {
      // The pod's own, signed with a rotated key, or a forger's: the address says which. A process
      // keeps its boot id through a rotation, and one that restarts where it was may come back with
      // a renewed certificate; each asks on an interval of its own, so a forger who does not know
      // the boot id the view knows cannot spend the probes that learn a running process's new key.
      if (sameBoot || s.boot === undefined) {
        if (now - s.reprobedAt >= this.limits.identityRetryMs) {
          s.reprobedAt = now;
          this.reprobe(pod);
        }
      } else if (now - s.reprobedOtherAt >= this.limits.identityRetryMs) {
        s.reprobedOtherAt = now;
        this.reprobe(pod);
      }
      return this.refuse('forged', hb);
    }
    s.boot = hb.boot;
    s.seq = hb.seq;
    return true;
  }

  private refuse(kind: keyof typeof REFUSED, hb: Heartbeat, fields: Record<string, unknown> = {}): false {
    this.warnings.warn(`${this.prefix}${REFUSED[kind]}`, { pod: hb.pod, address: hb.address, state: hb.state, ...fields });
    return false;
  }
}
