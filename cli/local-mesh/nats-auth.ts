// The local mesh's NATS identities: at every start, a fresh nkey per service kind (seed files
// mode 0600 in a 0700 folder under the data dir) and a nats-server config naming their public keys
// and permissions (lib/nats-permissions.ts), so the mesh's NATS refuses every client without one
// of these seeds, and each service gets only its own. Seeds from an earlier start stop working.
import fs from 'node:fs';
import path from 'node:path';
import { startNatsServer, type NatsServerOptions, type NatsServerProcess } from './nats-server';
import { NATS_IDENTITY_KINDS, newNatsIdentity, renderNatsAuthorization, type NatsIdentityKind, type NkeyRef } from '../../lib/nats-permissions';

/** The files of a local mesh's NATS identities. */
export interface NatsCredentials {
  /** The nats-server config file holding the users and their permissions. */
  configFile: string;
  /** Each kind's seed file, for INFERMESH_NATS_NKEY_SEED_FILE. */
  seedFiles: Record<NatsIdentityKind, string>;
}

/** Writes a file only its owner may read, replacing any earlier one. */
function writePrivate(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.rmSync(tmp, { force: true });
  fs.writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
  fs.renameSync(tmp, file);
}

/** Makes fresh identities for every kind in `dir` (created 0700) and the config naming them. */
export function writeNatsCredentials(dir: string): NatsCredentials {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const keys = {} as Record<NatsIdentityKind, NkeyRef>;
  const seedFiles = {} as Record<NatsIdentityKind, string>;
  for (const kind of NATS_IDENTITY_KINDS) {
    const id = newNatsIdentity(kind);
    const file = path.join(dir, `${kind}.nk`);
    writePrivate(file, `${id.seed}\n`);
    seedFiles[kind] = file;
    keys[kind] = { publicKey: id.publicKey };
  }
  const configFile = path.join(dir, 'nats-server.conf');
  writePrivate(configFile, `# Written by the local mesh at start: its NATS users and their permissions.\n${renderNatsAuthorization(keys)}`);
  return { configFile, seedFiles };
}

/**
 * A nats-server as the local mesh runs it: fresh identities written to `authDir`, and the server
 * started with their config (JetStream, 127.0.0.1), refusing every other client.
 */
export async function startSecuredNatsServer(opts: NatsServerOptions & { authDir: string }): Promise<{ server: NatsServerProcess; credentials: NatsCredentials }> {
  const credentials = writeNatsCredentials(opts.authDir);
  const { authDir: _, ...serverOpts } = opts;
  const server = await startNatsServer({ ...serverOpts, configFile: credentials.configFile });
  return { server, credentials };
}
