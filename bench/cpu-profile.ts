// Profiling a service under benchmark load: the environment that loads bench/cpu-profile-preload
// into it, and the signal that starts and stops its profiler.
import path from 'node:path';

/** Environment that makes a service ready to profile its main thread into `dir`. */
export function profileEnv(dir: string): Record<string, string> {
  return { NODE_OPTIONS: `--require ${path.join(__dirname, 'cpu-profile-preload.js')}`, BENCH_CPU_PROFILE_DIR: path.resolve(dir) };
}

/** Starts the profiler of process `pid`, or stops it and writes the profile. */
export function toggleProfile(pid: number): void {
  process.kill(pid, 'SIGUSR2');
}
