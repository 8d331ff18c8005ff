// The pod's CPUs from its cgroup CPU quota (v2 cpu.max, v1 cfs quota/period) and its memory budget
// from its memory limit (v2 memory.max, v1 memory.limit_in_bytes), read from real files
// laid out in a temp folder as the kernel lays them out, and the intra-op threads that follow.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cgroupCpuQuota, cgroupMemoryLimit, cpuBudget, intraOpThreads, memoryBudget } from '../../../../services/inference/cgroup-limits';

let dir: string;
let n = 0;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-cgroup-'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A cgroup tree: `files` maps paths under the root to contents; `self` is /proc/self/cgroup. */
function tree(files: Record<string, string>, self?: string): { root: string; selfCgroup: string } {
  const root = path.join(dir, `t${n++}`);
  fs.mkdirSync(root, { recursive: true });
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), `${text}\n`);
  }
  const selfCgroup = path.join(root, '..', `self${n}`);
  if (self !== undefined) fs.writeFileSync(selfCgroup, `${self}\n`);
  return { root, selfCgroup };
}

const V2 = { 'cgroup.controllers': 'cpuset cpu io memory pids' };

describe('cgroup v2 (cpu.max)', () => {
  it.each([
    ['400000 100000', 64, 4],
    ['150000 100000', 64, 1], // 1.5 CPUs: one thread, more would be throttled
    ['50000 100000', 64, 1], // below one CPU: still one
    ['200000 50000', 64, 4],
    ['800000 100000', 4, 4], // a quota above the cores the process may run on
    ['max 100000', 64, 64], // no limit
    ['garbage', 64, 64],
  ])('cpu.max "%s" with %i CPUs available gives %i', (cpuMax, available, cpus) => {
    const paths = tree({ ...V2, 'cpu.max': cpuMax }, '0::/');
    expect(cpuBudget(paths, available).cpus).toBe(cpus);
  });

  it('names the file and its value', () => {
    const paths = tree({ ...V2, 'cpu.max': '400000 100000' }, '0::/');
    expect(cpuBudget(paths, 64).source).toBe(`cgroup CPU quota ${path.join(paths.root, 'cpu.max')} "400000 100000"`);
    expect(cpuBudget(tree({ ...V2, 'cpu.max': 'max 100000' }, '0::/'), 64).source).toBe('os.availableParallelism()');
  });

  it('follows the process\'s own cgroup, and a parent\'s tighter limit binds it', () => {
    const paths = tree({
      ...V2,
      'kubepods/cpu.max': 'max 100000',
      'kubepods/pod1/cpu.max': '200000 100000',
      'kubepods/pod1/c1/cpu.max': 'max 100000',
      'kubepods/pod2/cpu.max': '100000 100000', // a sibling's limit is not ours
    }, '0::/kubepods/pod1/c1');
    expect(cgroupCpuQuota(paths)?.cpus).toBe(2);
    const own = tree({ ...V2, 'a/cpu.max': '300000 100000', 'a/b/cpu.max': '600000 100000' }, '0::/a/b');
    expect(cgroupCpuQuota(own)?.cpus).toBe(3);
  });

  it('reads the mount point itself when the cgroup path is hidden (a cgroup namespace) or unknown', () => {
    expect(cgroupCpuQuota(tree({ ...V2, 'cpu.max': '300000 100000' }, '0::/not/here'))?.cpus).toBe(3);
    expect(cgroupCpuQuota(tree({ ...V2, 'cpu.max': '300000 100000' }))?.cpus).toBe(3); // no /proc/self/cgroup
    expect(cgroupCpuQuota(tree({ ...V2, 'cpu.max': '300000 100000' }, '0::/../../etc'))?.cpus).toBe(3);
  });
});

describe('cgroup v1 (cpu.cfs_quota_us / cpu.cfs_period_us)', () => {
  const self = '12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc';

  it.each([
    ['cpu,cpuacct', '300000', '100000', 3],
    ['cpu', '250000', '100000', 2],
    ['cpu,cpuacct', '-1', '100000', 64], // no limit
    ['cpu,cpuacct', '0', '0', 64],
  ])('%s: quota %s over period %s gives %i', (mount, quota, period, cpus) => {
    // Docker mounts the container's own cgroup at the mount point, though /proc/self/cgroup names
    // the host's path: the walk from /docker/abc up to the mount point finds it.
    const paths = tree({ [`${mount}/cpu.cfs_quota_us`]: quota, [`${mount}/cpu.cfs_period_us`]: period }, self);
    expect(cpuBudget(paths, 64).cpus).toBe(cpus);
  });

  it('follows the process\'s cgroup in the cpu hierarchy', () => {
    const paths = tree({
      'cpu/cpu.cfs_quota_us': '-1', 'cpu/cpu.cfs_period_us': '100000',
      'cpu/docker/abc/cpu.cfs_quota_us': '400000', 'cpu/docker/abc/cpu.cfs_period_us': '100000',
    }, self.replace('cpu,cpuacct', 'cpu'));
    expect(cpuBudget(paths, 64)).toEqual({ cpus: 4, source: `cgroup CPU quota ${path.join(paths.root, 'cpu/docker/abc/cpu.cfs_quota_us')} 400000 / cpu.cfs_period_us 100000` });
  });
});

it('without cgroup files, the CPUs the process may run on', () => {
  expect(cgroupCpuQuota(tree({}, '0::/'))).toBeUndefined();
  expect(cpuBudget(tree({}, '0::/'), 6)).toEqual({ cpus: 6, source: 'os.availableParallelism()' });
});

it('this machine: at least one CPU, never more than the scheduler gives', () => {
  const budget = cpuBudget();
  expect(budget.cpus).toBeGreaterThanOrEqual(1);
  expect(budget.cpus).toBeLessThanOrEqual(os.availableParallelism());
});

it.each([
  [3, 1, 8, 3], // configured: taken as is
  [0, 1, 4, 4],
  [0, 2, 4, 2],
  [0, 3, 4, 1],
  [0, 4, 1, 1],
])('intra-op threads: setting %i, %i workers, %i CPUs → %i', (configured, workers, cpus, threads) => {
  expect(intraOpThreads(configured, workers, { cpus, source: 'test' })).toBe(threads);
});

describe('the memory budget for models', () => {
  const MiB = 1024 * 1024;
  const GiB = 1024 * MiB;

  it('is the container\'s limit (v2 memory.max, the tightest up the tree) less the headroom', () => {
    const paths = tree({ ...V2, 'kubepods/memory.max': 'max', 'kubepods/pod1/memory.max': String(4 * GiB), 'kubepods/pod1/c1/memory.max': String(8 * GiB) }, '0::/kubepods/pod1/c1');
    expect(cgroupMemoryLimit(paths)).toEqual({ bytes: 4 * GiB, source: `${path.join(paths.root, 'kubepods/pod1/memory.max')} ${4 * GiB}` });
    const budget = memoryBudget(0, 512, paths, 64 * GiB);
    expect(budget.bytes).toBe(4 * GiB - 512 * MiB);
    expect(budget.source).toContain('cgroup memory limit');
  });

  it('reads cgroup v1 memory.limit_in_bytes, where a huge number means no limit', () => {
    const limited = tree({ 'memory/docker/c1/memory.limit_in_bytes': String(2 * GiB) }, '5:memory:/docker/c1');
    expect(cgroupMemoryLimit(limited)?.bytes).toBe(2 * GiB);
    const unlimited = tree({ 'memory/docker/c1/memory.limit_in_bytes': '9223372036854771712' }, '5:memory:/docker/c1');
    expect(cgroupMemoryLimit(unlimited)).toBeUndefined();
  });

  it('without a limit is the machine\'s memory less the headroom; INFERMESH_MODEL_MEMORY_MB wins; a tenth of the limit at least', () => {
    const none = tree({ ...V2, 'memory.max': 'max' }, '0::/');
    expect(memoryBudget(0, 512, none, 16 * GiB)).toEqual({ bytes: 16 * GiB - 512 * MiB, source: `os.totalmem() ${16 * GiB} less INFERMESH_MODEL_MEMORY_HEADROOM_MB 512` });
    expect(memoryBudget(2048, 512, none, 16 * GiB)).toEqual({ bytes: 2 * GiB, source: 'INFERMESH_MODEL_MEMORY_MB' });
    const small = tree({ ...V2, 'memory.max': String(256 * MiB) }, '0::/');
    expect(memoryBudget(0, 512, small, 16 * GiB).bytes).toBe(Math.floor(256 * MiB / 10));
    for (const garbage of ['', 'lots', '-1', '0']) expect(cgroupMemoryLimit(tree({ ...V2, 'memory.max': garbage }, '0::/'))).toBeUndefined();
  });
});
