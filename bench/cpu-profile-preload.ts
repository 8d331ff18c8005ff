// A preload for profiling a service's main thread under benchmark load. Node 20 refuses
// `--cpu-prof` in NODE_OPTIONS, so the benchmark starts the service with
// NODE_OPTIONS="--require <this file>" and BENCH_CPU_PROFILE_DIR=<dir>. The V8 profiler starts on
// the first SIGUSR2 and stops on the next (or at exit), writing <dir>/<service>-<pid>-<n>.cpuprofile
// (open it in Chrome DevTools or speedscope, or summarize it with bench/profile-summary).
import fs from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';
import { isMainThread } from 'node:worker_threads';

const dir = process.env.BENCH_CPU_PROFILE_DIR;
if (dir && isMainThread) {
  const session = new inspector.Session();
  session.connect();
  session.post('Profiler.enable');
  // 200 µs between samples: fine enough for calls of tens of microseconds, cheap enough to run.
  session.post('Profiler.setSamplingInterval', { interval: 200 });
  const service = path.basename(path.dirname(process.argv[1] ?? 'node'));
  let running = false;
  let count = 0;
  const stop = () => {
    if (!running) return;
    running = false;
    // The in-thread inspector answers synchronously, so this also works in an exit handler.
    session.post('Profiler.stop', (err, result) => {
      if (err) return;
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, `${service}-${process.pid}-${++count}.cpuprofile`), JSON.stringify(result.profile));
    });
  };
  process.on('SIGUSR2', () => {
    if (running) stop();
    else {
      session.post('Profiler.start');
      running = true;
    }
  });
  process.once('exit', stop);
}
