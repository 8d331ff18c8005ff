// Builds the router from its parts: NATS (heartbeats), the registry (traffic splits), membership,
// the balancer, the pod connections and the gRPC front door; and shuts it down in order.
import type { Config } from '../../lib/config';
import { connectNats, jetStreamOf, NatsLiveness } from '../../lib/nats';
import { inboxPrefixOf } from '../../lib/nats-permissions';
import { decodeHeartbeat, encodePlacementDemand, ensureEventStream, SCHEMA_VERSION, subjects, type TrafficWeight } from '../../lib/events';
import { createServer, listenBehindDoor, shutdownServer } from '../../lib/grpc/server';
import { INFERENCE_EXTENSIONS } from '../../lib/grpc/extensions';
import { registryClient } from '../../lib/grpc/client';
import type { Logger } from '../../lib/log';
import type { RunningService } from '../../lib/lifecycle';
import { TrafficFollower } from '../../lib/traffic-follower';
import { placementOf } from '../../lib/placement';
import { ColdStarts } from './cold-starts';
import { VERSION } from '../../lib/version';
import { policies } from './balancer';
import { ListeningClock, listeningTickMs } from '../../lib/listening-clock';
import { Membership, type Pod } from './membership';
import { PodConnections, PodIdentityCheck } from './pod-connections';
import { HeartbeatConfirmation } from '../../lib/heartbeat-confirmation';
import { HeartbeatSignatures } from '../../lib/heartbeat-signatures';
import { loadTls } from '../../lib/tls';
import { ClaimWarnings } from '../../lib/pod-claims';
import { Router } from './router';
import { TrafficSplit } from './traffic-split';
import { HealthChecker } from './health-checker';
import { VersionStats } from './version-stats';
import { encodeWindowReport, windowSubject } from '../../lib/window-stats';
import { meterOf, observeBatch } from '../../lib/metrics';
import { routerHandlers } from './grpc-handlers';
import { authenticationInterceptor, guardedHandlers, RouterAccess } from './access';
import { startAuthenticator } from '../../lib/auth';
import { FrontDoor } from './front-door';
import { forwardedInferenceService } from './forwarded-service';
import { streamLimitsOf } from '../../lib/grpc/stream-infer';
import { tracingActive } from '../../lib/telemetry';
import { doorBudgetsOf } from '../../lib/h2/budget';
import { h2LimitsOf } from '../../lib/h2/limits';
import { warnIfUnfetchable } from '../../lib/fetch-ports';
import { RestDoor } from './rest-door';

/** A started router. */
export interface RouterService extends RunningService {
  port: number;
  /** The HTTP/REST door's port (undefined: INFERMESH_ROUTER_HTTP off). */
  httpPort: number | undefined;
  membership: Membership;
  /** Resolves once the router has read the registry's traffic splits. */
  synced: Promise<void>;
  /** The traffic split this router follows for `model` (undefined: it has not read the model). */
  traffic(model: string): readonly TrafficWeight[] | undefined;
}

export async function startRouterService(config: Config, log: Logger): Promise<RouterService> {
  const nc = await connectNats(config, 'infermesh-router', log, { inboxPrefix: inboxPrefixOf('router') });
  const { js, jsm } = jetStreamOf(nc);
  await ensureEventStream(await jsm, config.jetstreamReplicas, config.eventStreamMaxConsumers);

  // TLS on (certificate files set): the door, the pods, the registry and NATS over TLS, and a pod
  // gets traffic only once its certificate proved the name its heartbeat claims.
  const tls = loadTls(config, log);
  const conns = new PodConnections(config.routerConnectionsPerPod, config.maxMessageBytes, config.routerMaxRequestsPerConnection, tls);
  let identity: PodIdentityCheck | undefined;
  // With TLS on, what a proven pod's heartbeat would change is asked of the pod (any pod can forge one).
  let confirmation: HeartbeatConfirmation<Pod> | undefined;
  // With TLS on, a proven pod's heartbeat counts only signed with the key of the certificate it proved.
  let signatures: HeartbeatSignatures<Pod> | undefined;
  // Pods' silences are judged on what this loop has read: a stall past the TTL drops no pod whose
  // heartbeats queued meanwhile (lib/listening-clock.ts).
  const listening = new ListeningClock(listeningTickMs(config.podTtlMs)).start();
  // A line per interval about refused claims, however many pods a heartbeat flood invents.
  const claimWarnings = new ClaimWarnings(log, config.refusedClaimLogIntervalMs);
  const membership = new Membership(config.podTtlMs, {
    admit: (hb) => identity?.admit(hb),
    refused: (hb, why) => claimWarnings.warn('a heartbeat of a pod not yet known is ignored', { pod: hb.pod, address: hb.address, reason: why }),
    // With TLS on, a pod joins once it proved its identity, and only then is its coming and going
    // logged: heartbeats can invent pods, or say goodbye for one not yet proven, by the thousand.
    added: (pod) => {
      if (!tls) log.info('pod joined', { pod: pod.id, address: pod.address });
      identity?.check(pod);
    },
    moveClaimed: (pod, hb, refused) => identity?.checkMove(pod, hb, refused),
    proving: (pod) => identity?.proving(pod) ?? false,
    claimed: (pod, hb) => confirmation?.claim(pod, hb),
    admits: (pod, hb) => signatures?.admits(pod, hb) ?? true,
    proven: (pod) => {
      log.info('pod joined', { pod: pod.id, address: pod.address, identity: pod.identity });
      const key = conns.keyOf(pod.address);
      if (key) signatures?.learn(pod, key);
      confirmation?.proven(pod);
    },
    removed: (pod) => {
      confirmation?.forget(pod);
      if (pod.verified !== false) log.info('pod left', { pod: pod.id, address: pod.address });
      // Another name may hold the address (pods sharing an identity can claim any name under it):
      // its connections, and the identity the address proved, stay.
      if (!membership.all().some((p) => p.address === pod.address)) conns.close(pod.address);
    },
  }, Date.now, tls !== undefined, listening, config.routerMaxPods);
  if (tls) {
    const check = (identity = new PodIdentityCheck(conns, membership, log, config.identityRetryMs, claimWarnings));
    signatures = new HeartbeatSignatures<Pod>(config, claimWarnings, (pod) => check.reprobe(pod, (key) => signatures?.learn(pod, key)));
  }
  // Each version's outcomes per window, for the rollout controller.
  const stats = new VersionStats(config.podName, config.analysisWindowMs, (report) => {
    if (!nc.isClosed()) nc.publish(windowSubject(report.model), encodeWindowReport(report));
  });
  stats.start();
  const split = new TrafficSplit(Math.random, (model, version) => stats.unready(model, version));
  // Lazy loading: a request for a placed version no pod holds waits here while it loads.
  const cold = config.routerMaxColdWaiting > 0 ? new ColdStarts(
    (model, version, waiting) => {
      if (!nc.isClosed()) nc.publish(subjects.placementDemand, encodePlacementDemand({ schema: SCHEMA_VERSION, router: config.podName, model, version, waiting }));
    },
    (model, version) => membership.candidates(model, version).length > 0,
    (model, version) => membership.loadFailure(model, version),
    { maxWaiting: config.routerMaxColdWaiting, maxWaitingPerVersion: config.routerMaxColdWaitingPerVersion, maxWaitMs: config.routerColdWaitMs, repeatMs: 1_000 },
  ) : undefined;
  if (tls) {
    confirmation = new HeartbeatConfirmation(membership, {
      serving: (pod) => conns.askServing(pod.address, config.heartbeatConfirmTimeoutMs),
      versions: (pod) => conns.askVersions(pod.address, config.heartbeatConfirmTimeoutMs),
    }, claimWarnings, log, { intervalMs: config.heartbeatConfirmIntervalMs, backoffMs: config.heartbeatConfirmBackoffMs, applied: () => cold?.check() });
  }
  const router = new Router(membership, split, policies[config.routerPolicy]!(), {
    maxOutstanding: config.routerMaxOutstanding,
    maxOutstandingPerPod: config.routerMaxOutstandingPerPod,
    retryBudgetRatio: 0.2,
    retryBudgetMinPerSecond: 10,
    ejectAfterFailures: 5,
    baseEjectionMs: 1_000,
    maxEjectionMs: 30_000,
  }, Date.now, cold);

  const heartbeats = nc.subscribe(subjects.heartbeat, {
    callback: (err, msg) => {
      if (err) return;
      try {
        const hb = decodeHeartbeat(msg.data);
        membership.update(hb);
        // Looks at the membership only: with TLS on, a proven pod's claims count once the pod confirmed them.
        cold?.check(hb.models);
      } catch (e) {
        log.warn('skipping malformed heartbeat', { err: e });
      }
    },
  });
  nc.publish(subjects.discover);
  const expiry = setInterval(() => {
    membership.expire();
    identity?.sweep();
    // A pod proves its identity (TLS) or passes a health check between heartbeats.
    cold?.check();
  }, Math.max(100, Math.floor(config.podTtlMs / 4)));
  // Keep serving the pods we know while NATS is away or hangs (the health checks still judge them);
  // ask every pod to speak up when it answers again.
  const liveness = new NatsLiveness(nc, config, log, (available) => {
    membership.setHeartbeatsAvailable(available);
    if (available && !nc.isClosed()) nc.publish(subjects.discover);
  }).start();
  const health = new HealthChecker(membership, config.healthCheckIntervalMs, log, (address) => conns.clientTls(address));
  health.start();
  const stopMetrics = observeBatch(meterOf('router'), {
    'infermesh.router.in_flight': { kind: 'gauge', description: 'Requests in flight through the router' },
    'infermesh.router.pods': { kind: 'gauge', description: 'Inference pods the router knows, by state (serving, ejected, unhealthy)' },
  }, (observe) => {
    observe('infermesh.router.in_flight', router.inFlight);
    const now = Date.now();
    const counts = { serving: 0, ejected: 0, unhealthy: 0 };
    for (const pod of membership.all()) counts[!pod.healthy ? 'unhealthy' : pod.ejectedUntil > now ? 'ejected' : 'serving']++;
    for (const [state, n] of Object.entries(counts)) observe('infermesh.router.pods', n, { state });
  });

  const registry = registryClient(config.registryUrl, { maxMessageBytes: config.maxMessageBytes, tls: tls && { files: tls } });
  const follower = new TrafficFollower(nc, js, registry, (model, traffic, record) => {
    split.set(model, traffic, placementOf(record) !== undefined);
    // Each window report says which split it was routed by (the rollout analysis judges a step on those routed by it).
    stats.routedBy(model, Number(record?.revision ?? 0) || 0, traffic);
  }, log, { resyncIntervalMs: config.registryResyncIntervalMs, eventAheadBytes: config.eventFollowAheadBytes });
  await follower.start();


  // INFERMESH_AUTH: every call but health needs a token, checked on both paths by access.ts
  // against the keys bucket (which the registry makes and writes; the router only follows it).
  const authenticator = config.authEnabled ? await startAuthenticator(config, nc, liveness, log, { createBucket: false }) : undefined;
  const access = authenticator && new RouterAccess(authenticator);

  // The typed handlers (and health) on a grpc-js server on a Unix socket only the door reaches; the
  // front door on the router's port relays ModelInfer itself and pipes every other call to it.
  // What its streams hold counts against the door's own budgets, beside the door's unary calls
  // (one total, as on the pods).
  const doorBudgets = doorBudgetsOf(h2LimitsOf(config));
  const { server, health: healthService } = createServer({ maxMessageBytes: config.maxMessageBytes, interceptors: access && [authenticationInterceptor(access, log)] });
  const handlers = routerHandlers(router, membership, conns, stats, {
    name: 'infermesh',
    version: VERSION,
    extensions: [...INFERENCE_EXTENSIONS],
  }, { maxMessageBytes: config.maxMessageBytes, streams: streamLimitsOf(config, h2LimitsOf(config), { budgets: doorBudgets, who: 'the router' }) }, log, access);
  const served = access ? guardedHandlers(handlers, access, log) : handlers;
  server.addService(forwardedInferenceService(), served);
  const inner = await listenBehindDoor(server);
  const front = new FrontDoor({ router, stats, conns, fallbackAddress: inner, maxMessageBytes: config.maxMessageBytes, maxConnectionAgeMs: config.routerMaxConnectionAgeMs, maxRequestsPerConnection: config.routerMaxRequestsPerConnection, tracing: tracingActive(), log, h2: h2LimitsOf(config), budgets: doorBudgets, tls: tls && { source: tls, requestCert: config.routerTlsClientAuth }, access });
  const port = await front.listen(config.listenHost, config.routerPort);
  // The same mesh over HTTP/REST: the same handlers (and checks) for everything but inference,
  // which is routed by the same policy as the front door's.
  const rest = config.routerHttpEnabled ? new RestDoor({
    router, stats, log, conns, handlers: served, access, tls, requestCert: config.routerTlsClientAuth,
    maxMessageBytes: config.maxMessageBytes,
    tensorLimits: { maxTensors: config.maxRequestTensors, maxParameters: config.maxRequestParameters, maxRank: config.maxTensorRank, maxElements: config.maxMessageBytes, maxBytesElements: config.maxBytesElements },
    limits: {
      maxBodyBytes: config.maxMessageBytes, maxJsonBytes: config.httpMaxJsonBytes, maxRequestBytes: config.httpMaxRequestBytes,
      maxRequestBytesPerConnection: config.httpMaxRequestBytesPerConnection, bodyTimeoutMs: config.httpBodyTimeoutMs,
      maxResponseBytes: config.httpMaxResponseBytes, maxJsonAnswerBytes: config.httpMaxJsonAnswerBytes,
      maxHeaderBytes: config.httpMaxHeaderBytes, maxHeaders: config.httpMaxHeaders, headersTimeoutMs: config.httpHeadersTimeoutMs, requestTimeoutMs: config.httpRequestTimeoutMs,
      keepAliveTimeoutMs: config.httpKeepAliveTimeoutMs, lingeringTimeMs: config.httpLingeringTimeMs, lingeringTimeoutMs: config.httpLingeringTimeoutMs, sendTimeoutMs: config.httpSendTimeoutMs, maxRequestsPerConnection: config.httpMaxRequestsPerConnection, maxConnections: config.httpMaxConnections,
    },
  }) : undefined;
  const httpPort = rest ? await rest.listen(config.listenHost, config.routerHttpPort) : undefined;
  healthService.set('', 'SERVING');
  healthService.set('inference.GRPCInferenceService', 'SERVING');
  log.info('listening', { port, httpPort });
  warnIfUnfetchable(log, 'the HTTP/REST door', httpPort);

  return {
    port,
    httpPort,
    membership,
    synced: follower.synced,
    traffic: (model) => split.get(model),
    async shutdown(budgetMs) {
      healthService.set('', 'NOT_SERVING');
      healthService.set('inference.GRPCInferenceService', 'NOT_SERVING');
      healthService.closeWatchers();
      // Requests waiting for a version to load are not kept through the drain.
      cold?.close();
      const started = Date.now();
      await Promise.all([front.drain(budgetMs), rest?.drain(budgetMs)]);
      await shutdownServer(server, Math.max(100, budgetMs - (Date.now() - started)));
      inner.remove();
      clearInterval(expiry);
      liveness.stop();
      confirmation?.stop();
      listening.stop();
      health.stop();
      stopMetrics();
      stats.roll();
      stats.stop();
      heartbeats.unsubscribe();
      await follower.stop();
      await authenticator?.stop();
      conns.closeAll();
      registry.close();
      tls?.close();
      await nc.drain().catch(() => undefined);
    },
  };
}
