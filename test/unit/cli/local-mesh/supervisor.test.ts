// The local mesh's supervisor with real child processes: a crashed process is restarted with a log
// line, quick failures back off doubling up to the cap, a process that ran a while starts the back-off
// over, a start that fails is retried, and stop() during a back-off or a restart leaves nothing running.
import { spawn } from 'node:child_process';
import type { ServiceProcess } from '../../../../cli/local-mesh/service-process';
import { restartDelayMs, supervise, type RestartPolicy, type SupervisedService } from '../../../../cli/local-mesh/supervisor';
import { alive, waitFor } from '../../../helpers/wait';

/** A real node process running `code`, in the shape startService gives. */
function nodeProcess(code: string): ServiceProcess {
  const child = spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  return {
    name: 'test',
    pid: child.pid!,
    port: 0,
    child,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

const RUNS = 'setInterval(() => {}, 1000)';
const policy: RestartPolicy = { initialDelayMs: 20, maxDelayMs: 80, stableAfterMs: 60_000 };

describe('restartDelayMs', () => {
  it.each([
    [1, 20], [2, 40], [3, 80], [4, 80], [60, 80], [0, 20],
  ])('failure %p in a row waits %p ms', (failures, ms) => expect(restartDelayMs(policy, failures)).toBe(ms));
});

describe('supervise', () => {
  const running: SupervisedService[] = [];
  afterEach(async () => {
    for (const s of running.splice(0)) await s.stop();
  });

  async function supervised(start: (attempt: number) => Promise<ServiceProcess>, p = policy) {
    const lines: string[] = [];
    const s = await supervise('svc', start, { onLog: (l) => lines.push(l) }, p);
    running.push(s);
    return { s, lines };
  }

  it('restarts a killed process and says so', async () => {
    const pids: number[] = [];
    const { s, lines } = await supervised(async () => {
      const p = nodeProcess(RUNS);
      pids.push(p.pid);
      return p;
    });
    const first = s.pid;
    const next = s.nextStart();
    await s.kill();
    const restarted = await next;
    expect(restarted.pid).not.toBe(first);
    expect(s.pid).toBe(restarted.pid);
    expect(s.restarts).toBe(1);
    expect(alive(first)).toBe(false);
    expect(lines).toEqual([`svc exited (signal SIGKILL); restarting in 20 ms`, `svc restarted (pid ${restarted.pid}, port 0, restart 1)`]);
  });

  it('backs off doubling while the process keeps failing, up to the cap', async () => {
    // The first process runs; every restart exits at once with code 3.
    const { s, lines } = await supervised(async (attempt) => nodeProcess(attempt === 0 ? RUNS : 'process.exit(3)'));
    await s.kill();
    await waitFor('four quick failures', () => lines.filter((l) => l.includes('exited (code 3)')).length >= 4, 20_000, 10);
    const delays = lines.filter((l) => l.includes('exited')).map((l) => Number(/restarting in (\d+) ms/.exec(l)![1]));
    expect(delays.slice(0, 4)).toEqual([20, 40, 80, 80]);
  });

  it('starts the back-off over after a process that ran a while', async () => {
    const { s, lines } = await supervised(async () => nodeProcess(RUNS), { ...policy, stableAfterMs: 200 });
    for (let i = 0; i < 3; i++) {
      const next = s.nextStart();
      await new Promise((r) => setTimeout(r, 300));
      await s.kill();
      await next;
    }
    expect(lines.filter((l) => l.includes('exited')).map((l) => /restarting in (\d+) ms/.exec(l)![1])).toEqual(['20', '20', '20']);
  });

  it('retries a start that fails, and says so', async () => {
    let attempts = 0;
    const { s, lines } = await supervised(async (attempt) => {
      attempts++;
      if (attempt === 1) throw new Error('port taken\nmore detail');
      return nodeProcess(RUNS);
    });
    const next = s.nextStart();
    await s.kill();
    await next;
    expect(attempts).toBe(3);
    expect(lines).toEqual([
      'svc exited (signal SIGKILL); restarting in 20 ms',
      'svc failed to restart: port taken; trying again in 40 ms',
      `svc restarted (pid ${s.pid}, port 0, restart 2)`,
    ]);
  });

  it('stop() during the back-off restarts nothing', async () => {
    let starts = 0;
    const { s } = await supervised(async () => {
      starts++;
      return nodeProcess(RUNS);
    }, { ...policy, initialDelayMs: 300 });
    const pid = s.pid;
    await s.kill();
    await s.stop();
    await new Promise((r) => setTimeout(r, 500));
    expect(starts).toBe(1);
    expect(alive(pid)).toBe(false);
  });

  it('stop() while a restart is starting stops the process it starts', async () => {
    const started: ServiceProcess[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { s } = await supervised(async (attempt) => {
      const p = nodeProcess(RUNS);
      started.push(p);
      if (attempt > 0) await gate; // a slow start: the process runs but is not listening yet
      return p;
    });
    await s.kill();
    await waitFor('the restart under way', () => started.length === 2, 5_000, 10);
    const stopping = s.stop();
    release();
    await stopping;
    expect(started.map((p) => alive(p.pid))).toEqual([false, false]);
  });
});
