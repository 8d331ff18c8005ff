// Builds the registry service from its parts: NATS, JetStream resources, the domain and the server.
import { readBounded } from '../../lib/files';
import { ErrorCode, MeshError } from '../../lib/errors';
import type { Config } from '../../lib/config';
import { connectNats, jetStreamOf, metadataBucket, artifactStore, resources, NatsLiveness } from '../../lib/nats';
import { inboxPrefixOf } from '../../lib/nats-permissions';
import { ensureEventStream, eventStreamConsumerBound } from '../../lib/events';
import { createServer, listen, shutdownServer } from '../../lib/grpc/server';
import { protos } from '../../lib/grpc/proto';
import type { Logger } from '../../lib/log';
import type { RunningService } from '../../lib/lifecycle';
import { Registry } from './registry';
import { registryHandlers, sendLimitsOf, uploadLimitsOf, watchLimitsOf } from './grpc-handlers';
import { SendTally } from '../../lib/grpc/stream-send';
import { UploadStaging } from './artifact-upload';
import { Rollouts } from './rollout/rollouts';
import { RolloutController } from './rollout/rollout-controller';
import { rolloutHandlers } from './rollout/grpc-handlers';
import { loadTls } from '../../lib/tls';
import { keysBucket, startAuthenticator } from '../../lib/auth';
import { KeyStore } from './keys';
import { RegistryAccess } from './access';
import { decodeHeartbeat, subjects } from '../../lib/events';
import { PodView } from './pod-view';
import { PlacementController } from './placement/placement-controller';
import { PlacementPods } from './placement/placement-pods';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { ConsoleApi } from './console/console-api';
import { ConsoleServer } from './console/console-server';
import { warnIfUnfetchable } from '../../lib/fetch-ports';
import { ListeningClock, listeningTickMs } from '../../lib/listening-clock';

/** A started registry: its bound ports, and shutdown. */
export interface RegistryService extends RunningService {
  port: number;
  /** The web console's port; undefined with INFERMESH_CONSOLE off. */
  consolePort: number | undefined;
  registry: Registry;
  /** The placement controller (undefined with INFERMESH_PLACEMENT off): `leading` says whether this replica plans. */
  placement: PlacementController | undefined;
  /** The pods placement may put versions on (undefined with INFERMESH_PLACEMENT off). */
  placementPods: PlacementPods | undefined;
  /** The pods as their heartbeats say (ListPods, the console). */
  pods: PodView;
  /** What open PullArtifact and WatchEvents streams hold for their clients, together. */
  streams: SendTally;
}

/** Connects to NATS, ensures the KV bucket, object store and event stream, and serves on the configured port. */
export async function startRegistryService(config: Config, log: Logger): Promise<RegistryService> {
  const nc = await connectNats(config, 'infermesh-registry', log, { inboxPrefix: inboxPrefixOf('registry') });
  const { js, jsm } = jetStreamOf(nc);
  await ensureEventStream(await jsm, config.jetstreamReplicas, config.eventStreamMaxConsumers);
  const consumerBound = await eventStreamConsumerBound(await jsm);
  if (consumerBound !== config.eventStreamMaxConsumers) {
    log.warn('the event stream has another consumer bound than INFERMESH_EVENT_STREAM_MAX_CONSUMERS (it was made before, and nats-server does not change it): recreate the stream to apply it', { stream: resources.eventStream, maxConsumers: consumerBound, wanted: config.eventStreamMaxConsumers });
  }
  const [kv, artifacts] = await Promise.all([metadataBucket(nc, config.jetstreamReplicas), artifactStore(nc, config.jetstreamReplicas)]);
  // The pods, for people (ListPods, the console) and placement: from their heartbeats, which only pods may publish.
  // Pods' silences are judged on what this loop has read: a stall past the TTL forgets no pod whose
  // heartbeats queued meanwhile, nor judges a rollout window before its reports (lib/listening-clock.ts).
  const listening = new ListeningClock(listeningTickMs(config.podTtlMs)).start();
  const pods = new PodView(config.podTtlMs, config.registryMaxPods, config.registryMaxPodBytes, Date.now, listening);
  // Pushes stage their bytes here; folders a registry that stopped mid-push left are removed below.
  const uploads = new UploadStaging(config.registryUploadDir || os.tmpdir());
  // The registry is the keys bucket's only writer: it creates it, whether authentication is on or not,
  // so routers can bind it; its records keep outboxes the registry flushes with the models'.
  const keysKv = await keysBucket(nc, { replicas: config.jetstreamReplicas, create: true });
  const registry = new Registry({ kv, artifacts, js, log, keys: keysKv, maxArtifactBytes: config.maxArtifactBytes, uploads, maxModelMetadataBytes: config.maxModelMetadataBytes, maxWarmupConfigBytes: config.maxWarmupConfigBytes, maxWarmupRuns: config.maxWarmupRuns, maxWarmupElements: config.maxWarmupElements, placement: config.placement,
    maxGraphNodes: config.maxGraphNodes,
    maxPayloadBytes: nc.info?.max_payload,
    outboxIntervalMs: config.registryOutboxIntervalMs,
    outboxCallWaitMs: config.registryOutboxCallWaitMs,
    outboxFlushBudgetMs: config.registryOutboxFlushBudgetMs,
    outboxPublishTimeoutMs: config.registryOutboxPublishTimeoutMs,
    outboxPublishAttempts: config.registryOutboxPublishAttempts,
    outboxVersionWriteGraceMs: config.registryOutboxVersionWriteGraceMs,
    eventFollowAheadBytes: config.eventFollowAheadBytes,
    // The placement controller's own judgement (the same estimate and budgets it plans with).
    unplaceable: (sizeBytes) => placement?.refusal(sizeBytes) });

  // The bootstrap admin key is stored before the registry takes any call.
  const keys = new KeyStore(keysKv, registry.keyOutbox(), log);
  if (config.authBootstrapTokenFile) {
    // An API key is one line of about 60 characters: a file far larger is not one, and is not read.
    let token: string;
    try {
      token = (await readBounded(config.authBootstrapTokenFile, 4096)).toString('utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new MeshError(ErrorCode.InvalidArgument, `INFERMESH_AUTH_BOOTSTRAP_TOKEN_FILE ${code ? `${config.authBootstrapTokenFile} cannot be read: ${code}` : (err as Error).message}`);
    }
    await keys.ensureBootstrap(token, 'INFERMESH_AUTH_BOOTSTRAP_TOKEN_FILE');
  }
  const rollouts = new Rollouts(registry, Date.now, log, { maxUncountedWindows: config.rolloutMaxUncountedWindows });
  // Every replica analyses the routers' windows; compare-and-set makes each window count once.
  const controller = new RolloutController(nc, rollouts, config.analysisWindowMs, log, undefined, listening, config.rolloutMaxRouterReports);
  controller.start();

  // TLS on (certificate files set): the registry's ports take TLS only, and client certificates with INFERMESH_TLS_CLIENT_AUTH.
  const tls = loadTls(config, log);
  // The pods placement may use: with TLS on, only those whose certificates prove who their heartbeats claim.
  const placementPods = config.placement ? new PlacementPods(config.podTtlMs, config.registryMaxPods, tls, log, Date.now, undefined, listening) : undefined;
  const heartbeats = nc.subscribe(subjects.heartbeat, {
    callback: (err, msg) => {
      if (err) return;
      try {
        const hb = decodeHeartbeat(msg.data);
        pods.update(hb, msg.data.length);
        placementPods?.update(hb, msg.data.length);
      } catch (e) {
        log.debug('skipping malformed heartbeat', { err: e });
      }
    },
  });
  const expiry = setInterval(() => pods.expire(), Math.max(100, Math.floor(config.podTtlMs / 2))).unref();
  nc.publish(subjects.discover);
  // While NATS is away or hangs, a pod's silence is not its own: neither view forgets it (nor does
  // placement move its versions); once NATS answers, every pod is asked to speak up.
  const liveness = new NatsLiveness(nc, config, log, (available) => {
    pods.setHeartbeatsAvailable(available);
    placementPods?.setHeartbeatsAvailable(available);
    if (available && !nc.isClosed()) nc.publish(subjects.discover);
  }).start();

  const authenticator = config.authEnabled ? await startAuthenticator(config, nc, liveness, log, { createBucket: true }) : undefined;
  // Pods and routers are known by their certificates and need no token. With a CA the port asks every
  // client for a certificate (required only with INFERMESH_TLS_CLIENT_AUTH), and grpc-js hands over
  // only one that verified against the CA; people and programs without one bring a token.
  const access = new RegistryAccess(authenticator, { serviceCertificates: Boolean(config.tlsCertFile && config.tlsCaFile) });

  // Which pods hold which versions: every replica follows, the lease holder plans (docs/placement.md).
  const placement = placementPods ? new PlacementController({
    kv, nc, registry, pods: placementPods, log,
    replica: `${os.hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`,
    options: {
      minCopies: config.placementMinCopies,
      requestsPerCopy: config.placementRequestsPerCopy,
      minResidencyMs: config.placementMinResidencyMs,
      evictIdleMs: config.placementEvictIdleMs,
      leaseMs: config.placementLeaseMs,
      intervalMs: config.placementIntervalMs,
      versionOverheadBytes: config.placementVersionOverheadMb * 1024 * 1024,
      memoryReservePercent: config.placementMemoryReservePercent,
      warmupMs: config.podTtlMs,
    },
  }) : undefined;
  placement?.start();

  let consoleApi: ConsoleApi | undefined;
  let consoleServer: ConsoleServer | undefined;
  let consolePort: number | undefined;
  if (config.consoleEnabled) {
    consoleApi = new ConsoleApi(registry, rollouts, pods, controller, config.analysisWindowMs, { windowsKept: config.consoleWindowsKept, eventsKept: config.consoleEventsKept, eventsKeptBytes: config.consoleEventsKeptBytes, podsEveryMs: config.consolePodsIntervalMs }, log);
    consoleApi.start(Number((await (await jsm).streams.info(resources.eventStream)).state.last_seq));
    consoleServer = new ConsoleServer({
      api: consoleApi,
      access,
      tls,
      log,
      recheckMs: config.watchRecheckMs,
      // With authentication on, a page of another site learns nothing without a token.
      allowedHosts: config.authEnabled ? ['*'] : config.consoleAllowedHosts,
      limits: {
        maxBodyBytes: config.consoleMaxBodyBytes,
        maxStreams: config.consoleMaxStreams,
        maxStreamsPerCaller: config.consoleMaxStreamsPerCaller,
        maxStreamBufferBytes: config.consoleMaxStreamBufferBytes,
        maxHeaderBytes: config.httpMaxHeaderBytes,
        maxHeaders: config.httpMaxHeaders,
        headersTimeoutMs: config.httpHeadersTimeoutMs,
        requestTimeoutMs: config.httpRequestTimeoutMs,
        keepAliveTimeoutMs: config.httpKeepAliveTimeoutMs,
        lingeringTimeMs: config.httpLingeringTimeMs,
        lingeringTimeoutMs: config.httpLingeringTimeoutMs,
        maxConnections: config.httpMaxConnections,
      },
    });
    consolePort = await consoleServer.listen(config.listenHost, config.consolePort);
  }

  const { server, health } = createServer({ maxMessageBytes: config.maxMessageBytes });
  const streams = new SendTally();
  server.addService(protos().registry.Registry.service, registryHandlers(registry, keys, access, pods, log, config.watchRecheckMs, watchLimitsOf(config), uploadLimitsOf(config), sendLimitsOf(config), streams));
  server.addService(protos().rollouts.Rollouts.service, rolloutHandlers(rollouts, access, log));
  const port = await listen(server, config.listenHost, config.registryPort, tls && { files: tls, clientAuth: config.tlsClientAuth });
  health.set('', 'SERVING');
  health.set('infermesh.registry.v1.Registry', 'SERVING');
  health.set('infermesh.registry.v1.Rollouts', 'SERVING');
  // httpPort: the console's (the local mesh reads both from this line).
  log.info('listening', { port, httpPort: consolePort, auth: config.authEnabled });
  warnIfUnfetchable(log, 'the console', consolePort);

  // Artifacts left by a delete that was interrupted: at start-up, then every interval, one at a time.
  let sweeping: Promise<unknown> | undefined;
  const sweep = () => {
    sweeping ??= registry.sweepArtifacts(config.artifactSweepMinAgeMs)
      .catch((err: unknown) => log.warn('artifact sweep failed; the next one retries', { err }))
      .finally(() => (sweeping = undefined));
  };
  const sweeper = config.artifactSweepIntervalMs > 0 ? setInterval(sweep, config.artifactSweepIntervalMs).unref() : undefined;
  if (sweeper) sweep();

  // Events a write stored with it but did not publish (its registry killed, NATS timing out): at
  // start-up every model's record is read, then every interval those the outbox index names; one
  // flush at a time.
  let flushing = false;
  let flushedOnce = false;
  const flushOutboxes = () => {
    if (flushing) return;
    flushing = true;
    registry.flushOutboxes(flushedOnce ? 'marked' : 'every-record')
      .then(() => (flushedOnce = true))
      .catch((err: unknown) => log.warn('publishing pending events failed; the next flush retries', { err }))
      .finally(() => (flushing = false));
  };
  const outboxFlusher = setInterval(flushOutboxes, config.registryOutboxIntervalMs).unref();
  flushOutboxes();

  // Upload folders no push touches any more (a registry killed mid-push): at start-up, then every
  // INFERMESH_REGISTRY_UPLOAD_SWEEP_MIN_AGE_MS, so one is gone within twice that.
  let sweepingUploads = false;
  const sweepUploads = () => {
    if (sweepingUploads) return;
    sweepingUploads = true;
    uploads.sweep(config.registryUploadSweepMinAgeMs)
      .then((n) => n > 0 && log.warn('removed upload folders no push had touched (left by a registry that stopped mid-push)', { folders: n, dir: uploads.dir }))
      .catch((err: unknown) => log.warn('upload folder sweep failed; the next one retries', { dir: uploads.dir, err }))
      .finally(() => (sweepingUploads = false));
  };
  const uploadSweeper = setInterval(sweepUploads, config.registryUploadSweepMinAgeMs).unref();
  sweepUploads();

  return {
    port,
    consolePort,
    registry,
    placement,
    pods,
    placementPods,
    streams,
    async shutdown(budgetMs) {
      health.set('', 'NOT_SERVING');
      health.set('infermesh.registry.v1.Registry', 'NOT_SERVING');
      health.set('infermesh.registry.v1.Rollouts', 'NOT_SERVING');
      health.closeWatchers();
      controller.stop();
      await placement?.stop();
      placementPods?.stop();
      clearInterval(sweeper);
      clearInterval(uploadSweeper);
      clearInterval(outboxFlusher);
      clearInterval(expiry);
      liveness.stop();
      listening.stop();
      heartbeats.unsubscribe();
      await consoleServer?.close(Math.min(1_000, budgetMs / 4));
      await consoleApi?.stop();
      // A sweep in progress finishes the artifact it holds; shutdown waits for it within the budget.
      if (sweeping) await Promise.race([sweeping, new Promise((r) => setTimeout(r, Math.min(5_000, budgetMs / 2)))]);
      const drained = shutdownServer(server, budgetMs);
      // Open WatchEvents streams never finish by themselves: end them so the drain does not wait.
      await registry.close();
      await drained;
      tls?.close();
      await authenticator?.stop();
      await nc.drain().catch(() => undefined);
    },
  };
}
