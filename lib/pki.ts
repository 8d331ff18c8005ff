// A small certificate authority for the mesh: make a CA, issue each service a certificate for
// server and client use with its addresses (DNS/IP SANs) and its identity (a URI SAN
// spiffe://infermesh/<kind>/<name>), and write them as PEM. Used by the tests and by the local
// mesh's secure mode; production certificates come from the operator's PKI or cert-manager.
// Built on @peculiar/x509 over node's WebCrypto: ASN.1 and X.509 extensions are a solved problem,
// and hand-written DER is where certificate bugs live. Keys are ECDSA P-256 (fast to make, every TLS
// stack takes them).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
// @peculiar/x509 resolves its parts with tsyringe, which needs the Reflect metadata polyfill first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { spiffeId, type ServiceKind } from './tls';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[1]);

const KEY_ALGORITHM: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const DAY_MS = 24 * 60 * 60 * 1000;

/** A certificate and its private key, as PEM. */
export interface IssuedPem {
  /** The certificate (PEM). */
  cert: string;
  /** Its PKCS#8 private key (PEM). Never log it. */
  key: string;
  /** Hex serial number, as node's X509Certificate writes it (upper case). */
  serialNumber: string;
  /** SHA-256 fingerprint, as node writes it (AA:BB:…). */
  fingerprint256: string;
}

/** A CA that can issue certificates. */
export interface CertificateAuthority extends IssuedPem {
  /** @internal the CA's keys and certificate, to sign with. */
  readonly signer: { keys: webcrypto.CryptoKeyPair; cert: x509.X509Certificate };
}

/** Options of a CA; defaults: "infermesh CA", ten years. */
export interface CaOptions {
  commonName?: string;
  validDays?: number;
}

/** Options of a service certificate. */
export interface LeafOptions {
  /** The service kind in its identity (spiffe://infermesh/<kind>/<name>). */
  kind: ServiceKind;
  /** The service's name: a pod's INFERMESH_POD_NAME, a router's or the registry's. */
  name: string;
  /** Host names and IP addresses it is reached at (default: localhost, 127.0.0.1 and ::1). */
  hosts?: string[];
  /** Validity in days from now (default 90); a negative start is not offered. */
  validDays?: number;
  /** Hex serial number (default: 16 random bytes). */
  serialNumber?: string;
}

async function pemKey(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f; // positive
  return Buffer.from(bytes).toString('hex');
}

function describe(cert: x509.X509Certificate, key: string): IssuedPem {
  const pem = cert.toString('pem');
  const node = new NodeX509(pem);
  return { cert: pem, key, serialNumber: node.serialNumber, fingerprint256: node.fingerprint256 };
}

/** Makes a self-signed CA (may sign certificates, nothing below it may). */
export async function createCa(opts: CaOptions = {}): Promise<CertificateAuthority> {
  const keys = await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${opts.commonName ?? 'infermesh CA'}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + (opts.validDays ?? 3650) * DAY_MS),
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { ...describe(cert, await pemKey(keys.privateKey)), signer: { keys, cert } };
}

/** Issues a certificate for a service: server and client usage, its hosts as SANs and its SPIFFE ID. */
export async function issueCertificate(ca: CertificateAuthority, opts: LeafOptions): Promise<IssuedPem> {
  const keys = await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
  const now = Date.now();
  const hosts = opts.hosts ?? ['localhost', '127.0.0.1', '::1'];
  const names: x509.JsonGeneralName[] = hosts.map((h) => (net.isIP(h) ? { type: 'ip', value: h } : { type: 'dns', value: h }));
  names.push({ type: 'url', value: spiffeId(opts.kind, opts.name) });
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: opts.serialNumber ?? randomSerial(),
    subject: `CN=${opts.kind} ${opts.name.replace(/[,+="\\<>;#]/g, '_')}`,
    issuer: ca.signer.cert.subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + (opts.validDays ?? 90) * DAY_MS),
    signingAlgorithm: SIGNING,
    publicKey: keys.publicKey,
    signingKey: ca.signer.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.signer.cert),
    ],
  });
  return describe(cert, await pemKey(keys.privateKey));
}

/** Where writePem put a certificate, its key and the CA bundle. */
export interface PemFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
}

/**
 * Writes `issued` as `<dir>/<base>.crt` and `<dir>/<base>.key` (mode 0600) and the CA as
 * `<dir>/ca.crt`. Each file is written to a temporary name and renamed, so a reader sees the old
 * file or the new one, never half of one.
 */
export function writePem(dir: string, base: string, issued: IssuedPem, ca: IssuedPem): PemFiles {
  fs.mkdirSync(dir, { recursive: true });
  const files = { certFile: path.join(dir, `${base}.crt`), keyFile: path.join(dir, `${base}.key`), caFile: path.join(dir, 'ca.crt') };
  const put = (file: string, text: string, mode: number) => {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, text, { mode });
    fs.renameSync(tmp, file);
  };
  put(files.keyFile, issued.key, 0o600);
  put(files.certFile, issued.cert, 0o644);
  put(files.caFile, ca.cert, 0o644);
  return files;
}
