// The pod's CPUs from its cgroup CPU quota (v2 cpu.max, v1 cfs quota/period), read from real files
// laid out in a temp folder as the kernel lays them out, and the intra-op threads that follow.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cgroupCpuQuota, cpuBudget, intraOpThreads } from '../../../../services/inference/cpu-quota';

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
