// Who may do what on NATS: one identity per service kind, each allowed only the subjects and
// JetStream API calls its own code makes. The local mesh (cli/local-mesh) and Kubernetes
// (deploy/k8s/base/config/nats.conf, rendered by scripts/render-nats-conf.js) both take their
// nats-server authorization from here, so the two never grant different things.
//
// Forging the control plane needs a publish: a heartbeat (traffic to the attacker), a rollout
// metric (a rollback or promotion), an event, a KV record or an object store chunk (a replaced
// model). Only the kind that owns a subject may publish it:
//   registry: events, the registry and keys KV buckets, the artifact object store, their streams,
//             and the discover request (it shows the pods);
//   router:   rollout metrics, the discover request and placement demands; reads and watches the keys bucket;
//   pod:      its heartbeats; follows the event stream (followStream: ordered consumers only).
// Replies come to an inbox prefix of the kind's own (`_INBOX_<kind>.`), which no other kind may
// subscribe to or publish on, so no one reads or forges another kind's JetStream answers.
import { createUser } from '@nats-io/nkeys';
import { resources } from './nats';
import { subjects } from './events';
import { WINDOW_SUBJECT_ALL } from './window-stats';
import { KEYS_BUCKET } from './auth/api-keys';

/** The NATS identities: one per service kind, and `admin` for an operator's tools (everything). */
export type NatsIdentityKind = 'registry' | 'router' | 'pod' | 'admin';

/** The kinds, in the order configs list them. */
export const NATS_IDENTITY_KINDS: readonly NatsIdentityKind[] = ['registry', 'router', 'pod', 'admin'];

/** Subjects one identity may publish and subscribe to (nats-server `permissions`). */
export interface NatsPermissions {
  publish: string[];
  subscribe: string[];
}

/** The inbox prefix of a kind's connections: its replies arrive under `<prefix>.`. */
export function inboxPrefixOf(kind: NatsIdentityKind): string {
  return kind === 'admin' ? '_INBOX' : `_INBOX_${kind}`;
}

const streamOfKv = (bucket: string) => `KV_${bucket}`;
const streamOfObjectStore = (bucket: string) => `OBJ_${bucket}`;

/**
 * The answers a push consumer with flow control owes the server (a KV watch's ordered consumer):
 * past a few MiB delivered, the server sends no more until the client answers on this subject, so
 * a watch refused it stops seeing changes for good. An answer only lets the server send on.
 */
const flowControl = (stream: string) => `$JS.FC.${stream}.>`;

/**
 * The JetStream API calls that read a stream through ordered consumers (what a KV watch makes),
 * their flow control's answers, and direct gets of single messages (a KV get): nothing that
 * changes the stream's messages.
 */
function readStream(stream: string): string[] {
  return [
    flowControl(stream),
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.INFO.${stream}.*`,
    `$JS.API.CONSUMER.DELETE.${stream}.*`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.*`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
  ];
}

/**
 * What followEvents' ordered consumer asks of the event stream, and no more: its consumer is
 * created by name with the filter in the subject (`CONSUMER.CREATE.<stream>.<name>.<filter>`, the
 * filter always under the events subjects), read with MSG.NEXT, and looked up with INFO. Nothing
 * else: no unfiltered or legacy create, no DURABLE.CREATE, no DELETE. A subject cannot say "a
 * consumer this identity made" (a name is one token and permissions match whole tokens), so DELETE
 * is not granted at all: the client's delete of its own old consumer when it resets is refused
 * (it ignores that), and the server drops that consumer after the client's 5-minute inactive
 * threshold. The create subject cannot refuse a durable config either; the stream's max_consumers
 * (INFERMESH_EVENT_STREAM_MAX_CONSUMERS) bounds what such creates can leave.
 */
function followStream(stream: string, filter: string): string[] {
  return [
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.*.${filter}`,
    `$JS.API.CONSUMER.INFO.${stream}.*`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.*`,
  ];
}

/** Every JetStream API call on a stream the identity owns (create, update, purge, delete, read), and its watches' flow control. */
function ownStream(stream: string): string[] {
  return [
    flowControl(stream),
    `$JS.API.STREAM.*.${stream}`,
    `$JS.API.STREAM.MSG.*.${stream}`,
    `$JS.API.CONSUMER.*.${stream}`,
    `$JS.API.CONSUMER.*.${stream}.>`,
    `$JS.API.CONSUMER.DURABLE.CREATE.${stream}.*`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.*`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.ACK.${stream}.>`,
  ];
}

/**
 * The permissions of `kind`: what its code publishes and subscribes to, nothing more. The table
 * is documented in docs/security.md ("The control plane"); test/integration/nats-permissions.test.ts
 * checks every row against a real nats-server.
 */
export function natsPermissions(kind: NatsIdentityKind): NatsPermissions {
  const events = resources.eventStream;
  const inbox = `${inboxPrefixOf(kind)}.>`;
  switch (kind) {
    case 'registry':
      return {
        publish: [
          '$JS.API.INFO',
          '$JS.API.STREAM.NAMES',
          subjects.eventsAll,
          subjects.discover,
          `$KV.${resources.metadataBucket}.>`,
          `$KV.${KEYS_BUCKET}.>`,
          `$O.${resources.artifactBucket}.>`,
          ...ownStream(events),
          ...ownStream(streamOfKv(resources.metadataBucket)),
          ...ownStream(streamOfKv(KEYS_BUCKET)),
          ...ownStream(streamOfObjectStore(resources.artifactBucket)),
        ],
        // Rollout metrics: only routers may publish them, so only theirs arrive here; heartbeats,
        // only pods' (the pods that ListPods and the console show).
        subscribe: [WINDOW_SUBJECT_ALL, subjects.heartbeat, subjects.placementDemand, inbox],
      };
    case 'router':
      return {
        publish: [
          '$JS.API.INFO',
          WINDOW_SUBJECT_ALL,
          subjects.discover,
          subjects.placementDemand,
          ...followStream(events, subjects.eventsAll),
          ...readStream(streamOfKv(KEYS_BUCKET)),
        ],
        subscribe: [subjects.heartbeat, inbox],
      };
    case 'pod':
      return {
        publish: ['$JS.API.INFO', subjects.heartbeat, ...followStream(events, subjects.eventsAll)],
        subscribe: [subjects.discover, inbox],
      };
    case 'admin':
      return { publish: ['>'], subscribe: ['>'] };
  }
}

/** One identity: its kind, nkey seed (secret) and public key (what the server is told). */
export interface NatsIdentity {
  kind: NatsIdentityKind;
  /** The nkey seed, `SU...`: a secret, written to a 0600 file and never logged. */
  seed: string;
  /** The user's public nkey, `U...`: what nats-server's config names. */
  publicKey: string;
}

/** A fresh nkey user identity for `kind`. */
export function newNatsIdentity(kind: NatsIdentityKind): NatsIdentity {
  const kp = createUser();
  return { kind, seed: new TextDecoder().decode(kp.getSeed()), publicKey: kp.getPublicKey() };
}

/** How a rendered config names a kind's public key: the key itself, or a variable nats-server reads from its environment. */
export type NkeyRef = { publicKey: string } | { env: string };

/** The environment variable that holds a kind's public nkey in Kubernetes' nats.conf. */
export const nkeyVariableOf = (kind: NatsIdentityKind): string => `INFERMESH_NATS_${kind.toUpperCase()}_NKEY`;

const quote = (s: string) => JSON.stringify(s);
const list = (items: string[], indent: string) => `[\n${items.map((s) => `${indent}  ${quote(s)},`).join('\n')}\n${indent}]`;

/**
 * The nats-server `authorization` block: one nkey user per kind with its permissions, and nothing
 * for anyone else (no anonymous user), so a client without one of these keys is refused.
 */
export function renderNatsAuthorization(keys: Record<NatsIdentityKind, NkeyRef>): string {
  const users = NATS_IDENTITY_KINDS.map((kind) => {
    const ref = keys[kind];
    const nkey = 'env' in ref ? `$${ref.env}` : quote(ref.publicKey);
    const p = natsPermissions(kind);
    return [
      `    # ${kind}`,
      '    {',
      `      nkey: ${nkey}`,
      '      permissions: {',
      `        publish: { allow: ${list(p.publish, '        ')} }`,
      `        subscribe: { allow: ${list(p.subscribe, '        ')} }`,
      '      }',
      '    },',
    ].join('\n');
  });
  return `authorization {\n  users: [\n${users.join('\n')}\n  ]\n}\n`;
}
