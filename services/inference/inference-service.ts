// Builds an inference pod from its parts: NATS, the registry client, the artifact cache, the model
// repository, the gRPC server, heartbeats and the registry follower; and shuts it down in order.
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../../lib/config';
import { connectNats, jetStreamOf } from '../../lib/nats';
import { inboxPrefixOf } from '../../lib/nats-permissions';
import { ensureEventStream } from '../../lib/events';
import { createServer, listenBehindDoor, shutdownServer } from '../../lib/grpc/server';
import { INFERENCE_EXTENSIONS } from '../../lib/grpc/extensions';
import { registryClient } from '../../lib/grpc/client';
import type { Logger } from '../../lib/log';
import type { RunningService } from '../../lib/lifecycle';
import { VERSION } from '../../lib/version';
import { ArtifactCache } from './artifact-cache';
import { ModelRepository } from './model-repository';
import { registerPodMetrics } from './pod-metrics';
import { PodFrontDoor } from './front-door';
import { inferenceHandlers } from './grpc-handlers';
import { scannedInferenceService } from '../../lib/grpc/scanned-service';
import { streamLimitsOf } from '../../lib/grpc/stream-infer';
import { scanLimitsOf } from '../../lib/grpc/request-scan';
import { HeartbeatPublisher } from './heartbeat';
import { HeartbeatSigner } from '../../lib/heartbeat-signatures';
import { cpuBudget, intraOpThreads, memoryBudget } from './cgroup-limits';
import { SessionHost, setAsideWorkers, sharedHostOptions, unstoppableWorkers } from './session-host';
import { TrafficFollower } from '../../lib/traffic-follower';
import { versionsHeldBy } from '../../lib/placement';
import { doorBudgetsOf } from '../../lib/h2/budget';
import { h2LimitsOf, type H2Limits } from '../../lib/h2/limits';
import { certificateIdentities, claimedPodIdentity, loadTls } from '../../lib/tls';
import { podPeers } from './pod-callers';

/** A started pod. */
export interface InferenceService extends RunningService {
  port: number;
  address: string;
  repo: ModelRepository;
  /** Resolves once the pod has synced with the registry. */
  synced: Promise<void>;
}

/** Protocol extensions an infermesh pod serves (ServerMetadata). */
export const EXTENSIONS = [...INFERENCE_EXTENSIONS];


/**
 * The pod's door limits. A pod's clients are routers, each carrying every team's calls on a few
 * connections: one of them holds what the whole door may (INFERMESH_H2_MAX_REQUEST_BYTES and
 * INFERMESH_H2_MAX_RESPONSE_BYTES), as a connection budget sized for one client would let one
 * team's large answers (16 MiB on their way to the router) refuse every other team's on the same
 * connection. The router holds each of its own clients to the per-connection budgets.
 */
export function podDoorLimitsOf(config: Config): H2Limits {
  return { ...h2LimitsOf(config), maxRequestBytesPerConnection: config.h2MaxRequestBytes, maxResponseBytesPerConnection: config.h2MaxResponseBytes };
}

export async function startInferenceService(config: Config, log: Logger): Promise<InferenceService> {
  // The container's CPU limit, read once here (never at import): onnxruntime would size its pools
  // from the node's cores.
  const cpus = cpuBudget();
  const threads = intraOpThreads(config.intraOpThreads, config.sessionWorkers, cpus);
  log.info('onnxruntime intra-op threads per session', { threads, sessionWorkers: config.sessionWorkers, cpus: cpus.cpus, from: config.intraOpThreads ? 'INFERMESH_INTRA_OP_THREADS' : cpus.source });
  // The session workers its small, quick versions share, each started as the first session is placed on it.
  const sessionHost = new SessionHost(sharedHostOptions(config, cpus, threads));
  log.info('shared session workers', { workers: sessionHost.size, ...sessionHost.sharing });
  // The memory its models may take, reported in heartbeats beside what they do take.
  const memory = memoryBudget(config.modelMemoryMb, config.modelMemoryHeadroomMb);
  log.info('model memory budget', { bytes: memory.bytes, from: memory.source });
  const nc = await connectNats(config, `infermesh-inference-${config.podName}`, log, { inboxPrefix: inboxPrefixOf('pod') });
  const { js, jsm } = jetStreamOf(nc);
  await ensureEventStream(await jsm, config.jetstreamReplicas, config.eventStreamMaxConsumers);
  // TLS on (certificate files set): the pod's port, its registry client and NATS over TLS; its
  // certificate names it (spiffe://infermesh/pod/<INFERMESH_POD_NAME>, or the INFERMESH_POD_IDENTITY
  // its heartbeat claims when pods share one certificate) to the routers.
  const tls = loadTls(config, log);
  if (tls) {
    // A certificate that does not prove what the heartbeats claim gets the pod no traffic: say so here too.
    const claimed = claimedPodIdentity({ pod: config.podName, identity: config.podIdentity });
    const carried = certificateIdentities(tls.current.cert);
    if (!carried.includes(claimed)) log.warn('this pod\'s certificate does not carry the identity its heartbeats claim: routers will send it no traffic', { claimed, carried });
  }
  const registry = registryClient(config.registryUrl, { maxMessageBytes: config.maxMessageBytes, tls: tls && { files: tls } });
  const modelDir = config.modelDir || path.join(os.tmpdir(), `infermesh-models-${config.podName}`);
  let drainingToRestart = false;
  const artifacts = new ArtifactCache(modelDir, registry, log);
  const repo = new ModelRepository({
    registry,
    artifacts,
    log,
    providers: config.executionProviders,
    sessionWorkers: config.sessionWorkers,
    sessionWorkerYoungGenerationMb: config.sessionWorkerYoungGenerationMb,
    sessionWorkerMaxStackMb: config.sessionWorkerMaxStackMb,
    maxGraphNodes: config.maxGraphNodes,
    sessionHost,
    intraOpThreads: threads,
    // Fitted to each version only when the pod chose the threads, never when they were set.
    serialRunUs: config.intraOpThreads ? 0 : config.intraOpSerialRunUs,
    intraOpSpinning: config.intraOpSpinning,
    warmup: config.warmup,
    loadRetry: { baseMs: config.loadRetryBaseMs, maxMs: config.loadRetryMaxMs },
    runTimeoutMs: config.runTimeoutMs,
    loadTimeoutMs: config.loadTimeoutMs,
    loadAloneMs: config.loadAloneMs,
    // Each set-aside worker holds a CPU until its run returns, which it may never do: past the
    // bound the pod drains and exits (by SIGKILL, see cannotExit), to be started anew. Only a run
    // set aside makes that decision: a restarted pod loads its versions again, so a load set aside
    // (counted all the same) would restart it over and over.
    onRunSetAside: (model, version) => {
      const held = setAsideWorkers();
      if (config.maxSetAsideWorkers === 0 || held <= config.maxSetAsideWorkers || drainingToRestart) return;
      // Once: a second SIGTERM would end the drain at once (lib/lifecycle).
      drainingToRestart = true;
      log.error('session workers set aside past INFERMESH_MAX_SET_ASIDE_WORKERS: draining to restart', { held, max: config.maxSetAsideWorkers, model, version });
      process.kill(process.pid, 'SIGTERM');
    },
    unloadGraceMs: config.unloadGraceMs,
    limits: { maxTensorElements: config.maxTensorElements, maxBytesElements: config.maxBytesElements, maxClassificationResults: config.maxClassificationResults, warmupTimeoutMs: config.warmupTimeoutMs, maxMessageBytes: config.maxMessageBytes },
    memoryBudgetBytes: memory.bytes,
    inlineRunUs: config.inlineRunUs,
    inlineMaxLoadMs: config.inlineMaxLoadMs,
    batching: {
      enabled: config.dynamicBatching,
      maxBatchSize: config.maxBatchSize,
      maxQueueDelayUs: config.maxQueueDelayUs,
      maxQueueSize: config.maxQueueSize,
    },
  });

  // onnxruntime started before any version loads: its cost is the pod's, not the first model's.
  await repo.prime(modelDir);
  const stopMetrics = registerPodMetrics(repo, config.podName);

  let draining = false;
  let synced = false;
  const { server, health } = createServer({ maxMessageBytes: config.maxMessageBytes });
  // One home for what the pod holds for its clients: its streams (on the grpc-js server behind the
  // door) count against the door's own budgets, beside its unary calls, each connection held to them.
  const doorBudgets = doorBudgetsOf(podDoorLimitsOf(config));
  server.addService(scannedInferenceService(scanLimitsOf(config)), inferenceHandlers(repo, {
    name: 'infermesh',
    version: VERSION,
    extensions: EXTENSIONS,
    ready: () => synced && !draining,
  }, streamLimitsOf(config, podDoorLimitsOf(config), { budgets: doorBudgets, who: 'the pod' }), log));
  // The pod's port is its front door (ModelInfer on bare HTTP/2); the grpc-js server behind it, on
  // a Unix socket only the door reaches, answers every other call. With client certificates
  // required, the door admits routers, the registry and pods (their health probes), and holds each
  // call to what its caller's kind may make (pod-callers.ts).
  const inner = await listenBehindDoor(server);
  const front = new PodFrontDoor({ repo, busyPoll: { windowUs: config.podBusyPollUs, cpus: cpus.cpus }, fallbackAddress: inner, maxMessageBytes: config.maxMessageBytes, scanLimits: scanLimitsOf(config), log, h2: podDoorLimitsOf(config), budgets: doorBudgets, tls: tls && { source: tls, requestCert: config.tlsClientAuth, ...(config.tlsClientAuth && podPeers) } });
  const port = await front.listen(config.listenHost, config.inferencePort);
  const address = config.advertiseAddress || `${config.advertiseHost}:${port}`;

  const heartbeat = new HeartbeatPublisher(nc, config.podName, config.podIdentity, address, config.heartbeatIntervalMs, () => ({
    models: repo.snapshot(),
    inflight: repo.inFlight(),
    memory: { budgetBytes: memory.bytes, usedBytes: repo.memoryUsed(), setAsideBytes: repo.setAsideBytes(), rssBytes: process.memoryUsage.rss() },
  }), log, { signer: tls && new HeartbeatSigner(() => tls.current.key) });
  repo.onChange(() => heartbeat.publishSoon());
  // The pod serves the versions of a model's traffic split that placement puts on it (every one with
  // placement off); reconcile() returns at once (it queues).
  const follower = new TrafficFollower(nc, js, registry, (model, traffic, record) => {
    const held = versionsHeldBy(config.podName, traffic, record);
    void repo.reconcile(model, held.versions, held.plannedBytes);
    if (record) void repo.configure(model, record);
  }, log, { resyncIntervalMs: config.registryResyncIntervalMs, eventAheadBytes: config.eventFollowAheadBytes });
  await follower.start();
  heartbeat.start();
  health.set('', 'SERVING');
  health.set('inference.GRPCInferenceService', 'SERVING');
  void follower.synced.then(() => {
    synced = true;
  });
  log.info('listening', { port, address, pod: config.podName });

  return {
    port,
    address,
    repo,
    synced: follower.synced,
    cannotExit() {
      // A worker making a session (for up to INFERMESH_LOAD_TIMEOUT_MS) or running one holds
      // process.exit as long as a set-aside one does.
      const held = unstoppableWorkers();
      return held > 0 ? `${held} session worker(s) inside onnxruntime (making a session or running one, or set aside with one past its budget)` : undefined;
    },
    async shutdown(budgetMs) {
      const deadline = Date.now() + budgetMs;
      // 1. Not ready: health NOT_SERVING, heartbeat says draining, routers stop sending.
      draining = true;
      health.set('', 'NOT_SERVING');
      health.set('inference.GRPCInferenceService', 'NOT_SERVING');
      heartbeat.draining();
      await follower.stop();
      // 2. Stop taking calls and finish in-flight ones within the budget.
      health.closeWatchers();
      await front.drain(Math.max(0, deadline - Date.now() - 1_000));
      await shutdownServer(server, Math.max(100, deadline - Date.now() - 1_000));
      inner.remove();
      // 3. Release sessions, say goodbye, drain NATS.
      await repo.unloadAll();
      await sessionHost.close();
      stopMetrics();
      await heartbeat.stop();
      registry.close();
      tls?.close();
      await nc.drain().catch(() => undefined);
    },
  };
}
