// The limits and timeouts of a front door on lib/h2: what a hardened HTTP/2 peer refuses, with the
// nginx, Envoy, nghttp2 or grpc-go default each follows. These are the defaults of lib/h2 itself;
// lib/config.ts makes each an INFERMESH_H2_* setting (its table takes its defaults from here), and
// docs/security.md says what attack each one stops.

import type { Config } from '../config';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Limits of the server side of a connection (a front door), and of the door's memory. */
export interface H2Limits {
  /** Streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxConcurrentStreams: number;
  /** The stream window this side advertises (SETTINGS_INITIAL_WINDOW_SIZE). */
  streamWindowBytes: number;
  /** The connection window this side opens. */
  connectionWindowBytes: number;
  /** Largest decoded header list (names, values and 32 octets per field, as RFC 9113 §6.5.2 counts). */
  maxHeaderListBytes: number;
  /** Largest field block as sent: every HEADERS and CONTINUATION payload octet, padding included. */
  maxHeaderBlockBytes: number;
  /** CONTINUATION frames one field block may take. */
  maxContinuationFrames: number;
  /** Entries one SETTINGS frame may carry. */
  maxSettingsEntries: number;
  /** SETTINGS frames a second, and the burst allowed above that rate. */
  settingsPerSecond: number;
  settingsBurst: number;
  /** RST_STREAM frames from the client a second, and the burst allowed above that rate. */
  resetsPerSecond: number;
  resetBurst: number;
  /** Frames in a row with an empty payload and no END_STREAM/END_HEADERS (DATA, HEADERS, CONTINUATION). */
  maxConsecutiveEmptyFrames: number;
  /** Output the client has not read (the socket's queue) past which the door stops reading from it and writing DATA to it. */
  maxOutputBytes: number;
  /** Request bytes one connection may hold: messages read whole and data not yet passed on. */
  maxRequestBytesPerConnection: number;
  /** Request bytes the whole door may hold. */
  maxRequestBytes: number;
  /** Answer bytes waiting for one client to read them. */
  maxResponseBytesPerConnection: number;
  /** Answer bytes waiting for clients, in the whole door. */
  maxResponseBytes: number;
  /** The client's preface and first SETTINGS must arrive within this (ms). */
  prefaceTimeoutMs: number;
  /** The client must acknowledge the door's SETTINGS within this (ms). */
  settingsAckTimeoutMs: number;
  /** A field block, once begun, must be complete within this (ms). */
  headersTimeoutMs: number;
  /** A connection without a stream for this long is closed (GOAWAY NO_ERROR), PINGs or not (ms; 0: never). */
  idleTimeoutMs: number;
  /** A stream with no frame either way for this long is reset (ms; 0: never). */
  streamIdleTimeoutMs: number;
  /**
   * A graceful close (idle, connection age, drain) says GOAWAY with the highest stream id and a
   * PING first, taking the streams that crossed it, and names the last stream once the PING is
   * answered or after this long (ms; 0: at once, refusing those streams).
   */
  goawayNoticeTimeoutMs: number;
  /** Client PINGs closer together than this are strikes, unless the door sent data or headers in between (ms). */
  keepaliveMinIntervalMs: number;
  /** Whether a client may ping at that interval while it has no stream open. */
  keepalivePermitWithoutStream: boolean;
  /** Strikes allowed; one more is GOAWAY ENHANCE_YOUR_CALM "too_many_pings". */
  maxPingStrikes: number;
}

/** The defaults, each next to the peer it follows (docs/security.md has the why of each). */
export const DEFAULT_H2_LIMITS: Readonly<H2Limits> = Object.freeze({
  // nginx http2_max_concurrent_streams 128 (Envoy's edge recommendation: 100).
  maxConcurrentStreams: 128,
  // Our own: a stream of 1 MiB keeps a large upload at full speed on a cluster's round trips.
  streamWindowBytes: 1 * MiB,
  // Four stream windows (Envoy's edge recommendation is 1 MiB).
  connectionWindowBytes: 4 * MiB,
  // gRPC C-core's hard metadata limit (GRPC_ARG_ABSOLUTE_MAX_METADATA_SIZE) is 16 KiB; nginx takes 4 × 8 KiB, Envoy 60 KiB.
  maxHeaderListBytes: 16 * KiB,
  // The decoded limit with room for padding and the representations' own octets.
  maxHeaderBlockBytes: 20 * KiB,
  // nghttp2 1.61's max_continuations (8), its answer to CVE-2024-27316.
  maxContinuationFrames: 8,
  // nghttp2's max_settings and node:http2's maxSettings (32).
  maxSettingsEntries: 32,
  // No peer limits the rate of SETTINGS (nghttp2 and Envoy bound the ACKs queued, at 1,000); a
  // client sends a few per connection.
  settingsPerSecond: 10,
  settingsBurst: 100,
  // nghttp2 1.57's stream reset rate limit, its answer to Rapid Reset (CVE-2023-44487): 1,000, then 33 a second.
  resetsPerSecond: 33,
  resetBurst: 1_000,
  // Envoy's max_consecutive_inbound_frames_with_empty_payload (1).
  maxConsecutiveEmptyFrames: 1,
  // Envoy's per_connection_buffer_limit_bytes (1 MiB).
  maxOutputBytes: 1 * MiB,
  // One message of INFERMESH_MAX_MESSAGE_BYTES (64 MiB) per connection; four at once in the door.
  maxRequestBytesPerConnection: 64 * MiB,
  maxRequestBytes: 256 * MiB,
  // A client that does not read holds 16 MiB of answers (beyond it, more answers are refused); one
  // answer of any size is always taken by a connection that holds none.
  maxResponseBytesPerConnection: 16 * MiB,
  maxResponseBytes: 256 * MiB,
  // Go's x/net/http2 server: prefaceTimeout (10 s).
  prefaceTimeoutMs: 10_000,
  settingsAckTimeoutMs: 10_000,
  headersTimeoutMs: 10_000,
  // nginx keepalive_timeout (75 s); Envoy's idle_timeout is 1 h.
  idleTimeoutMs: 75_000,
  // Envoy's stream_idle_timeout (5 min).
  streamIdleTimeoutMs: 300_000,
  // grpc-go's server waits a minute for the PING after its first GOAWAY (http2_server.go).
  goawayNoticeTimeoutMs: 60_000,
  // grpc-go's keepalive.EnforcementPolicy: MinTime 5 min, PermitWithoutStream false, 2 strikes.
  keepaliveMinIntervalMs: 300_000,
  keepalivePermitWithoutStream: false,
  maxPingStrikes: 2,
});

/** The limits a door runs with: `overrides` over the defaults. */
export function h2Limits(overrides: Partial<H2Limits> = {}): H2Limits {
  return { ...DEFAULT_H2_LIMITS, ...overrides };
}

/** A door's limits from the configuration (the INFERMESH_H2_* settings). */
export function h2LimitsOf(config: Config): H2Limits {
  return {
    maxConcurrentStreams: config.h2MaxConcurrentStreams,
    streamWindowBytes: config.h2StreamWindowBytes,
    connectionWindowBytes: config.h2ConnectionWindowBytes,
    maxHeaderListBytes: config.h2MaxHeaderListBytes,
    maxHeaderBlockBytes: config.h2MaxHeaderBlockBytes,
    maxContinuationFrames: config.h2MaxContinuationFrames,
    maxSettingsEntries: config.h2MaxSettingsEntries,
    settingsPerSecond: config.h2SettingsPerSecond,
    settingsBurst: config.h2SettingsBurst,
    resetsPerSecond: config.h2ResetsPerSecond,
    resetBurst: config.h2ResetBurst,
    maxConsecutiveEmptyFrames: config.h2MaxConsecutiveEmptyFrames,
    maxOutputBytes: config.h2MaxOutputBytes,
    maxRequestBytesPerConnection: config.h2MaxRequestBytesPerConnection,
    maxRequestBytes: config.h2MaxRequestBytes,
    maxResponseBytesPerConnection: config.h2MaxResponseBytesPerConnection,
    maxResponseBytes: config.h2MaxResponseBytes,
    prefaceTimeoutMs: config.h2PrefaceTimeoutMs,
    settingsAckTimeoutMs: config.h2SettingsAckTimeoutMs,
    headersTimeoutMs: config.h2HeadersTimeoutMs,
    idleTimeoutMs: config.h2IdleTimeoutMs,
    streamIdleTimeoutMs: config.h2StreamIdleTimeoutMs,
    goawayNoticeTimeoutMs: config.h2GoawayNoticeTimeoutMs,
    keepaliveMinIntervalMs: config.h2KeepaliveMinIntervalMs,
    keepalivePermitWithoutStream: config.h2KeepalivePermitWithoutStream,
    maxPingStrikes: config.h2MaxPingStrikes,
  };
}
