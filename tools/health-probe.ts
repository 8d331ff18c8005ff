// A Kubernetes exec probe for a service whose port speaks TLS, which kubelet's gRPC probe does
// not: grpc.health.v1 Check on 127.0.0.1:<port> with the service's own TLS files (INFERMESH_TLS_*,
// its certificate sent when the port asks for one). The server's certificate must chain to the CA
// and carry an infermesh SPIFFE ID (the address is loopback, so no host name is checked).
// Exit 0 when the server answers SERVING; 1 otherwise, with why on stderr. Without TLS it probes
// in plaintext.
//   node dist/tools/health-probe.js <port> [service]
import { loadConfig } from '../lib/config';
import { healthClient, unary, channelCredentials } from '../lib/grpc/client';
import { loadTls, spiffeIdsOf, TRUST_DOMAIN } from '../lib/tls';
import { silentLogger } from '../lib/log';
import * as grpc from '@grpc/grpc-js';

async function main(argv: string[]): Promise<number> {
  const [port, service = ''] = argv;
  if (!port || !/^\d+$/.test(port)) {
    console.error('usage: node dist/tools/health-probe.js <port> [service]');
    return 2;
  }
  const config = loadConfig();
  const files = loadTls({ ...config, tlsReloadIntervalMs: 60_000 }, silentLogger);
  const credentials = files
    ? grpc.experimental.createCertificateProviderChannelCredentials(files, files, {
      checkServerIdentity: (_host, cert) => (spiffeIdsOf(cert).some((id) => id.startsWith(`spiffe://${TRUST_DOMAIN}/`)) ? undefined : new Error('the server\'s certificate carries no infermesh SPIFFE ID')),
    })
    : channelCredentials();
  // SNI may not be an IP address (RFC 6066): name it localhost; the identity check above ignores it.
  const client = healthClient(`127.0.0.1:${port}`, { credentials, channel: files ? { 'grpc.ssl_target_name_override': 'localhost' } : {} });
  try {
    const res = await unary<{ status: string }>((cb) => client.Check({ service }, { deadline: Date.now() + 4_000 }, cb));
    if (res.status === 'SERVING') return 0;
    console.error(`status ${res.status}`);
    return 1;
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    return 1;
  } finally {
    client.close();
    files?.close();
  }
}

void main(process.argv.slice(2)).then((code) => process.exit(code));
