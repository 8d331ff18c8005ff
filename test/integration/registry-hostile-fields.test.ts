// Request fields a caller sets to anything the wire allows, against a real nats-server and a real
// registry: WatchEvents' start_sequence (a uint64) above the largest sequence the registry serves
// (2^53 - 1) is INVALID_ARGUMENT naming the field, the value and the limit, not INTERNAL; 0 starts
// with the oldest event and a sequence past the last one waits for later events. PushVersion's
// expected_sha256 is checked before any byte of the artifact is received: anything but 64 hex
// digits (or empty) is INVALID_ARGUMENT giving its length, never the value itself; a size_bytes
// above the maximum is refused there too, naming the uint64 exactly as it was sent.
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { InfermeshError, RegistryApi } from '../../client/index';
import { registryClient } from '../../lib/grpc/client';
import { resources } from '../../lib/nats';
import type { RegistryClient } from '../../lib/grpc/types';
import type { Event__Output as EventOut } from '../../lib/grpc/generated/infermesh/registry/v1/Event';
import type { Version__Output as VersionOut } from '../../lib/grpc/generated/infermesh/registry/v1/Version';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { recentLogger, startTestRegistry } from '../helpers/services';
import { modelPath } from '../helpers/models';
import { waitFor } from '../helpers/wait';
import type { RegistryService } from '../../services/registry/registry-service';

jest.setTimeout(60_000);

const INVALID_ARGUMENT = 3;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** How long an answer that needs nothing more from the client may take. */
const PROMPT_MS = 5_000;

/** A WatchEvents call as it goes: the sequences delivered, and how its start went. */
interface RawWatch {
  sequences: number[];
  /** Undefined once the stream is live (response headers came); else the status it ended with. */
  started: Promise<ServiceError | undefined>;
  cancel(): void;
}

describe('hostile request fields', () => {
  let nats: NatsServerProcess & { cleanup(): Promise<void> };
  let service: RegistryService;
  let client: RegistryApi;
  let raw: RegistryClient;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const log = recentLogger('registry', 200);
  const addSub = fs.readFileSync(modelPath('fixtures/add_sub_fp32.onnx'));
  const watches: RawWatch[] = [];

  /** WatchEvents from `start` (sent as the decimal string a uint64 is on the wire here). */
  const watchFrom = (start: string): RawWatch => {
    const call = raw.WatchEvents({ start_sequence: start, only_new: false, model: '' });
    const sequences: number[] = [];
    call.on('data', (e: EventOut) => sequences.push(Number(e.sequence)));
    const started = new Promise<ServiceError | undefined>((resolve) => {
      call.once('metadata', () => resolve(undefined));
      // Kept on: the CANCELLED that cancel() causes is expected.
      call.on('error', (err: ServiceError) => resolve(err));
      call.once('end', () => resolve(undefined));
    });
    const watch = { sequences, started, cancel: () => call.cancel() };
    watches.push(watch);
    return watch;
  };

  /** The event stream's last sequence. */
  const lastSequence = async (): Promise<number> => (await jsm.streams.info(resources.eventStream)).state.last_seq;

  const unexpectedErrors = () => log.lines.filter((l) => l.includes('unexpected error'));

  beforeAll(async () => {
    nats = await startTestNats();
    service = await startTestRegistry(nats.url, {}, log.logger);
    client = new RegistryApi(`127.0.0.1:${service.port}`);
    raw = registryClient(`127.0.0.1:${service.port}`);
    nc = await connect({ servers: nats.url });
    jsm = await jetstreamManager(nc);
    // A few events to watch: model.created, version.published, traffic.changed.
    await client.push('seed', addSub);
  });

  // Each test looks only at what the registry logged during it.
  beforeEach(() => {
    log.lines.length = 0;
  });

  afterAll(async () => {
    for (const w of watches) w.cancel();
    client?.close();
    raw?.close();
    await nc?.close();
    await service?.shutdown(5_000);
    await nats?.cleanup();
  });

  describe('WatchEvents start_sequence', () => {
    it.each([
      ['2^64 - 1, the largest uint64', '18446744073709551615'],
      ['2^53, the first integer a double cannot tell from its neighbour', '9007199254740992'],
      ['2^53 + 1', '9007199254740993'],
    ])('refuses %s with INVALID_ARGUMENT naming start_sequence, the value and the limit, not INTERNAL', async (_what, start) => {
      const err = await watchFrom(start).started;
      expect(err?.code).toBe(INVALID_ARGUMENT);
      expect(err?.details).toBe(`start_sequence ${start} is above ${Number.MAX_SAFE_INTEGER} (2^53 - 1), the largest event sequence the registry serves`);
      expect(unexpectedErrors()).toEqual([]);
    });

    it('starts with the oldest event for 0 (and for 1)', async () => {
      for (const start of ['0', '1']) {
        const watch = watchFrom(start);
        expect(await watch.started).toBeUndefined();
        await waitFor('the oldest event', () => watch.sequences.length > 0 || undefined, 10_000);
        expect(watch.sequences[0]).toBe(1);
        watch.cancel();
      }
    });

    it('waits for the sequence asked for when it is past the last one: nothing before it, not INTERNAL', async () => {
      const last = await lastSequence();
      // Each push publishes model.created, version.published and traffic.changed.
      const watch = watchFrom(String(last + 4));
      expect(await watch.started).toBeUndefined();
      await client.push('later-1', addSub);
      await client.push('later-2', addSub);
      await waitFor('the events from the one asked for', () => watch.sequences.length >= 3 || undefined, 10_000);
      // nats-server starts such a consumer at the stream's next sequence: the first push's events
      // are not delivered.
      expect(watch.sequences).toEqual([last + 4, last + 5, last + 6]);
      watch.cancel();
      expect(unexpectedErrors()).toEqual([]);
    });

    it('takes 2^53 - 1, the largest sequence it serves, as a live watch', async () => {
      const watch = watchFrom(String(Number.MAX_SAFE_INTEGER));
      expect(await watch.started).toBeUndefined();
      watch.cancel();
      expect(unexpectedErrors()).toEqual([]);
    });
  });

  describe('PushVersion expected_sha256', () => {
    /**
     * Sends a header with `expectedSha256` and no artifact, keeping the stream open: the answer
     * must come without any chunk and without the end of the stream.
     */
    const headerOnly = (model: string, expectedSha256: string, sizeBytes: string | number = addSub.length) => new Promise<ServiceError | VersionOut>((resolve, reject) => {
      const call = raw.PushVersion(new Metadata(), (err, res) => (err ? resolve(err) : resolve(res!)));
      const timer = setTimeout(() => {
        call.cancel();
        reject(new Error(`no answer within ${PROMPT_MS} ms of the header: the registry waited for the artifact`));
      }, PROMPT_MS);
      call.on('status', () => clearTimeout(timer));
      call.write({ header: { model, expected_sha256: expectedSha256, size_bytes: sizeBytes } });
    });

    it.each([
      ['2^64 - 1, the largest uint64', '18446744073709551615'],
      ['2^53 + 1, the first a double rounds', '9007199254740993'],
    ])('refuses a size_bytes of %s before any byte, echoing it exactly, not rounded', async (_what, size) => {
      const err = (await headerOnly('sized', '', size)) as ServiceError;
      expect(err.code).toBe(INVALID_ARGUMENT);
      expect(err.details).toBe(`artifact is ${size} bytes, above the registry's maximum of ${2 * 1024 ** 3} bytes`);
      expect((await client.models()).map((m) => m.name)).not.toContain('sized');
    });

    it.each([
      ['a word', 'not-a-sha'],
      ['63 hex digits', 'a'.repeat(63)],
      ['65 hex digits', 'b'.repeat(65)],
      ['64 characters with one not hex', `${'c'.repeat(63)}g`],
      ['64 hex digits with a space', ` ${'d'.repeat(63)}`],
      ['2 MiB of text', 'z'.repeat(2 * 1024 * 1024)],
    ])('refuses %s before any byte of the artifact, with INVALID_ARGUMENT giving its length, not the value', async (_what, value) => {
      const err = (await headerOnly('hashed', value)) as ServiceError;
      expect(err.code).toBe(INVALID_ARGUMENT);
      expect(err.details).toBe(`expected_sha256 must be 64 hex digits (a SHA-256), got ${value.length} characters`);
      expect((await client.models()).map((m) => m.name)).not.toContain('hashed');
    });

    it.each([
      ['a word', 'not-a-sha'],
      ['100 KiB of text', 'y'.repeat(100 * 1024)],
    ])('refuses %s sent with a whole artifact without repeating it', async (_what, value) => {
      const err = (await client.push('hashed-echo', addSub, { expectedSha256: value }).catch((e: unknown) => e)) as InfermeshError;
      expect(err).toBeInstanceOf(InfermeshError);
      expect(err.grpcCode).toBe(INVALID_ARGUMENT);
      expect(err.message).toBe(`expected_sha256 must be 64 hex digits (a SHA-256), got ${value.length} characters`);
      expect((await client.models()).map((m) => m.name)).not.toContain('hashed-echo');
    });

    it('takes 64 hex digits in either case, and empty (none given)', async () => {
      const v1 = await client.push('hashed-upper', addSub, { expectedSha256: sha(addSub).toUpperCase() });
      expect(v1.sha256).toBe(sha(addSub));
      const v2 = await client.push('hashed-none', addSub, { expectedSha256: '' });
      expect(v2.sha256).toBe(sha(addSub));
    });

    it('still refuses well-formed hex that the bytes do not hash to, after the upload, naming both', async () => {
      const wrong = 'E'.repeat(64);
      const err = (await client.push('hashed-wrong', addSub, { expectedSha256: wrong }).catch((e: unknown) => e)) as InfermeshError;
      expect(err).toBeInstanceOf(InfermeshError);
      expect(err.grpcCode).toBe(INVALID_ARGUMENT);
      expect(err.message).toBe(`artifact sha256 is ${sha(addSub)}, but the client expected ${wrong.toLowerCase()}`);
      expect((await client.models()).map((m) => m.name)).not.toContain('hashed-wrong');
    });
  });
});
