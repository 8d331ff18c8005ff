// CPU time of other processes from /proc (Linux): utime + stime of /proc/<pid>/stat, which
// counts every thread of the process, so worker threads and onnxruntime's pool are included.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

let ticksPerSecond: number | undefined;

/** Clock ticks per second of /proc times (getconf CLK_TCK; 100 when it cannot be asked). */
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** The fields of /proc/<pid>/stat after the command name (index 0 is the state). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Whether CPU times can be read here (Linux with /proc). */
export function procAvailable(): boolean {
  return statFields(process.pid) !== undefined;
}

/** User + system CPU time of `pid` so far, in milliseconds (0 once it is gone). */
export function cpuMs(pid: number): number {
  const f = statFields(pid);
  if (!f) return 0;
  return ((Number(f[11]) + Number(f[12])) * 1000) / clockTicks();
}

/** Summed CPU time of several processes, in milliseconds. */
export function totalCpuMs(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + cpuMs(pid), 0);
}

/** The processes whose parent is `pid` (e.g. nginx's workers under its master). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if (statFields(Number(entry))?.[1] === String(pid)) out.push(Number(entry));
  }
  return out;
}
