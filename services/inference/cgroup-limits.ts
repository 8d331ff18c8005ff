// What the pod's container may use, from its cgroup: how many CPUs (its CPU limit, the cgroup CPU
// quota, where one is set, else the CPUs the scheduler lets it run on) and how much memory (its
// memory limit, else the machine's). onnxruntime sizes its thread pool from the host's cores, so a
// pod limited to 4 CPUs on a 64-core node would start 64 threads per session and spend its quota
// being throttled; and a pod that counts the host's memory as its own is OOM-killed. Read once at
// start-up by the pod, never at import.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Where the cgroup files are; both injectable so tests feed real files from a temp folder. */
export interface CgroupPaths {
  /** Mount point of the cgroup filesystem; default /sys/fs/cgroup. */
  root?: string;
  /** This process's cgroup membership (lines "id:controllers:path"); default /proc/self/cgroup. */
  selfCgroup?: string;
}

/** The CPUs a process may use and where the number came from. */
export interface CpuBudget {
  /** Whole CPUs, at least 1. */
  cpus: number;
  /** Where it came from, for the start-up log: the cgroup file and its value, or the scheduler. */
  source: string;
}

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** `dir` and each of its parents up to `top` (both included): a parent's limit binds its children. */
function upTo(top: string, rel: string): string[] {
  const dirs: string[] = [];
  let dir = path.join(top, rel);
  // A path that leaves `top` ("../") is not ours to read.
  if (path.relative(top, dir).startsWith('..')) dir = top;
  for (;;) {
    dirs.push(dir);
    const parent = path.dirname(dir);
    if (path.relative(top, dir) === '' || parent === dir) return dirs;
    dir = parent;
  }
}

/** This process's cgroup path for `controller` (v1), or its unified path (v2, controller ''). */
function membership(selfCgroup: string, controller: string): string {
  for (const line of (read(selfCgroup) ?? '').split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const controllers = m[1]!.split(',');
    if (controller === '' ? m[1] === '' : controllers.includes(controller)) return m[2]!;
  }
  // Unknown (no /proc, or a cgroup namespace hides it): the mount point is this process's own cgroup.
  return '/';
}

/** The tightest quota, in CPUs (possibly fractional), with the file it came from. */
interface Quota {
  cpus: number;
  source: string;
}

function tighter(a: Quota | undefined, b: Quota | undefined): Quota | undefined {
  if (!a) return b;
  if (!b) return a;
  return b.cpus < a.cpus ? b : a;
}

/** cgroup v2: cpu.max is "max PERIOD" (no limit) or "QUOTA PERIOD", in microseconds. */
function quotaV2(root: string, selfCgroup: string): Quota | undefined {
  let found: Quota | undefined;
  for (const dir of upTo(root, membership(selfCgroup, ''))) {
    const file = path.join(dir, 'cpu.max');
    const m = /^(\d+|max)\s+(\d+)$/.exec(read(file) ?? '');
    if (!m || m[1] === 'max' || Number(m[2]) <= 0) continue;
    found = tighter(found, { cpus: Number(m[1]) / Number(m[2]), source: `${file} "${m[1]} ${m[2]}"` });
  }
  return found;
}

/** cgroup v1: cpu.cfs_quota_us (-1: no limit) over cpu.cfs_period_us, in the cpu controller's hierarchy. */
function quotaV1(root: string, selfCgroup: string): Quota | undefined {
  let found: Quota | undefined;
  const rel = membership(selfCgroup, 'cpu');
  for (const mount of ['cpu', 'cpu,cpuacct', 'cpuacct,cpu'].map((m) => path.join(root, m))) {
    if (!fs.existsSync(mount)) continue;
    for (const dir of upTo(mount, rel)) {
      const quota = Number(read(path.join(dir, 'cpu.cfs_quota_us')));
      const period = Number(read(path.join(dir, 'cpu.cfs_period_us')));
      if (!Number.isInteger(quota) || quota <= 0 || !Number.isInteger(period) || period <= 0) continue;
      found = tighter(found, { cpus: quota / period, source: `${path.join(dir, 'cpu.cfs_quota_us')} ${quota} / cpu.cfs_period_us ${period}` });
    }
    break; // one mount per hierarchy
  }
  return found;
}

/**
 * The CPU quota of this process's cgroup (v2 `cpu.max`, else v1 `cpu.cfs_quota_us` /
 * `cpu.cfs_period_us`), in CPUs, or undefined where none is set or the files are not there.
 */
export function cgroupCpuQuota(paths: CgroupPaths = {}): Quota | undefined {
  const root = paths.root ?? '/sys/fs/cgroup';
  const selfCgroup = paths.selfCgroup ?? '/proc/self/cgroup';
  return fs.existsSync(path.join(root, 'cgroup.controllers')) ? quotaV2(root, selfCgroup) : quotaV1(root, selfCgroup);
}

/**
 * The whole CPUs this process may use: the cgroup quota rounded down (at least 1; a quota of 1.5
 * CPUs gives 1, as more threads than that would be throttled), and never more than the CPUs it may
 * run on (os.availableParallelism(), or `available` when given).
 */
export function cpuBudget(paths: CgroupPaths = {}, available = os.availableParallelism()): CpuBudget {
  const quota = cgroupCpuQuota(paths);
  if (quota && quota.cpus < available) return { cpus: Math.max(1, Math.floor(quota.cpus)), source: `cgroup CPU quota ${quota.source}` };
  return { cpus: Math.max(1, available), source: 'os.availableParallelism()' };
}

/**
 * onnxruntime intra-op threads per session: the configured number, or with 0 (the default) the
 * pod's CPUs shared among its session workers (at least 1).
 */
export function intraOpThreads(configured: number, sessionWorkers: number, budget: CpuBudget): number {
  return configured || Math.max(1, Math.floor(budget.cpus / Math.max(1, sessionWorkers)));
}

/** A memory limit in bytes and where it came from. */
export interface MemoryLimit {
  bytes: number;
  source: string;
}

/**
 * The memory limit of this process's cgroup (v2 `memory.max`, else v1 `memory.limit_in_bytes`; the
 * tightest of it and its parents'), or undefined where none is set ("max", or v1's huge number for
 * none) or the files are not there.
 */
export function cgroupMemoryLimit(paths: CgroupPaths = {}): MemoryLimit | undefined {
  const root = paths.root ?? '/sys/fs/cgroup';
  const selfCgroup = paths.selfCgroup ?? '/proc/self/cgroup';
  const v2 = fs.existsSync(path.join(root, 'cgroup.controllers'));
  const dirs = v2 ? upTo(root, membership(selfCgroup, '')) : upTo(path.join(root, 'memory'), membership(selfCgroup, 'memory'));
  const file = v2 ? 'memory.max' : 'memory.limit_in_bytes';
  let found: MemoryLimit | undefined;
  for (const dir of dirs) {
    const bytes = Number(read(path.join(dir, file)));
    // v1 says "no limit" with a number near 2^63 rounded to the page size: anything past the machine's memory.
    if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes >= os.totalmem() * 4) continue;
    if (!found || bytes < found.bytes) found = { bytes, source: `${path.join(dir, file)} ${bytes}` };
  }
  return found;
}

/** The memory the pod's models may take (INFERMESH_MODEL_MEMORY_MB), and where it came from. */
export interface MemoryBudget {
  bytes: number;
  source: string;
}

/**
 * The pod's memory budget for models: `configuredMb` when set; else its container's memory limit
 * (or the machine's memory, os.totalmem(), without one) less `headroomMb` for the process itself
 * (Node, gRPC, buffers of requests in flight), at least a tenth of the limit.
 */
export function memoryBudget(configuredMb: number, headroomMb: number, paths: CgroupPaths = {}, total = os.totalmem()): MemoryBudget {
  const MiB = 1024 * 1024;
  if (configuredMb > 0) return { bytes: configuredMb * MiB, source: 'INFERMESH_MODEL_MEMORY_MB' };
  const limit = cgroupMemoryLimit(paths);
  const of = limit && limit.bytes < total ? limit : { bytes: total, source: 'os.totalmem()' };
  const bytes = Math.max(Math.floor(of.bytes / 10), of.bytes - headroomMb * MiB);
  return { bytes, source: `${limit && limit.bytes < total ? `cgroup memory limit ${of.source}` : `os.totalmem() ${total}`} less INFERMESH_MODEL_MEMORY_HEADROOM_MB ${headroomMb}` };
}
