// Starts a real nats-server with JetStream on a free port and its own store folder, per test file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startNatsServer, type NatsServerProcess } from '../../cli/local-mesh/nats-server';
import { startSecuredNatsServer, type NatsCredentials } from '../../cli/local-mesh/nats-auth';

export type { NatsServerProcess };

/** A nats-server in a fresh temp folder; stop() also removes the folder. */
export async function startTestNats(): Promise<NatsServerProcess & { cleanup(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-nats-'));
  const server = await startNatsServer({ storeDir: dir });
  return {
    ...server,
    async cleanup() {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A nats-server run as the local mesh runs it (cli/local-mesh/nats-auth.ts): one nkey per service
 * kind with the permissions of lib/nats-permissions.ts, and no one else let in.
 */
export async function startSecuredTestNats(): Promise<NatsServerProcess & { credentials: NatsCredentials; cleanup(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-nats-'));
  const { server, credentials } = await startSecuredNatsServer({ storeDir: path.join(dir, 'store'), authDir: path.join(dir, 'auth') });
  return {
    ...server,
    credentials,
    async cleanup() {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
