// A CA made in the test and certificates for services, written as PEM files in a temp folder, with
// the INFERMESH_TLS_* settings that point a service at them.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { registryClient } from '../../lib/grpc/client';
import { createCa, issueCertificate, writePem, type CertificateAuthority, type IssuedPem, type LeafOptions, type PemFiles } from '../../lib/pki';
import type { TlsFiles } from '../../lib/tls';
import { modelPath } from './models';

export interface TestPki {
  ca: CertificateAuthority;
  dir: string;
  /** Issues a certificate for `opts` and writes it as `<dir>/<base>.crt|.key` (and ca.crt). */
  issue(base: string, opts: LeafOptions): Promise<IssuedPem & PemFiles>;
  /** INFERMESH_TLS_* settings for a service using `files`. */
  env(files: PemFiles, extra?: Record<string, string>): Record<string, string>;
  cleanup(): void;
}

/** A fresh CA and a temp folder for its certificates. */
export async function startTestPki(): Promise<TestPki> {
  const ca = await createCa({ commonName: 'infermesh test CA' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-pki-'));
  return {
    ca,
    dir,
    async issue(base, opts) {
      const issued = await issueCertificate(ca, opts);
      return { ...issued, ...writePem(dir, base, issued, ca) };
    },
    env(files, extra = {}) {
      return { INFERMESH_TLS_CERT_FILE: files.certFile, INFERMESH_TLS_KEY_FILE: files.keyFile, INFERMESH_TLS_CA_FILE: files.caFile, ...extra };
    },
    cleanup() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Pushes models/mnist.onnx as `model` to the registry on `port`, over TLS with the client's `files`. */
export async function pushOverTls(port: number, files: TlsFiles, model = 'mnist'): Promise<void> {
  const c = registryClient(`127.0.0.1:${port}`, { tls: { files } });
  const bytes = fs.readFileSync(modelPath('mnist.onnx'));
  try {
    await new Promise<void>((resolve, reject) => {
      const call = c.PushVersion((err) => (err ? reject(err) : resolve()));
      call.write({ header: { model, expected_sha256: '', size_bytes: bytes.length } });
      call.write({ chunk: bytes });
      call.end();
    });
  } finally {
    c.close();
  }
}
