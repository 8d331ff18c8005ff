// Hostile clients against the mesh's two front doors, the router's and a pod's, each a real service
// process (test/helpers/doors.ts): the attacks of the 2023–24 HTTP/2 wave (Rapid Reset, CONTINUATION
// floods, HPACK bombs, PING and SETTINGS floods, slow readers, slowloris, unfinished uploads) sent by
// a raw-frame client (test/helpers/h2-raw.ts). Each case asserts three things: the attacker's
// connection is ended with the right code (ENHANCE_YOUR_CALM for floods and abuse; what the RFC names
// for a protocol error; a timeout for a peer that stalls), the door's resident memory stays within
// MEMORY_BUDGET_BYTES of what it was just before, and well-formed calls from another client succeed
// while the attack goes on. Every attack is bounded by count and by time, on loopback only.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { protos } from '../../lib/grpc/proto';
import { heldOutDigits } from '../../tools/models/mnist-data';
import { startDoors, type Door, type DoorName, type Doors, type MemoryUse } from '../helpers/doors';
import {
  ERROR,
  FLAG,
  FRAME,
  SETTING,
  errorName,
  fieldBlock,
  frame,
  grpcMessage,
  grpcRequestHeaders,
  hpack,
  PREFACE,
  RawH2Client,
  settingsPayload,
  u32,
  valueOf,
  type ErrorName,
} from '../helpers/h2-raw';
import { listenersOf } from '../helpers/proc-sockets';

jest.setTimeout(90_000);

const MiB = 1 << 20;
/**
 * What an attack may add to a door's resident memory. Of it, up to 64 MiB is V8's young generation
 * (two 32 MiB semi-spaces, --max-semi-space-size=32 in the service command), which V8 shrinks while
 * a process idles and grows again under any load, attack or not: a SETTINGS flood the door held to
 * its 1 MiB output budget measured 64.2 MiB over its baseline on one CI line. The floods this
 * guards against grow a door by hundreds of megabytes.
 */
const MEMORY_BUDGET_BYTES = 80 * MiB;
/** The longest an attack that the door does not stop goes on. */
const ATTACK_MS = 2_000;

/**
 * The doors' timeouts, made short here (the INFERMESH_H2_* settings of lib/config.ts). Every case
 * that waits on one allows it TIMEOUT_SLACK_MS more.
 */
const TIMEOUTS = {
  prefaceMs: 1_000,
  settingsAckMs: 1_000,
  headersMs: 1_000,
  idleMs: 1_500,
  streamIdleMs: 1_500,
  keepaliveMinIntervalMs: 100,
};
const TIMEOUT_SLACK_MS = 2_500;
/**
 * The doors' memory budgets, made to fit MEMORY_BUDGET_BYTES with room for the rest of a process
 * under attack (their defaults, 64 MiB a connection and 256 MiB a door, are sized for production).
 */
const BUDGETS = {
  requestBytesPerConnection: 16 * MiB,
  requestBytes: 32 * MiB,
  responseBytesPerConnection: 16 * MiB,
  responseBytes: 32 * MiB,
};
const DOOR_ENV: Record<string, string> = {
  // A request budget may not be below the message limit: lowered with them.
  INFERMESH_MAX_MESSAGE_BYTES: String(BUDGETS.requestBytesPerConnection),
  INFERMESH_H2_PREFACE_TIMEOUT_MS: String(TIMEOUTS.prefaceMs),
  INFERMESH_H2_SETTINGS_ACK_TIMEOUT_MS: String(TIMEOUTS.settingsAckMs),
  INFERMESH_H2_HEADERS_TIMEOUT_MS: String(TIMEOUTS.headersMs),
  INFERMESH_H2_IDLE_TIMEOUT_MS: String(TIMEOUTS.idleMs),
  INFERMESH_H2_STREAM_IDLE_TIMEOUT_MS: String(TIMEOUTS.streamIdleMs),
  INFERMESH_H2_KEEPALIVE_MIN_INTERVAL_MS: String(TIMEOUTS.keepaliveMinIntervalMs),
  // PINGs at that interval are fine with no stream open: only the idle timeout ends such a connection.
  INFERMESH_H2_KEEPALIVE_PERMIT_WITHOUT_STREAM: 'true',
  INFERMESH_H2_MAX_REQUEST_BYTES_PER_CONNECTION: String(BUDGETS.requestBytesPerConnection),
  INFERMESH_H2_MAX_REQUEST_BYTES: String(BUDGETS.requestBytes),
  INFERMESH_H2_MAX_RESPONSE_BYTES_PER_CONNECTION: String(BUDGETS.responseBytesPerConnection),
  INFERMESH_H2_MAX_RESPONSE_BYTES: String(BUDGETS.responseBytes),
};

const MODEL_INFER = '/inference.GRPCInferenceService/ModelInfer';
const SERVER_LIVE = '/inference.GRPCInferenceService/ServerLive';
const INFER_HEADERS = grpcRequestHeaders(MODEL_INFER);
const LIVE_HEADERS = grpcRequestHeaders(SERVER_LIVE);

const serialize = protos().inference.GRPCInferenceService.service.ModelInfer.requestSerialize;
const digit = heldOutDigits(1)[0]!;
/** A well-formed ModelInfer message (one mnist digit). */
const MNIST_REQUEST = serialize({
  model_name: 'mnist',
  inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784] }],
  raw_input_contents: [Buffer.from(digit.pixels.buffer, digit.pixels.byteOffset, digit.pixels.byteLength)],
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Bytes in MiB, to a tenth. */
const mib = (bytes: number) => Math.round((bytes / MiB) * 10) / 10;

let doors: Doors;
const clients: RawH2Client[] = [];

beforeAll(async () => {
  // 600 calls through each door before its baseline: V8's young generation (32 MB semi-spaces in
  // the service command) grows under the first load, attack or not.
  doors = await startDoors({ env: DOOR_ENV, models: [['identity', 'fixtures/identity_fp32.onnx']], warmupCalls: 600 });
}, 120_000);

afterEach(() => {
  for (const c of clients.splice(0)) c.destroy();
});

afterAll(async () => {
  await doors?.close();
});

/** What the suite records of one attack. */
interface Held<T> {
  outcome: T;
  memory: MemoryUse;
  /** Well-formed calls by another client while the attack went on that failed, and why. */
  failedCalls: string[];
}

/**
 * Runs `attack` against `door` while measuring its memory; once the attack reports itself under
 * way, another client makes well-formed calls one after another until the attack is over (at
 * least one). `goodCallTimeoutMs` bounds each: a door whose event loop an attack stalls fails them.
 */
async function underAttack<T>(door: Door, attack: (underway: () => void) => Promise<T>, goodCallTimeoutMs = 10_000): Promise<Held<T>> {
  const stop = door.watchMemory();
  let memory: MemoryUse | undefined;
  try {
    let started!: () => void;
    const underway = new Promise<void>((resolve) => (started = resolve));
    let over = false;
    const attacking = attack(started).finally(() => {
      over = true;
      started();
    });
    await underway;
    let goodCalls = 0;
    const failedCalls: string[] = [];
    do {
      goodCalls++;
      await door.goodCall(goodCallTimeoutMs).catch((err: unknown) => failedCalls.push(String(err)));
    } while (!over && goodCalls < 500);
    const outcome = await attacking;
    memory = stop();
    return { outcome, memory, failedCalls };
  } finally {
    if (!memory) stop();
  }
}

/**
 * The door held: `outcome` (a value or an asymmetric matcher) is what the attacker got, the door
 * is alive, its memory grew by less than `budgetBytes` (MEMORY_BUDGET_BYTES), and every other
 * client's call succeeded. One expectation, so that a failure shows all four.
 */
function expectHeld<T>(door: Door, held: Held<T>, outcome: unknown, budgetBytes = MEMORY_BUDGET_BYTES): void {
  const growth = held.memory.growthBytes;
  const within = `within ${mib(budgetBytes)} MiB`;
  expect({
    outcome: held.outcome,
    alive: door.alive(),
    memory: growth < budgetBytes ? within : `${mib(growth)} MiB over the baseline of ${mib(held.memory.baselineBytes)} MiB`,
    failedCalls: held.failedCalls,
  }).toEqual({ outcome, alive: true, memory: within, failedCalls: [] });
}

/** Matches `GOAWAY <code> and closed` for any of `codes`. */
function closedWith(...codes: ErrorName[]): unknown {
  return oneOf(...codes.map((code) => `GOAWAY ${code} and closed`));
}

/** Matches any of `values`. */
function oneOf(...values: string[]): unknown {
  return expect.stringMatching(new RegExp(`^(${values.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})$`));
}

/**
 * Writes `unit` (a batch of frames) again and again, as fast as the socket takes it, until the
 * door ends the connection, `maxBytes` are written or ATTACK_MS pass. Resolves to the bytes written.
 */
async function flood(c: RawH2Client, unit: Buffer, maxBytes: number, underway: () => void): Promise<number> {
  const deadline = Date.now() + ATTACK_MS;
  let written = 0;
  while (!c.closed && !c.goaway && written < maxBytes && Date.now() < deadline) {
    const ok = c.write(unit);
    written += unit.length;
    underway();
    if (!ok && !(await c.drained(Math.max(1, deadline - Date.now())))) {
      // The door has stopped reading (or is gone): that is one way to hold.
      if (Date.now() >= deadline || c.closed) break;
    }
  }
  return written;
}

/** `count` copies of `f`, one buffer. */
function repeat(f: Buffer, count: number): Buffer {
  return Buffer.concat(Array.from({ length: count }, () => f));
}

describe.each<DoorName>(['router', 'pod'])('the %s door under attack', (which) => {
  const door = () => doors[which];

  // Each case is judged on its own: a door that an earlier case left dead, or holding more than the
  // budget over its size at start (memory a process keeps once it has grown), is replaced first.
  beforeEach(async () => {
    if (!doors.pod.alive()) await doors.restart('pod');
    if (!door().alive() || door().rssBytes() > door().startRssBytes + MEMORY_BUDGET_BYTES) await doors.restart(which);
  }, 120_000);

  async function attacker(opts: Parameters<typeof RawH2Client.open>[1] = {}): Promise<RawH2Client> {
    const c = await RawH2Client.open(door().address, { record: false, ...opts });
    clients.push(c);
    return c;
  }

  /** A connection that never reads what the door sends: the preface, SETTINGS and a blind ACK of the door's. */
  async function deafAttacker(): Promise<RawH2Client> {
    const c = await RawH2Client.connect(door().address, { read: false, record: false });
    clients.push(c);
    c.send(FRAME.SETTINGS, FLAG.ACK, 0);
    return c;
  }

  describe('CONTINUATION floods (CVE-2024-27316 and family)', () => {
    it('HEADERS with PADDED and an empty payload, then CONTINUATION frames: a connection error at once', async () => {
      const held = await underAttack(door(), async (underway) => {
        const c = await attacker();
        c.send(FRAME.HEADERS, FLAG.PADDED, 1);
        await flood(c, repeat(frame(FRAME.CONTINUATION, 0, 1, Buffer.alloc(16_384, 0x61)), 16), 128 * MiB, underway);
        // Inside an unfinished field block nothing else may be sent to probe the door.
        return c.goawayWithin(2_000);
      });
      expectHeld(door(), held, closedWith('FRAME_SIZE_ERROR', 'PROTOCOL_ERROR'));
    });

    it('a field block that never ends: CONTINUATION frames of 16 KiB', async () => {
      const held = await underAttack(door(), async (underway) => {
        const c = await attacker();
        c.headers(1, INFER_HEADERS, { endHeaders: false });
        // Literal fields without indexing, 16 KiB each.
        const field = Buffer.concat([Buffer.from([0x00]), hpack.string('x-flood'), hpack.string('f'.repeat(16_370))]);
        await flood(c, repeat(frame(FRAME.CONTINUATION, 0, 1, field), 16), 128 * MiB, underway);
        return c.goawayWithin(2_000);
      });
      expectHeld(door(), held, closedWith('ENHANCE_YOUR_CALM', 'COMPRESSION_ERROR', 'PROTOCOL_ERROR'));
    });

    it('zero-length CONTINUATION frames without end', async () => {
      const held = await underAttack(door(), async (underway) => {
        const c = await attacker();
        c.headers(1, INFER_HEADERS, { endHeaders: false });
        await flood(c, repeat(frame(FRAME.CONTINUATION, 0, 1), 4_096), 32 * MiB, underway);
        return c.goawayWithin(2_000);
      });
      expectHeld(door(), held, closedWith('ENHANCE_YOUR_CALM', 'COMPRESSION_ERROR', 'PROTOCOL_ERROR'));
    });
  });

  describe('control frame floods', () => {
    it('a PING flood: GOAWAY ENHANCE_YOUR_CALM', async () => {
      const held = await underAttack(door(), async (underway) => {
        const c = await attacker({ ackPings: false });
        await flood(c, repeat(frame(FRAME.PING, 0, 0, Buffer.alloc(8)), 1_000), 64 * MiB, underway);
        return c.goawayWithin(2_000);
      });
      expectHeld(door(), held, 'GOAWAY ENHANCE_YOUR_CALM and closed');
    });

    it('a SETTINGS flood: GOAWAY ENHANCE_YOUR_CALM', async () => {
      const held = await underAttack(door(), async (underway) => {
        const c = await attacker();
        await flood(c, repeat(frame(FRAME.SETTINGS, 0, 0), 1_000), 64 * MiB, underway);
        return c.goawayWithin(2_000);
      });
      expectHeld(door(), held, 'GOAWAY ENHANCE_YOUR_CALM and closed');
    });

    it.each<[string, Buffer]>([
      ['PING', frame(FRAME.PING, 0, 0, Buffer.alloc(8))],
      ['SETTINGS', frame(FRAME.SETTINGS, 0, 0)],
    ])('a %s flood from a peer that never reads: its answers do not pile up, and the connection ends', async (_what, f) => {
      const held = await underAttack(door(), async (underway) => {
        const c = await deafAttacker();
        await flood(c, repeat(f, 1_000), 64 * MiB, underway);
        // Now read: what the door queued, then its GOAWAY (if it could still send one) and the end.
        c.resume();
        const closed = await c.closedWithin(TIMEOUT_SLACK_MS + 2_000);
        return { closed, goaway: c.goaway ? errorName(c.goaway.code) : 'none' };
      });
      expectHeld(door(), held, { closed: true, goaway: oneOf('ENHANCE_YOUR_CALM', 'none') });
    });

    it('SETTINGS of many entries while every stream the door allows is open: cheap, or GOAWAY ENHANCE_YOUR_CALM', async () => {
      const entries = Array.from({ length: 2_730 }, (_, i) => [SETTING.INITIAL_WINDOW_SIZE, 65_535 - (i % 2)] as const);
      const settingsFrame = frame(FRAME.SETTINGS, 0, 0, settingsPayload(entries));
      // A stalled event loop is the attack's symptom: the other client's calls get 3 s each.
      const held = await underAttack(door(), async (underway) => {
        const c = await attacker();
        // As many streams as the door allows (10,000 at most), each waiting for its body.
        const streams = Math.min(c.peerSettings.get(SETTING.MAX_CONCURRENT_STREAMS) ?? 10_000, 10_000);
        const block = fieldBlock(INFER_HEADERS);
        c.write(Buffer.concat(Array.from({ length: streams }, (_, i) => frame(FRAME.HEADERS, FLAG.END_HEADERS, 1 + 2 * i, block))));
        if ((await c.reaction(undefined, 10_000)) !== 'ignored') return 'streams not opened';
        const acked = c.settingsAcked;
        for (let i = 0; i < 40 && !c.closed; i++) c.write(settingsFrame);
        underway();
        const deadline = Date.now() + 10_000;
        while (!c.goaway && !c.closed && c.settingsAcked < acked + 40 && Date.now() < deadline) await c.next(deadline - Date.now());
        if (c.goaway) return (await c.closedWithin(3_000)) ? `GOAWAY ${errorName(c.goaway.code)} and closed` : 'GOAWAY, still open';
        return c.settingsAcked === acked + 40 ? 'all acknowledged' : `${c.settingsAcked - acked} of 40 acknowledged`;
      }, 3_000);
      expectHeld(door(), held, oneOf('all acknowledged', 'GOAWAY ENHANCE_YOUR_CALM and closed'));
    });

    it('an empty DATA flood: GOAWAY ENHANCE_YOUR_CALM', async () => {
      const held = await underAttack(door(), async (underway) => {
        const c = await attacker();
        c.headers(1, INFER_HEADERS);
        await flood(c, repeat(frame(FRAME.DATA, 0, 1), 4_096), 32 * MiB, underway);
        return c.goawayWithin(2_000);
      });
      expectHeld(door(), held, 'GOAWAY ENHANCE_YOUR_CALM and closed');
    });
  });

  describe('streams', () => {
    it('Rapid Reset (CVE-2023-44487): requests cancelled as soon as sent, GOAWAY ENHANCE_YOUR_CALM', async () => {
      const held = await underAttack(door(), async (underway) => {
        const c = await attacker();
        const block = fieldBlock(LIVE_HEADERS);
        const body = grpcMessage(Buffer.alloc(0));
        let id = 1;
        const deadline = Date.now() + ATTACK_MS;
        while (!c.closed && !c.goaway && id < 40_000 && Date.now() < deadline) {
          const batch: Buffer[] = [];
          for (let i = 0; i < 100; i++, id += 2) {
            batch.push(frame(FRAME.HEADERS, FLAG.END_HEADERS, id, block), frame(FRAME.DATA, FLAG.END_STREAM, id, body), frame(FRAME.RST_STREAM, 0, id, u32(ERROR.CANCEL)));
          }
          if (!c.write(Buffer.concat(batch))) await c.drained(Math.max(1, deadline - Date.now()));
          underway();
        }
        return c.goawayWithin(2_000);
      });
      expectHeld(door(), held, 'GOAWAY ENHANCE_YOUR_CALM and closed');
    });

    it('more streams than the door allows: it advertises at most 256 and refuses the rest', async () => {
      const held = await underAttack(door(), async (underway) => {
        const c = await attacker();
        const max = c.peerSettings.get(SETTING.MAX_CONCURRENT_STREAMS) ?? Number.POSITIVE_INFINITY;
        const opened = 2_000;
        c.write(Buffer.concat(Array.from({ length: opened }, (_, i) => frame(FRAME.HEADERS, FLAG.END_HEADERS, 1 + 2 * i, fieldBlock(INFER_HEADERS)))));
        underway();
        const reaction = await c.reaction(undefined, 10_000);
        const refused = [...c.resets.values()].filter((code) => code === ERROR.REFUSED_STREAM || code === ERROR.PROTOCOL_ERROR).length;
        return { advertised: max <= 256 ? 'at most 256' : String(max), reaction, refused, expectedRefused: Math.max(0, opened - max) };
      });
      expectHeld(door(), held, { ...held.outcome, advertised: 'at most 256', reaction: 'ignored', refused: held.outcome.expectedRefused });
    });

    it('HPACK amplification: a few octets that decode to 60 KB of fields, request after request', async () => {
      // A stalled door is the attack's symptom: the other client's calls get 3 s each.
      const held = await underAttack(door(), async (underway) => {
        const c = await attacker();
        // One 4,000-octet field enters the dynamic table (index 62); each request then names it 15 times.
        c.headers(1, Buffer.concat([fieldBlock(LIVE_HEADERS), hpack.indexedLiteral('x-amp', 'a'.repeat(4_000))]));
        c.data(1, grpcMessage(Buffer.alloc(0)), true);
        const amplified = Buffer.concat([fieldBlock(INFER_HEADERS), repeat(hpack.indexed(62), 15)]);
        const body = grpcMessage(MNIST_REQUEST);
        let id = 3;
        const deadline = Date.now() + ATTACK_MS;
        while (!c.closed && !c.goaway && id < 4_000 && Date.now() < deadline) {
          const batch: Buffer[] = [];
          for (let i = 0; i < 20; i++, id += 2) batch.push(frame(FRAME.HEADERS, FLAG.END_HEADERS, id, amplified), frame(FRAME.DATA, FLAG.END_STREAM, id, body));
          if (!c.write(Buffer.concat(batch))) await c.drained(Math.max(1, deadline - Date.now()));
          underway();
          // Keep within the door's stream limit: no more than 100 requests in flight.
          await c.until('answers', () => c.closed || !!c.goaway || answered(c, id) >= (id - 3) / 2 - 100, 5_000).catch(() => undefined);
        }
        const sent = (id - 3) / 2;
        await c.until('every answer', () => c.closed || answered(c, id) === sent, 10_000).catch(() => undefined);
        const served = servedOk(c, id);
        const ending = c.goaway ? ((await c.closedWithin(3_000)) ? `GOAWAY ${errorName(c.goaway.code)} and closed` : 'GOAWAY, still open') : 'open';
        return { sent, served, ending };
      }, 3_000);
      // The door never serves such a request: it refuses each, or ends the connection.
      expectHeld(door(), held, {
        sent: held.outcome.sent,
        served: 0,
        ending: oneOf('open', 'GOAWAY ENHANCE_YOUR_CALM and closed', 'GOAWAY COMPRESSION_ERROR and closed', 'GOAWAY PROTOCOL_ERROR and closed'),
      });
    });
  });

  describe('slow readers and unfinished uploads', () => {
    it('8 uploads of 60 MB never finished: windows reopen only within the budget, and the door ends them', async () => {
      const held = await underAttack(door(), async (underway) => {
        const c = await attacker();
        const ids = Array.from({ length: 8 }, (_, i) => 1 + 2 * i);
        for (const id of ids) {
          c.headers(id, INFER_HEADERS);
          // A gRPC message header announcing 60 MB, then the upload that never ends.
          const head = Buffer.alloc(5);
          head.writeUInt32BE(60_000_000, 1);
          c.data(id, head);
        }
        underway();
        const deadline = Date.now() + ATTACK_MS;
        const sent = await Promise.all(ids.map((id) => c.upload(id, 60_000_000, { stallMs: 1_000, deadline })));
        // Then the attacker goes quiet: each stream must be ended by the door (reset, an answer, or the connection).
        await c.until('the door to end every upload', () => c.closed || !!c.goaway || ids.every((id) => c.streamEnded(id)), TIMEOUTS.streamIdleMs + TIMEOUT_SLACK_MS).catch(() => undefined);
        return { uploadedMiB: mib(sent.reduce((a, b) => a + b, 0)), ended: c.closed || !!c.goaway || ids.every((id) => c.streamEnded(id)) };
      });
      expectHeld(door(), held, { uploadedMiB: held.outcome.uploadedMiB, ended: true });
    });

    it('8 connections with an upload of 12 MB each, never finished: the door-wide budget holds, and the door ends them', async () => {
      const held = await underAttack(door(), async (underway) => {
        const conns = await Promise.all(Array.from({ length: 8 }, () => attacker()));
        const head = Buffer.alloc(5);
        head.writeUInt32BE(12_000_000, 1);
        for (const c of conns) {
          c.headers(1, INFER_HEADERS);
          c.data(1, head);
        }
        underway();
        const deadline = Date.now() + ATTACK_MS;
        const sent = await Promise.all(conns.map((c) => c.upload(1, 12_000_000, { stallMs: 1_000, deadline })));
        const over = () => conns.every((c) => c.closed || !!c.goaway || c.streamEnded(1));
        await conns[0]!.until('the door to end every upload', over, TIMEOUTS.streamIdleMs + TIMEOUT_SLACK_MS).catch(() => undefined);
        return { uploadedMiB: mib(sent.reduce((a, b) => a + b, 0)), ended: over() };
      });
      // The door holds at most its 32 MiB budget of these uploads; beside it, the socket chunks they
      // were read in are garbage in the young generation: 62-66 MiB of growth was seen.
      expectHeld(door(), held, { uploadedMiB: held.outcome.uploadedMiB, ended: true });
    });

    it('16 answers of 8 MB to a client whose windows are shut: the door holds no more than its budget and ends them', async () => {
      const held = await underAttack(door(), async (underway) => {
        const c = await attacker({ settings: [[SETTING.INITIAL_WINDOW_SIZE, 0]] });
        const ids = Array.from({ length: 16 }, (_, i) => 1 + 2 * i);
        const elements = 2 * MiB; // 8 MiB of FP32
        const input = Buffer.alloc(elements * 4, 1);
        const message = grpcMessage(serialize({ model_name: 'identity', inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, elements] }], raw_input_contents: [input] }));
        const deadline = Date.now() + 10_000;
        for (const id of ids) {
          c.headers(id, INFER_HEADERS);
          underway();
          // A door that withholds its windows ends the attacker's part.
          if (!(await sendWithinWindows(c, id, message, deadline))) break;
        }
        await c.until('the door to end every call', () => c.closed || !!c.goaway || ids.every((id) => c.streamEnded(id)), TIMEOUTS.streamIdleMs + 2 * TIMEOUT_SLACK_MS).catch(() => undefined);
        return { answeredBytes: ids.reduce((n, id) => n + (c.dataBytes.get(id) ?? 0), 0), ended: c.closed || !!c.goaway || ids.every((id) => c.streamEnded(id)) };
      });
      // Beside the answers it holds (32 MiB at most), a pod decodes, runs and encodes each 8 MB
      // answer it is asked for (a few copies of it in flight): measured 62–68 MiB in all here, so
      // the bound for this case is 96 MiB (the router door took +451 MiB before its budgets). A
      // pod holds one connection to its door-wide budgets (its clients are routers, each carrying
      // every team's calls: podDoorLimitsOf), so this one client gets 32 MiB of answers and of
      // requests there, four 8 MB requests decoded, run and encoded at once: 126 MiB was seen.
      expectHeld(door(), held, { answeredBytes: 0, ended: true }, (which === 'pod' ? 176 : 96) * MiB);
    });
  });

  describe('timeouts', () => {
    it('slowloris: 50 connections send the preface a byte at a time and never finish it; each is closed', async () => {
      const held = await underAttack(door(), async (underway) => {
        const conns = await Promise.all(Array.from({ length: 50 }, () => RawH2Client.connect(door().address, { preface: false, record: false })));
        clients.push(...conns);
        const start = Date.now();
        for (let i = 0; i < PREFACE.length - 1 && Date.now() - start < TIMEOUTS.prefaceMs + TIMEOUT_SLACK_MS && conns.some((c) => !c.closed); i++) {
          for (const c of conns) c.write(PREFACE.subarray(i, i + 1));
          underway();
          await sleep(200);
        }
        await Promise.all(conns.map((c) => c.closedWithin(Math.max(1, start + TIMEOUTS.prefaceMs + TIMEOUT_SLACK_MS - Date.now()))));
        return conns.filter((c) => c.closed).length;
      });
      expectHeld(door(), held, 50);
    });

    it('50 connections that never send the preface are closed', async () => {
      const held = await underAttack(door(), async (underway) => {
        const start = Date.now();
        const conns = await Promise.all(Array.from({ length: 50 }, () => RawH2Client.connect(door().address, { preface: false, record: false })));
        clients.push(...conns);
        underway();
        await Promise.all(conns.map((c) => c.closedWithin(Math.max(1, start + TIMEOUTS.prefaceMs + TIMEOUT_SLACK_MS - Date.now()))));
        return conns.filter((c) => c.closed).length;
      });
      expectHeld(door(), held, 50);
    });

    it('slowloris: 20 connections send request headers a byte at a time and never finish them; each is closed', async () => {
      const held = await underAttack(door(), async (underway) => {
        const conns = await Promise.all(Array.from({ length: 20 }, () => attacker()));
        const start = Date.now();
        // A literal field whose value claims 100 octets, sent one CONTINUATION octet at a time.
        for (const c of conns) c.headers(1, Buffer.concat([fieldBlock(INFER_HEADERS), Buffer.from([0x00]), hpack.string('x-slow'), Buffer.from([100])]), { endHeaders: false });
        for (let i = 0; i < 100 && Date.now() - start < TIMEOUTS.headersMs + TIMEOUT_SLACK_MS && conns.some((c) => !c.closed); i++) {
          for (const c of conns) if (!c.closed) c.continuation(1, Buffer.from('s'), false);
          underway();
          await sleep(200);
        }
        await Promise.all(conns.map((c) => c.closedWithin(Math.max(1, start + TIMEOUTS.headersMs + TIMEOUT_SLACK_MS - Date.now()))));
        return conns.filter((c) => c.closed).length;
      });
      expectHeld(door(), held, 20);
    });

    it('a client that never acknowledges the door\'s SETTINGS: GOAWAY SETTINGS_TIMEOUT', async () => {
      const held = await underAttack(door(), async (underway) => {
        const c = await RawH2Client.connect(door().address, { ackSettings: false, record: false });
        clients.push(c);
        underway();
        return c.goawayWithin(TIMEOUTS.settingsAckMs + TIMEOUT_SLACK_MS);
      });
      expectHeld(door(), held, 'GOAWAY SETTINGS_TIMEOUT and closed');
    });

    it('keepalive abuse: PINGs every 10 ms are answered with GOAWAY ENHANCE_YOUR_CALM', async () => {
      const held = await underAttack(door(), async (underway) => {
        const c = await attacker();
        const deadline = Date.now() + ATTACK_MS;
        for (let i = 0; !c.goaway && !c.closed && Date.now() < deadline; i++) {
          c.ping(i);
          underway();
          await sleep(10);
        }
        return c.goawayWithin(2_000);
      });
      expectHeld(door(), held, 'GOAWAY ENHANCE_YOUR_CALM and closed');
    });

    it('an idle connection kept busy with PINGs is still closed by the idle timeout', async () => {
      const held = await underAttack(door(), async (underway) => {
        const c = await attacker();
        const start = Date.now();
        // Less often than the keepalive policy's shortest interval: only the idle timeout should end this connection.
        for (let i = 0; !c.goaway && !c.closed && Date.now() - start < TIMEOUTS.idleMs + TIMEOUT_SLACK_MS; i++) {
          c.ping(i);
          underway();
          await sleep(500);
        }
        return c.goaway ? ((await c.closedWithin(3_000)) ? `GOAWAY ${errorName(c.goaway.code)} and closed` : 'GOAWAY, still open') : c.closed ? 'closed' : 'open';
      });
      expectHeld(door(), held, 'GOAWAY NO_ERROR and closed');
    });
  });

  // Any process in the door's network namespace (a sidecar of the Kubernetes pod, a user of the
  // host) could call a grpc-js server on a loopback port directly, past the door's authentication
  // and limits: the server behind the door has no port.
  describe('a local process beside the door', () => {
    it('finds no TCP port but those the service advertises: the grpc-js server behind the door listens on a Unix socket, and answers through the door', async () => {
      const { tcpPorts, unixPaths } = listenersOf(door().pid);
      expect({ tcpPorts, unixPaths }).toEqual({
        tcpPorts: [...door().advertisedPorts].sort((a, b) => a - b),
        unixPaths: [expect.stringMatching(/\/infermesh-grpc-[^/]+\/grpc\.sock$/)],
      });
      // Calls the door pipes to that server still get there.
      expect((await door().api.metadata('mnist')).name).toBe('mnist');
      expect((await door().api.repositoryIndex()).map((m) => m.name)).toContain('mnist');
    });

    it('cannot enter the socket\'s directory unless it runs as the service\'s user (mode 0700)', () => {
      const socket = listenersOf(door().pid).unixPaths[0];
      expect(socket).toBeDefined();
      const dir = fs.statSync(path.dirname(socket!));
      expect({ mode: (dir.mode & 0o7777).toString(8), owner: dir.uid }).toEqual({ mode: '700', owner: fs.statSync(`/proc/${door().pid}`).uid });
      if (process.getuid?.() === 0) {
        // Opening a socket as a file fails ENXIO once the path is reached; another user is stopped
        // before, at the directory (EACCES). As root the suite can be that other user.
        const open = (uid?: number) => spawnSync('sh', ['-c', 'exec 3< "$1"', 'sh', socket!], { encoding: 'utf8', ...(uid === undefined ? {} : { uid, gid: uid }) }).stderr;
        expect({ service: open(), other: open(65534) }).toEqual({ service: expect.stringMatching(/No such device or address/), other: expect.stringMatching(/Permission denied/) });
      }
    });
  });
});

/** Streams from 3 below `next` that the door has ended. */
function answered(c: RawH2Client, next: number): number {
  let n = 0;
  for (let id = 3; id < next; id += 2) if (c.streamEnded(id)) n++;
  return n;
}

/** Streams from 3 below `next` answered with grpc-status 0. */
function servedOk(c: RawH2Client, next: number): number {
  let n = 0;
  for (let id = 3; id < next; id += 2) if (c.blocks(id).some((b) => valueOf(b, 'grpc-status') === '0')) n++;
  return n;
}

/**
 * Sends `message` on `id` as DATA with END_STREAM, as fast as the door's windows allow; true once
 * all of it went, false when the windows stayed shut for a second, the stream or the connection
 * ended, or `deadline` passed.
 */
async function sendWithinWindows(c: RawH2Client, id: number, message: Buffer, deadline: number): Promise<boolean> {
  let off = 0;
  let stalledSince = 0;
  while (off < message.length && !c.closed && !c.goaway && !c.resets.has(id) && Date.now() < deadline) {
    const n = Math.min(message.length - off, c.sendWindow, c.streamWindow(id), 16_384);
    if (n <= 0) {
      stalledSince ||= Date.now();
      if (Date.now() - stalledSince > 1_000) return false;
      await c.next(50);
      continue;
    }
    stalledSince = 0;
    const ok = c.data(id, message.subarray(off, off + n), off + n === message.length);
    off += n;
    if (!ok) await c.drained(1_000);
  }
  return off === message.length;
}
