// `infermesh up`: the one-command local mesh (npm start). Starts NATS (unless INFERMESH_NATS_URL is
// set), the registry, the router on 127.0.0.1:8001 and two pods; pushes the demo model as `mnist`;
// prints how to call it; restarts NATS, the registry, the router or a pod that exits unasked (cli/local-mesh/
// supervisor.ts); and on Ctrl-C stops everything. Data stays in .infermesh/ between runs. Its NATS
// takes only the nkeys made at this start (.infermesh/nats-auth/), one per service kind.
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { RegistryApi, InferenceApi, RolloutApi, type ConnectOptions } from '../client/index';
import { startLocalMesh } from './local-mesh/mesh';
import { refusedPortWarning } from '../lib/fetch-ports';
import { ROOT } from './local-mesh/service-process';
import { MNIST_EXAMPLE } from '../tools/models/write-models';

/** Options of `up`. */
export interface UpOptions {
  dataDir: string;
  natsUrl?: string;
  routerPort: number;
  registryPort: number;
  pods: number;
  verbose: boolean;
  /** TLS on every hop and tokens at the router and the registry (cli/local-mesh/secure.ts); default off. */
  secure?: boolean;
}

const DEMO_MODEL = 'mnist';

export async function up(opts: UpOptions): Promise<void> {
  const say = (msg: string) => console.log(msg);
  say(`infermesh: starting a local mesh (data in ${path.relative(process.cwd(), opts.dataDir) || '.'})`);
  const mesh = await startLocalMesh({
    dataDir: opts.dataDir,
    natsUrl: opts.natsUrl,
    routerPort: opts.routerPort,
    registryPort: opts.registryPort,
    pods: opts.pods,
    secure: opts.secure,
    onLine: opts.verbose ? (label, line) => console.error(`[${label}] ${line}`) : undefined,
    // A process that exits unasked is restarted while the rest keep serving; say so.
    onRestart: (line) => console.error(`infermesh: ${line}`),
  });
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('\ninfermesh: stopping router, pods, registry and NATS...');
    await mesh.stop();
    say('infermesh: stopped');
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  try {
    await pushDemo(mesh.registryAddress, mesh.routerAddress, say, mesh.security ? { ca: mesh.security.caPem, token: mesh.security.token } : {});
  } catch (err) {
    console.error(`infermesh: could not serve the demo model: ${(err as Error).message}`);
    await stop(1);
    return;
  }
  const rel = (file: string) => path.relative(process.cwd(), file) || file;
  const secured = mesh.security ? `
Secure: TLS on every port and to NATS (a new CA at each start), tokens at the router and the registry.
  CA:           ${rel(mesh.security.caFile)}
  Admin token:  ${rel(mesh.security.tokenFile)}   (never share it; make narrower ones: npx infermesh keys create --name me --grant infer)
  For the commands below:  export INFERMESH_CA=${rel(mesh.security.caFile)} INFERMESH_TOKEN=$(cat ${rel(mesh.security.tokenFile)})
` : '';
  const http = mesh.routerHttpAddress;
  const example = rel(path.join(ROOT, 'models', MNIST_EXAMPLE));
  const curl = !http ? '' : mesh.security
    ? `  curl -s --cacert $INFERMESH_CA -H "Authorization: Bearer $INFERMESH_TOKEN" https://${http}/v2/models/${DEMO_MODEL}/infer -d @${example}\n`
    : `  curl -s ${http}/v2/models/${DEMO_MODEL}/infer -d @${example}      # a held-out image of a 7\n`;
  const consoleLine = mesh.consoleUrl ? `
  Console:  ${mesh.consoleUrl}${mesh.security ? '   (paste the admin token; the browser must trust the CA above)' : ''}
` : '';
  say(`
infermesh is serving '${DEMO_MODEL}' on ${mesh.routerAddress} (Open Inference Protocol / KServe v2 gRPC)${http ? ` and ${http} (HTTP/REST)` : ''}.
${consoleLine}${secured}
  Router (front door):  ${mesh.routerAddress} (gRPC)${http ? `, ${http} (HTTP/REST)` : ''}
  Registry:             ${mesh.registryAddress}${mesh.consoleUrl ? ` (console: ${mesh.consoleUrl})` : ''}
  Inference pods:       ${mesh.pods.map((p) => `127.0.0.1:${p.port}`).join(', ')}
  NATS:                 ${mesh.security ? mesh.natsUrl.replace(/^nats:/, 'tls:') : mesh.natsUrl}${mesh.natsCredentials ? ` (nkeys only; an operator's: ${path.relative(process.cwd(), mesh.natsCredentials.seedFiles.admin)})` : ''}
  Logs:                 ${path.join(opts.dataDir, 'logs')}

Try it:
${curl}  npx infermesh models --registry ${mesh.registryAddress}
  npx infermesh infer ${DEMO_MODEL} --digit 7 --router ${mesh.routerAddress}
  npx infermesh infer ${DEMO_MODEL} --input request.json      # {"inputs":[{"name":"input","datatype":"FP32","shape":[1,784],"data":[...]}]}
  npx infermesh push my-model model.onnx --registry ${mesh.registryAddress}

Any KServe v2 / Triton gRPC client works, e.g. tritonclient.grpc.InferenceServerClient("${mesh.routerAddress}").

Press Ctrl-C to stop.`);
  // The services log this too (lib/fetch-ports.ts); here it is where the person who chose the port looks.
  for (const line of refusedDoorLines(http, mesh.consoleUrl)) console.error(line);
}

/**
 * A line for each HTTP door (the REST door at `httpAddress`, host:port; the console at `consoleUrl`)
 * on a port browsers and fetch() refuse.
 */
export function refusedDoorLines(httpAddress: string | undefined, consoleUrl: string | undefined): string[] {
  return [
    refusedPortWarning('the HTTP/REST door', httpAddress ? Number(httpAddress.slice(httpAddress.lastIndexOf(':') + 1)) : undefined),
    refusedPortWarning('the console', consoleUrl ? Number(new URL(consoleUrl).port) : undefined),
  ].filter((w): w is string => w !== undefined).map((w) => `infermesh: ${w}`);
}

/** Pushes models/mnist.onnx unless the latest version already has the same bytes; waits until it serves. */
async function pushDemo(registryAddress: string, routerAddress: string, say: (m: string) => void, connect: ConnectOptions): Promise<void> {
  const file = path.join(ROOT, 'models', 'mnist.onnx');
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`npm run setup\``);
  const sha256 = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  const registry = new RegistryApi(registryAddress, connect);
  const router = new InferenceApi(routerAddress, connect);
  try {
    const latest = await registry.version(DEMO_MODEL, 0).catch(() => undefined);
    if (latest?.sha256 === sha256) {
      say(`infermesh: '${DEMO_MODEL}' version ${latest.version} is already in the registry`);
    } else {
      const v = await registry.push(DEMO_MODEL, file, { expectedSha256: sha256 });
      say(`infermesh: pushed ${path.relative(process.cwd(), file)} as '${DEMO_MODEL}' version ${v.version}`);
      if (latest) {
        // A rebuilt demo model replaces the old one at once (a rollout straight to 100%).
        const rollouts = new RolloutApi(registryAddress, connect);
        try {
          await rollouts.start(DEMO_MODEL, v.version, { weight: 100 });
          await rollouts.promote(DEMO_MODEL, 'the local mesh serves the demo model as built');
        } finally {
          rollouts.close();
        }
      }
    }
    const deadline = Date.now() + 60_000;
    while (!(await router.modelReady(DEMO_MODEL).catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`'${DEMO_MODEL}' not ready after 60 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    registry.close();
    router.close();
  }
}
