// `npm start -- --secure`: the local mesh with TLS on every hop (the services' ports and NATS),
// client certificates required by the pods (whose only callers are routers), and tokens at the
// router and the registry. At every start a fresh CA, whose key stays in this process's memory
// (nothing on disk can mint an identity), issues each service a certificate naming it
// (spiffe://infermesh/<kind>/<name>, for localhost and 127.0.0.1), written under <dataDir>/tls with
// the CA's certificate, ca.crt, which clients trust. The admin token is made once, kept in
// <dataDir>/admin.token (0600) and given to the registry as its bootstrap key (only its hash is
// stored).
import fs from 'node:fs';
import path from 'node:path';
import { newApiKey } from '../../lib/auth';
import { createCa, issueCertificate, writePem, type CertificateAuthority } from '../../lib/pki';
import type { ServiceKind } from '../../lib/tls';

/** What a secured local mesh gives its services and its clients. */
export interface MeshSecurity {
  /** The CA's certificate (PEM file): what clients verify the mesh against (`--ca`, INFERMESH_CA). */
  caFile: string;
  caPem: string;
  /** The admin token's file (0600), and the token. */
  tokenFile: string;
  token: string;
  /** The TLS settings of a service of `kind` named `name`, with a certificate issued now. */
  envOf(kind: ServiceKind, name: string): Promise<Record<string, string>>;
  /** nats-server's TLS flags: its certificate, and client certificates required. */
  natsArgs(): Promise<string[]>;
}

/** The admin token in `file`, made (and written 0600) when there is none. */
function adminToken(file: string): string {
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  const { token } = newApiKey();
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  return token;
}

/** A fresh CA and the admin token for a mesh keeping its data in `dataDir`. */
export async function meshSecurity(dataDir: string): Promise<MeshSecurity> {
  const dir = path.join(dataDir, 'tls');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const ca: CertificateAuthority = await createCa({ commonName: 'infermesh local CA' });
  const caFile = path.join(dir, 'ca.crt');
  fs.writeFileSync(caFile, ca.cert);
  const tokenFile = path.join(dataDir, 'admin.token');
  const token = adminToken(tokenFile);
  const issue = async (kind: ServiceKind, name: string) => writePem(dir, `${kind}-${name}`, await issueCertificate(ca, { kind, name }), ca);
  return {
    caFile,
    caPem: ca.cert,
    tokenFile,
    token,
    async envOf(kind, name) {
      const files = await issue(kind, name);
      return {
        INFERMESH_TLS_CERT_FILE: files.certFile,
        INFERMESH_TLS_KEY_FILE: files.keyFile,
        INFERMESH_TLS_CA_FILE: files.caFile,
        // Pods take only routers; the registry and the router take people and programs with tokens
        // (and know the services by the certificates they present).
        INFERMESH_TLS_CLIENT_AUTH: String(kind === 'pod'),
        INFERMESH_AUTH: String(kind !== 'pod'),
        ...(kind === 'registry' && { INFERMESH_AUTH_BOOTSTRAP_TOKEN_FILE: tokenFile }),
      };
    },
    async natsArgs() {
      const f = await issue('nats', 'nats');
      return ['--tls', '--tlscert', f.certFile, '--tlskey', f.keyFile, '--tlscacert', f.caFile, '--tlsverify'];
    },
  };
}
