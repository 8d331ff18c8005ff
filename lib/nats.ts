// The one way a service connects to NATS, and the JetStream resources infermesh uses.
import { connect, headers, Empty, nkeyAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, StorageType, type Consumer, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Bucket, Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { Config } from './config';
import type { Logger } from './log';
import { readBoundedSync } from './files';
import { natsTlsOptions } from './tls';

function withTls(tls: ReturnType<typeof natsTlsOptions>): { tls?: NonNullable<ReturnType<typeof natsTlsOptions>> } {
  return tls ? { tls } : {};
}

export type { NatsConnection, JetStreamClient, JetStreamManager, KV, ObjectStore };

/** Names of the JetStream resources (one place, documented in docs/ARCHITECTURE.md). */
export const resources = {
  /** KV bucket with model and version records. */
  metadataBucket: 'infermesh_registry',
  /** Object store with artifacts, keyed by hex sha256. */
  artifactBucket: 'infermesh_artifacts',
  /** Stream of registry events (subjects infermesh.events.>). */
  eventStream: 'INFERMESH_EVENTS',
} as const;

const TOKEN_SAFE = /^[A-Za-z0-9_-]$/;
const TOKEN = /^(?:[A-Za-z0-9_-]|=[0-9A-F]{2})+$/;

/**
 * A name (a model's) as one NATS subject token and KV key token: letters, digits, '_' and '-' stay
 * as they are (so the lower-case names of old records keep their keys and subjects); every other
 * UTF-8 byte becomes '=' and two upper-case hex digits ('.' → '=2E', '=' → '=3D'). Injective over
 * all strings (each token decodes one way), so two names never share a key or subject; the empty
 * string, which no name is, becomes '=' so that every string has a valid token.
 */
export function nameToken(name: string): string {
  if (name === '') return '=';
  let out = '';
  for (const ch of name) {
    if (TOKEN_SAFE.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += '=' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** The name `nameToken` encoded as `token`; undefined for a token it never produces. */
export function nameOfToken(token: string): string | undefined {
  if (token === '=') return '';
  if (!TOKEN.test(token)) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < token.length;) {
    if (token[i] === '=') {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      bytes.push(token.charCodeAt(i));
      i++;
    }
  }
  const name = new TextDecoder('utf-8', { fatal: false }).decode(Uint8Array.from(bytes));
  // Only the canonical encoding of a name decodes (not '=61' for 'a', nor bytes that are not UTF-8).
  return nameToken(name) === token ? name : undefined;
}

/** The settings of a NATS connection, taken from Config. */
export type NatsSettings = Pick<Config, 'natsUrl' | 'natsUser' | 'natsPassword' | 'natsToken'> & Partial<Pick<Config, 'natsNkeySeedFile'>>;

/** Options of connectNats(). */
export interface NatsConnectOptions {
  /**
   * Prefix of the connection's reply subjects (default `_INBOX`). Each service kind has its own
   * (lib/nats-permissions.ts inboxPrefixOf), the only inbox its NATS identity may subscribe to.
   */
  inboxPrefix?: string;
}

/** The largest nkey seed file read (a structural bound of the file format, not a tuning knob). */
const MAX_SEED_FILE_BYTES = 4096;

/**
 * The nkey seed in `file` (an `SU...` line, as nk and the local mesh write it). Read at every
 * (re)connect, so a seed replaced on disk is used from the next connection on. The seed is never
 * put in an error.
 */
function nkeySeedOf(file: string): () => Uint8Array {
  return () => {
    let text: string;
    try {
      // A seed file is one 58-character line (nk also writes a comment): anything far larger is
      // not one, and is not read into memory.
      text = readBoundedSync(file, MAX_SEED_FILE_BYTES).toString('utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new Error(`INFERMESH_NATS_NKEY_SEED_FILE ${code ? `${file} cannot be read: ${code}` : (err as Error).message}`);
    }
    const seed = text.split(/\s+/).find((w) => /^SU[A-Z2-7]{50,}$/.test(w));
    if (!seed) throw new Error(`INFERMESH_NATS_NKEY_SEED_FILE ${file} holds no user nkey seed (SU...)`);
    return new TextEncoder().encode(seed);
  };
}

/** The TLS files of a NATS connection (INFERMESH_TLS_*; lib/tls.ts natsTlsOptions), used when INFERMESH_NATS_URL says tls://. */
export type NatsTlsSettings = Partial<Pick<Config, 'tlsCertFile' | 'tlsKeyFile' | 'tlsCaFile' | 'tlsMinVersion'>>;

/**
 * Connects to NATS with infinite reconnects (a service keeps serving what it knows while NATS is
 * away), logging disconnects and reconnects. `name` shows in the server's connection list. With
 * `natsNkeySeedFile` set, the connection proves the identity of that nkey.
 */
export async function connectNats(settings: NatsSettings & NatsTlsSettings, name: string, log: Logger, opts: NatsConnectOptions = {}): Promise<NatsConnection> {
  const seedFile = settings.natsNkeySeedFile || '';
  const nkeySeed = seedFile ? nkeySeedOf(seedFile) : undefined;
  if (nkeySeed) nkeySeed(); // a missing or bad file stops the start here, naming the setting
  const nc = await connect({
    servers: settings.natsUrl.split(',').map((s) => s.trim()).filter(Boolean),
    name,
    user: settings.natsUser || undefined,
    pass: settings.natsPassword || undefined,
    token: settings.natsToken || undefined,
    // tls://: the same files as the service's gRPC ports (lib/tls.ts), read again at each reconnect.
    ...withTls(natsTlsOptions({ natsUrl: settings.natsUrl, tlsCertFile: settings.tlsCertFile ?? '', tlsKeyFile: settings.tlsKeyFile ?? '', tlsCaFile: settings.tlsCaFile ?? '', ...(settings.tlsMinVersion && { tlsMinVersion: settings.tlsMinVersion }) })),
    ...(nkeySeed ? { authenticator: nkeyAuthenticator(nkeySeed) } : {}),
    ...(opts.inboxPrefix ? { inboxPrefix: opts.inboxPrefix } : {}),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    pingInterval: 10_000,
    waitOnFirstConnect: true,
  });
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') log.warn('nats disconnected', { server: s.server });
      else if (s.type === 'reconnect') log.info('nats reconnected', { server: s.server });
    }
  })().catch(() => undefined);
  return nc;
}

/** The settings of a NatsLiveness, taken from Config (resolved there from INFERMESH_POD_TTL_MS when 0). */
export type NatsProbeSettings = Pick<Config, 'natsProbeIntervalMs' | 'natsProbeTimeoutMs'>;

/** A round trip of a NatsLiveness answered: its number, in the order they were sent, and when it was sent (epoch ms). */
export interface AnsweredRoundTrip {
  seq: number;
  sentAtMs: number;
}

/**
 * Whether messages can reach this process through NATS now: what lets routers and the registry tell
 * pods that went quiet from a NATS that did. A connection's own signals come late: nats.js reports a
 * server that hangs (stopped, partitioned without a reset) only after two missed pings, 20 to 30 s
 * here, well past the pods' TTL, by when every pod would have been forgotten. So a round trip (a
 * PING the server must answer) goes every INFERMESH_NATS_PROBE_INTERVAL_MS: one not answered within
 * INFERMESH_NATS_PROBE_TIMEOUT_MS, or that fails, makes NATS unavailable, as a disconnect or a stale
 * connection does, until a round trip is answered or the connection is back. It starts available;
 * `changed` hears each change after. One probe is in flight at a time, the connection's only one:
 * what else needs round trips (the Authenticator proving its watch current) listens to these.
 */
export class NatsLiveness {
  /** False from a disconnect (or a stale connection) until the reconnect. */
  private connected = true;
  /** False from a probe that was late or failed until one is answered. */
  private answering = true;
  private probing = false;
  /** Counts status changes: a probe that fails across one tells nothing about the new connection. */
  private epoch = 0;
  private timer: NodeJS.Timeout | undefined;
  private status: (AsyncIterable<{ type: string }> & { stop?(): void }) | undefined;
  private stopped = false;
  /** Round trips sent so far (the next one's seq). */
  private sentCount = 0;
  /** A round trip was asked for while one was in flight: the next goes as that one ends. */
  private again = false;
  private readonly answered = new Set<(trip: AnsweredRoundTrip) => void>();

  constructor(
    private readonly nc: Pick<NatsConnection, 'status' | 'flush' | 'isClosed'>,
    private readonly settings: NatsProbeSettings,
    private readonly log: Logger,
    private readonly changed: (available: boolean) => void,
  ) {}

  /** Whether NATS answers and is connected now. */
  get available(): boolean {
    return this.connected && this.answering;
  }

  /** Round trips sent so far: one answered with a seq at least this was sent after now. */
  get sent(): number {
    return this.sentCount;
  }

  /**
   * Calls `listener` with each round trip answered on the connection it was sent on (no
   * disconnect, stale connection or reconnect between); returns how to stop.
   */
  onAnswered(listener: (trip: AnsweredRoundTrip) => void): () => void {
    this.answered.add(listener);
    return () => this.answered.delete(listener);
  }

  /** A round trip now, or as soon as the one in flight ends, for a caller that needs one sent from here on. */
  probeSoon(): void {
    if (this.probing) this.again = true;
    else this.probe();
  }

  /** Follows the connection's status and probes it every interval; returns at once. */
  start(): this {
    if (this.timer || this.stopped) return this;
    this.timer = setInterval(() => this.probe(), this.settings.natsProbeIntervalMs);
    this.timer.unref();
    const status = this.nc.status();
    this.status = status;
    void (async () => {
      for await (const s of status) {
        if (this.stopped) return;
        if (s.type === 'disconnect' || s.type === 'staleConnection') {
          this.epoch++;
          this.set(false, this.answering);
        } else if (s.type === 'reconnect') {
          // A reconnect is a round trip answered (the server's INFO, the client's CONNECT and PING).
          this.epoch++;
          this.set(true, true);
        }
      }
    })().catch(() => undefined);
    return this;
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.status?.stop?.();
  }

  private probe(): void {
    if (this.probing || !this.connected || this.stopped || this.nc.isClosed()) return;
    this.probing = true;
    this.again = false;
    const epoch = this.epoch;
    const trip = { seq: this.sentCount++, sentAtMs: Date.now() };
    let settled = false;
    // Judged after the loop has read its sockets (an immediate follows the poll phase): after a
    // stall of this process's own loop, timers run first, and an answer already queued is no lateness.
    const late = setTimeout(() => setImmediate(() => {
      if (settled || this.stopped || epoch !== this.epoch) return;
      if (this.answering) this.log.warn('nats does not answer: pods\' silences are not held against them until it does', { timeoutMs: this.settings.natsProbeTimeoutMs });
      this.set(this.connected, false);
    }), this.settings.natsProbeTimeoutMs);
    late.unref();
    const settle = (answered: boolean) => {
      settled = true;
      clearTimeout(late);
      this.probing = false;
      if (this.stopped) return;
      if (epoch === this.epoch) {
        if (answered && !this.answering) this.log.info('nats answers again: pods are asked to speak up');
        this.set(this.connected, answered);
        if (answered) for (const l of this.answered) l(trip);
      }
      if (this.again) this.probe();
    };
    this.nc.flush().then(() => settle(true), () => settle(false));
  }

  private set(connected: boolean, answering: boolean): void {
    const before = this.available;
    this.connected = connected;
    this.answering = answering;
    if (this.available !== before) this.changed(this.available);
  }
}

/** The JetStream client and manager of a connection. */
export function jetStreamOf(nc: NatsConnection): { js: JetStreamClient; jsm: Promise<JetStreamManager> } {
  return { js: jetstream(nc), jsm: jetstreamManager(nc) };
}

/** Opens (creating when missing) the registry's KV bucket, file-backed, keeping every revision's latest. */
export function metadataBucket(nc: NatsConnection, replicas: number): Promise<KV> {
  return new Kvm(nc).create(resources.metadataBucket, { replicas, history: 1, storage: StorageType.File });
}

/**
 * The keys of `kv` matching `filter` (NATS subject wildcards), read in one request from the bucket's
 * stream (its subjects, paged by the client): a key deleted or purged may be listed, and reads as
 * missing. Not the client's `kv.keys()`: that one follows a consumer until the server says nothing
 * is pending or the consumer idles for 5 s, and with nats-server 2.9 a key rewritten every few
 * milliseconds while it lists (a rollout's record does, each window) keeps it from ending at all.
 */
export async function kvKeys(kv: KV, filter = '>'): Promise<string[]> {
  if (!(kv instanceof Bucket)) throw new Error('kvKeys: not a JetStream KV bucket');
  const prefix = kv.subjectForKey('');
  const info = await kv.jsm.streams.info(kv.stream, { subjects_filter: kv.subjectForKey(kv.encodeKey(filter)) });
  return Object.keys(info.state.subjects ?? {}).map((s) => kv.decodeKey(s.slice(prefix.length)));
}

/**
 * Deletes `key` of `kv` only while nothing was ever written to it (no value, no delete marker),
 * leaving a delete marker: nats.js's own delete sends no expected revision when it is 0, so this
 * publishes the marker with one. A later compare-and-set expecting revision 0 (`put` with
 * `previousSeq: 0`, not `create`, which writes over a delete marker) then fails: the key is fenced.
 * Rejects with nats.js's "wrong last sequence" when the key was written first.
 */
export async function kvDeleteIfNeverWritten(kv: KV, key: string): Promise<void> {
  if (!(kv instanceof Bucket)) throw new Error('kvDeleteIfNeverWritten: not a JetStream KV bucket');
  const h = headers();
  h.set('KV-Operation', 'DEL');
  h.set('Nats-Expected-Last-Subject-Sequence', '0');
  await kv.js.publish(kv.subjectForKey(kv.encodeKey(key), true), Empty, { headers: h });
}

/** Opens (creating when missing) the artifact object store, file-backed. */
export function artifactStore(nc: NatsConnection, replicas: number): Promise<ObjectStore> {
  return new Objm(nc).create(resources.artifactBucket, { replicas, storage: StorageType.File });
}

/**
 * How long deleteConsumer waits for the server's answer: a NATS that does not answer (an outage)
 * must not hold up whatever is ending; the server then drops the consumer after its inactive threshold.
 */
const CONSUMER_DELETE_TIMEOUT_MS = 2_000;

/**
 * Deletes an ordered consumer on the server once its reader is done with it (an event follower, an
 * artifact read), so it does not wait out the client's 5-minute inactive threshold: reads opened
 * and ended in a loop would otherwise fill the stream's consumer table. Best effort: an identity
 * that may not delete consumers (pods and routers on the event stream, lib/nats-permissions.ts), a
 * consumer already gone or a NATS away leave it to that threshold.
 */
export async function deleteConsumer(consumer: Consumer): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, CONSUMER_DELETE_TIMEOUT_MS);
    timer.unref();
  });
  await Promise.race([consumer.delete().then(() => undefined, () => undefined), timeout]);
  clearTimeout(timer);
}
