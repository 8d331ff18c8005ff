// Loaded with `node --require dist/lib/telemetry-register.js` before a service's main module, so
// the gRPC instrumentation patches grpc-js before anything imports it. The service name is the
// folder of the main script (services/<name>/main.js → infermesh-<name>).
import path from 'node:path';
import { startTelemetry } from './telemetry';

const main = process.argv[1] ?? '';
startTelemetry(`infermesh-${path.basename(path.dirname(main)) || 'service'}`);
