// TLS material from PEM files (INFERMESH_TLS_*), read once at start-up and again whenever the files
// change: every hop a service has (its lib/h2 front door, its grpc-js servers and clients, NATS)
// takes its certificate, key and CA from one TlsFiles, so a rotation reaches them all. A changed set
// that is not valid (a key that does not match, a half-written file) is logged and the old one kept;
// new connections get the new certificate, connections already open keep theirs until they end.
// Service identities are SPIFFE IDs in a URI SAN: spiffe://infermesh/<kind>/<name>.
import net from 'node:net';
import tls from 'node:tls';
import { constants as cryptoConstants, X509Certificate, type KeyObject } from 'node:crypto';
import { MeshError, ErrorCode } from './errors';
import { readBounded, readBoundedSync } from './files';
import type { Config } from './config';
import type { Logger } from './log';
import { claimLimitsOf, ProbeQueue, type ClaimLimits } from './pod-claims';

/** The SPIFFE trust domain of every infermesh identity. */
export const TRUST_DOMAIN = 'infermesh';

/** Kinds of service that carry an identity (`nats`: the NATS server of a secured mesh). */
const SERVICE_KINDS = ['router', 'pod', 'registry', 'nats'] as const;
export type ServiceKind = (typeof SERVICE_KINDS)[number];

/** The identity of a service, as its certificate carries it: `spiffe://infermesh/<kind>/<name>`. */
export function spiffeId(kind: ServiceKind, name: string): string {
  return `spiffe://${TRUST_DOMAIN}/${kind}/${encodeURIComponent(name)}`;
}

/** The identity a pod named `name` (in its heartbeat) must prove with its certificate. */
export function podIdentity(name: string): string {
  return spiffeId('pod', name);
}

/**
 * Whether `name` may be a shared pod identity (INFERMESH_POD_IDENTITY, a heartbeat's `identity`):
 * one SPIFFE path segment, 1 to 253 letters, digits, `.`, `-` or `_`, and not `.` or `..`.
 */
export function isPodIdentityName(name: unknown): name is string {
  return typeof name === 'string' && /^[A-Za-z0-9._-]{1,253}$/.test(name) && name !== '.' && name !== '..';
}

/**
 * The identity a heartbeat claims, which the certificate at its address must carry before the pod
 * gets traffic, and on every connection after: spiffe://infermesh/pod/<its identity>, or
 * <its pod name> when it names none (pods that share one certificate name a shared identity).
 */
export function claimedPodIdentity(claim: { pod: string; identity?: string }): string {
  return podIdentity(claim.identity || claim.pod);
}

/** The SPIFFE IDs the first certificate of a PEM chain carries. */
export function certificateIdentities(pem: Buffer): string[] {
  return spiffeIdsOf({ subjectaltname: new X509Certificate(pem).subjectAltName });
}

/**
 * The URI SANs of a certificate (node's `subjectaltname` form: `DNS:a, URI:spiffe://…`, a value
 * with a comma or quote written as a JSON string), those under spiffe:// only.
 */
export function spiffeIdsOf(cert: { subjectaltname?: string } | undefined | null): string[] {
  const san = cert?.subjectaltname;
  if (!san) return [];
  const out: string[] = [];
  for (const m of san.matchAll(/(?:^|, )URI:("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    let value = m[1]!;
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        continue;
      }
    }
    if (value.startsWith('spiffe://')) out.push(value);
  }
  return out;
}

/** The SPIFFE IDs the peer of `socket` proved (empty on a plain socket or without a peer certificate). */
export function peerIdentities(socket: net.Socket): string[] {
  if (!(socket instanceof tls.TLSSocket) || !socket.authorized) return [];
  return spiffeIdsOf(socket.getPeerCertificate());
}

/** The kinds of service the SPIFFE IDs `ids` name (spiffe://infermesh/<kind>/<name>), each once. */
export function kindsOf(ids: readonly string[]): ServiceKind[] {
  return SERVICE_KINDS.filter((k) => ids.some((id) => id.startsWith(`spiffe://${TRUST_DOMAIN}/${k}/`)));
}

/** The kinds of service the peer of `socket` proved (peerIdentities; empty without a verified certificate). */
export function peerKinds(socket: net.Socket): ServiceKind[] {
  return kindsOf(peerIdentities(socket));
}

/**
 * An acceptPeer for a TLS server (lib/h2/server.ts): admits a client whose verified certificate
 * carries an identity of one of `kinds` (spiffe://infermesh/<kind>/…). Pods admit routers, the
 * registry and pods (what each may call there: services/inference/pod-callers.ts).
 */
export function peerOfKind(...kinds: ServiceKind[]): (socket: tls.TLSSocket) => boolean {
  return (socket) => peerKinds(socket).some((k) => kinds.includes(k));
}

/**
 * A checkServerIdentity for node:tls and grpc-js that accepts a server only when its certificate
 * (already verified against the CA) carries `expected` as a URI SAN: the address a pod announced
 * proves nothing, the name in its certificate does. Host names are not checked.
 */
export function expectIdentity(expected: string): (host: string, cert: tls.PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const ids = spiffeIdsOf(cert);
    return ids.includes(expected) ? undefined : new Error(`certificate identity ${ids.join(', ') || '(none)'} is not ${expected}`);
  };
}

/** The TLS versions a service may be held to at least (INFERMESH_TLS_MIN_VERSION); nothing older is offered. */
export const TLS_MIN_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;

/** The lowest TLS version by default (INFERMESH_TLS_MIN_VERSION): nginx's ssl_protocols and Envoy's servers' tls_minimum_protocol_version. */
export const DEFAULT_TLS_MIN_VERSION: (typeof TLS_MIN_VERSIONS)[number] = 'TLSv1.2';

/**
 * The TLS settings of a service, taken from Config; the claim limits default to
 * DEFAULT_CLAIM_LIMITS, the lowest TLS version to DEFAULT_TLS_MIN_VERSION.
 */
export type TlsSettings = Pick<Config, 'tlsCertFile' | 'tlsKeyFile' | 'tlsCaFile' | 'tlsClientAuth' | 'tlsReloadIntervalMs'> & Partial<Pick<Config, 'tlsMinVersion'>> & Partial<ClaimLimits>;

/** What a service's TLS contexts (servers and lib/h2 clients) and its NATS connections carry beside their material. */
export type Hardening = Pick<tls.SecureContextOptions, 'minVersion' | 'secureOptions'>;

/**
 * The protocol every TLS context of a service speaks, whatever Node's process-wide defaults (its
 * grpc-js clients excepted: grpc-js makes their contexts from the certificate, key and CA alone,
 * lib/grpc/client.ts channelCredentials):
 * - at least `minVersion` (INFERMESH_TLS_MIN_VERSION), pinned here rather than left to
 *   tls.DEFAULT_MIN_VERSION, which a flag (--tls-min-v1.0) or any module can lower;
 * - no TLS 1.2 renegotiation. Node lets a client renegotiate 3 times per 10 minutes per
 *   connection, each a full handshake's CPU on the server, and a renegotiation may present another
 *   certificate after the door judged the first: the pods' door decides once per connection
 *   (lib/h2/server.ts acceptPeer, callsOf), the registry reads the peer at each call. nginx refuses
 *   clients' renegotiations, and Envoy's servers do not allow them.
 */
export function hardening(settings: Partial<Pick<Config, 'tlsMinVersion'>>): Hardening {
  return { minVersion: settings.tlsMinVersion ?? DEFAULT_TLS_MIN_VERSION, secureOptions: cryptoConstants.SSL_OP_NO_RENEGOTIATION };
}

/** One set of TLS material, as read from the files. */
export interface TlsPem {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

/** grpc-js's certificate provider updates (its experimental CertificateProvider, matched by shape). */
type CaListener = (update: { caCertificate: Buffer } | null) => void;
type IdentityListener = (update: { certificate: Buffer; privateKey: Buffer } | null) => void;

/** Checks a set of PEM material: every part parses, the key matches the certificate. Throws why not. */
function validate(pem: TlsPem, hardened: Hardening): tls.SecureContext {
  const leaf = new X509Certificate(pem.cert);
  new X509Certificate(pem.ca);
  const context = tls.createSecureContext({ cert: pem.cert, key: pem.key, ca: pem.ca, ...hardened });
  if (Date.parse(leaf.validTo) < Date.now()) throw new Error(`certificate expired at ${leaf.validTo}`);
  return context;
}

/** Why a reload failed, without anything read from the files (a key's bytes never reach a log). */
function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code && e.syscall ? `${e.code} (${e.syscall})` : (e.message ?? String(err)).split('\n')[0]!.slice(0, 200);
}

/**
 * The largest PEM file read (a certificate chain, a key, or a CA bundle: Mozilla's whole root
 * store is about 220 KB), a structural bound of the format, not a tuning knob.
 */
const MAX_PEM_FILE_BYTES = 1024 * 1024;

/**
 * The TLS material of a service, from its PEM files, checked for change every `reloadIntervalMs`.
 * Implements grpc-js's CertificateProvider (lib/grpc/client.ts gives it to grpc-js's clients).
 */
export class TlsFiles {
  private pem: TlsPem;
  private secure: tls.SecureContext;
  private readonly listeners = new Set<() => void>();
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private readonly timer: NodeJS.Timeout;
  private checking: Promise<boolean> | undefined;
  private readonly hardened: Hardening;
  /**
   * The process's identity probes (probeIdentities with this material), bounded together
   * (INFERMESH_IDENTITY_PROBE_*): what routers and the registry prove heartbeats' claims with.
   */
  readonly probes: ProbeQueue<ProbedPeer>;

  /** Reads and checks the files now (throws naming the variable of a file that cannot be used), then watches them. */
  constructor(readonly settings: TlsSettings, private readonly log: Logger) {
    const read = (file: string, env: string): Buffer => {
      try {
        return readBoundedSync(file, MAX_PEM_FILE_BYTES);
      } catch (err) {
        throw new MeshError(ErrorCode.InvalidArgument, `${env}=${JSON.stringify(file)} cannot be read: ${reason(err)}`);
      }
    };
    this.pem = {
      cert: read(settings.tlsCertFile, 'INFERMESH_TLS_CERT_FILE'),
      key: read(settings.tlsKeyFile, 'INFERMESH_TLS_KEY_FILE'),
      ca: read(settings.tlsCaFile, 'INFERMESH_TLS_CA_FILE'),
    };
    this.hardened = hardening(settings);
    try {
      this.secure = validate(this.pem, this.hardened);
    } catch (err) {
      throw new MeshError(ErrorCode.InvalidArgument, `INFERMESH_TLS_CERT_FILE, INFERMESH_TLS_KEY_FILE and INFERMESH_TLS_CA_FILE do not make a usable set: ${reason(err)}`);
    }
    this.timer = setInterval(() => void this.check(), settings.tlsReloadIntervalMs);
    this.timer.unref();
    const limits = claimLimitsOf(settings);
    this.probes = new ProbeQueue((address) => probeIdentities(address, this, limits.identityProbeTimeoutMs), limits);
  }

  /** The material in force. */
  get current(): TlsPem {
    return this.pem;
  }

  /** A secure context of the material in force (certificate, key and CA, hardened), for connections made now. */
  context(): tls.SecureContext {
    return this.secure;
  }

  /**
   * The material in force as node:tls options, with the service's lowest TLS version and no
   * renegotiation: what every TLS server of the service (lib/h2/server.ts, lib/rest/http-server.ts,
   * lib/grpc/server.ts) is made with and given again at each reload (tls.Server#setSecureContext
   * keeps none of the options it is not given).
   */
  contextOptions(): tls.SecureContextOptions {
    return { cert: this.pem.cert, key: this.pem.key, ca: this.pem.ca, ...this.hardened };
  }

  /** Calls `fn` after each reload; returns the function that stops it. */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Reads the files once and takes them when they changed and are valid (resolves true); a changed
   * set that is not valid is logged (once per content) and the old one kept. Runs on the interval;
   * tests call it to not wait.
   */
  check(): Promise<boolean> {
    this.checking ??= this.reload().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private rejected: TlsPem | undefined;

  private async reload(): Promise<boolean> {
    let next: TlsPem;
    try {
      const [cert, key, ca] = await Promise.all([this.settings.tlsCertFile, this.settings.tlsKeyFile, this.settings.tlsCaFile].map((f) => readBounded(f, MAX_PEM_FILE_BYTES)));
      next = { cert: cert!, key: key!, ca: ca! };
    } catch (err) {
      this.log.warn('TLS files not reloaded: cannot read them, keeping the material in force', { reason: reason(err) });
      return false;
    }
    if (same(next, this.pem)) return false;
    if (this.rejected && same(next, this.rejected)) return false;
    let secure: tls.SecureContext;
    try {
      secure = validate(next, this.hardened);
    } catch (err) {
      this.rejected = next;
      this.log.warn('TLS files changed but are not a usable set (certificate, key and CA): keeping the material in force', { reason: reason(err) });
      return false;
    }
    this.pem = next;
    this.secure = secure;
    this.rejected = undefined;
    this.log.info('TLS material reloaded: new connections use it', { serialNumber: new X509Certificate(next.cert).serialNumber });
    for (const fn of this.listeners) fn();
    for (const l of this.caListeners) l({ caCertificate: next.ca });
    for (const l of this.identityListeners) l({ certificate: next.cert, privateKey: next.key });
    return true;
  }

  /** Stops watching the files. */
  close(): void {
    clearInterval(this.timer);
    this.listeners.clear();
  }

  // grpc-js CertificateProvider. Listeners hear the material in force on the next tick (grpc-js
  // registers its own watcher only after adding them), and again at each reload.
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    process.nextTick(() => this.caListeners.has(listener) && listener({ caCertificate: this.pem.ca }));
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    process.nextTick(() => this.identityListeners.has(listener) && listener({ certificate: this.pem.cert, privateKey: this.pem.key }));
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }
}

function same(a: TlsPem, b: TlsPem): boolean {
  return a.cert.equals(b.cert) && a.key.equals(b.key) && a.ca.equals(b.ca);
}

/**
 * The service's TLS material, or undefined when TLS is off (no certificate and no key, the
 * default). Throws at start-up, naming the variable, for half a setting (a certificate without its
 * key, TLS without a CA) or files that cannot be used.
 */
export function loadTls(settings: TlsSettings, log: Logger): TlsFiles | undefined {
  const { tlsCertFile: cert, tlsKeyFile: key, tlsCaFile: ca } = settings;
  if (!cert && !key) {
    if (settings.tlsClientAuth) throw new MeshError(ErrorCode.InvalidArgument, 'INFERMESH_TLS_CLIENT_AUTH=true needs INFERMESH_TLS_CERT_FILE and INFERMESH_TLS_KEY_FILE');
    return undefined;
  }
  if (!cert) throw new MeshError(ErrorCode.InvalidArgument, 'INFERMESH_TLS_KEY_FILE is set without INFERMESH_TLS_CERT_FILE');
  if (!key) throw new MeshError(ErrorCode.InvalidArgument, 'INFERMESH_TLS_CERT_FILE is set without INFERMESH_TLS_KEY_FILE');
  if (!ca) throw new MeshError(ErrorCode.InvalidArgument, 'INFERMESH_TLS_CA_FILE is required when TLS is on (it verifies the other services)');
  return new TlsFiles(settings, log);
}

/** What an identity probe saw of the server at an address: the SPIFFE IDs its certificate carries, and that certificate's public key. */
export interface ProbedPeer {
  ids: string[];
  /**
   * The key the pod signs its heartbeats with (lib/heartbeat-signatures.ts); probeIdentities always
   * gives it (absent: heartbeats in the name proven are not checked).
   */
  publicKey?: KeyObject;
}

/**
 * Connects to `address` (host:port) with the material in force, verifies its certificate against
 * the CA, and resolves to the SPIFFE IDs it carries and its public key; rejects when the handshake
 * fails or the server does not speak h2. Routers and the registry learn who serves an address a
 * heartbeat named through TlsFiles.probes, which bounds how many run at once.
 */
export function probeIdentities(address: string, files: TlsFiles, timeoutMs = 5_000): Promise<ProbedPeer> {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host,
      port: Number(address.slice(colon + 1)),
      secureContext: files.context(),
      ALPNProtocols: ['h2'],
      servername: net.isIP(host) ? undefined : host,
      // The identity is the caller's to judge; the chain is checked against the CA.
      checkServerIdentity: () => undefined,
    });
    const timer = setTimeout(() => socket.destroy(new Error(`no TLS handshake with ${address} within ${timeoutMs} ms`)), timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const ids = spiffeIdsOf(socket.getPeerCertificate());
      const publicKey = socket.getPeerX509Certificate()?.publicKey;
      const alpn = socket.alpnProtocol;
      socket.end();
      if (alpn !== 'h2') reject(new Error(`${address} does not speak h2 over TLS`));
      else resolve({ ids, ...(publicKey && { publicKey }) });
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * The tls option of a NATS connection: TLS when INFERMESH_NATS_URL names its servers `tls://…` (the
 * NATS convention; `nats://` stays plaintext, as the server may not offer TLS), verified against
 * INFERMESH_TLS_CA_FILE (the system's roots without one) and presenting the service's certificate
 * when it has one. The client reads the files again at each reconnect, and passes these options
 * on to tls.connect, so the connection keeps the service's lowest version and refuses
 * renegotiation as its other connections do (hardening). Undefined: plaintext.
 */
export function natsTlsOptions(settings: Pick<Config, 'natsUrl' | 'tlsCertFile' | 'tlsKeyFile' | 'tlsCaFile'> & Partial<Pick<Config, 'tlsMinVersion'>>): ({ certFile?: string; keyFile?: string; caFile?: string } & Hardening) | undefined {
  if (!settings.natsUrl.split(',').some((u) => /^\s*tls:\/\//i.test(u))) return undefined;
  return {
    ...(settings.tlsCertFile && settings.tlsKeyFile ? { certFile: settings.tlsCertFile, keyFile: settings.tlsKeyFile } : {}),
    ...(settings.tlsCaFile ? { caFile: settings.tlsCaFile } : {}),
    ...hardening(settings),
  };
}
