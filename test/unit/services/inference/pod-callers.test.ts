// What each caller's certificate may call on a pod (services/inference/pod-callers.ts): routers
// every method, the registry only the two questions its placement asks (the very paths its
// clients in lib/grpc/pod-answers.ts call), anything else nothing; a refusal names the method and
// the caller's kind; a pod's own certificate only health Check, for its Kubernetes probes.
import { POD_ANSWER_PATHS } from '../../../../lib/grpc/pod-answers';
import { MODEL_INFER_PATH, protos } from '../../../../lib/grpc/proto';
import { kindsOf, spiffeId, type ServiceKind } from '../../../../lib/tls';
import { POD_PROBE_PATH, podCallRefusal } from '../../../../services/inference/pod-callers';

const inference = (m: string) => `/inference.GRPCInferenceService/${m}`;

it('names, as the registry asks them, the paths of grpc.health.v1 Check and RepositoryIndex', () => {
  expect(POD_ANSWER_PATHS).toEqual([protos().health.Health.service.Check.path, protos().inference.GRPCInferenceService.service.RepositoryIndex.path]);
});

it('lets a pod\'s certificate probe grpc.health.v1 Check, as tools/health-probe.ts does', () => {
  expect(POD_PROBE_PATH).toBe(protos().health.Health.service.Check.path);
});

it.each<[string, ServiceKind[], string, boolean]>([
  ['a router: ModelInfer', ['router'], MODEL_INFER_PATH, true],
  ['a router: a stream', ['router'], inference('ModelStreamInfer'), true],
  ['a router: statistics', ['router'], inference('ModelStatistics'), true],
  ['a router: health Watch', ['router'], '/grpc.health.v1.Health/Watch', true],
  ['a router that is also the registry: ModelInfer', ['router', 'registry'], MODEL_INFER_PATH, true],
  ['the registry: health Check', ['registry'], '/grpc.health.v1.Health/Check', true],
  ['the registry: RepositoryIndex', ['registry'], inference('RepositoryIndex'), true],
  ['the registry: ModelInfer', ['registry'], MODEL_INFER_PATH, false],
  ['the registry: a stream', ['registry'], inference('ModelStreamInfer'), false],
  ['the registry: RepositoryModelLoad', ['registry'], inference('RepositoryModelLoad'), false],
  ['the registry: RepositoryModelUnload', ['registry'], inference('RepositoryModelUnload'), false],
  ['the registry: statistics', ['registry'], inference('ModelStatistics'), false],
  ['the registry: health Watch', ['registry'], '/grpc.health.v1.Health/Watch', false],
  ['the registry: reflection', ['registry'], '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo', false],
  ['the registry: a path that differs in case', ['registry'], '/grpc.health.v1.Health/check', false],
  ['the registry: no path', ['registry'], '', false],
  ['a pod (its own Kubernetes probe): health Check', ['pod'], '/grpc.health.v1.Health/Check', true],
  ['a pod: health Watch', ['pod'], '/grpc.health.v1.Health/Watch', false],
  ['a pod: ModelInfer', ['pod'], MODEL_INFER_PATH, false],
  ['a pod: RepositoryIndex', ['pod'], inference('RepositoryIndex'), false],
  ['no identity: ModelInfer', [], MODEL_INFER_PATH, false],
])('%s', (_what, kinds, path, allowed) => {
  const refusal = podCallRefusal(kinds, path);
  if (allowed) return expect(refusal).toBeUndefined();
  expect(refusal).toContain(path);
  expect(refusal).toContain(kinds[0] ?? 'client');
});

it('reads the caller\'s kinds from the SPIFFE IDs its certificate carries, each once', () => {
  expect(kindsOf([spiffeId('registry', 'r')])).toEqual(['registry']);
  expect(kindsOf([spiffeId('pod', 'a'), spiffeId('router', 'b'), spiffeId('router', 'c')])).toEqual(['router', 'pod']);
  expect(kindsOf(['spiffe://elsewhere/router/a', 'spiffe://infermesh/routers/a', 'spiffe://infermesh/router'])).toEqual([]);
});
