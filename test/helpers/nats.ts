// Starts a real nats-server with JetStream on a free port and its own store folder, per test file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startNatsServer, type NatsServerProcess } from '../../cli/local-mesh/nats-server';

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
