// The Dockerfile builds what `npm start` runs: the project's own install and build commands, and
// an entrypoint that starts a service the way the local mesh does (cli/local-mesh). Read, not
// built: no Docker engine is needed.
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, serviceArgs, serviceCommand, sharedNodeArgs, type ServiceName } from '../../../cli/local-mesh/service-process';
import {
  envValue, execForm, inheritedInstructions, lineage, parseCopy, parseDockerfile, stage, workdir,
  type Dockerfile, type Instruction, type Stage,
} from './dockerfile';

const repo = path.resolve(__dirname, '../../..');
const df = parseDockerfile(fs.readFileSync(path.join(repo, 'Dockerfile'), 'utf8'));
const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
/** The deployables: every folder of services/ with a main.ts. */
const services = fs.readdirSync(path.join(repo, 'services')).filter((d) => fs.existsSync(path.join(repo, 'services', d, 'main.ts')));
const FLAVORS = ['cpu', 'gpu'] as const;
/** scripts/node-lines.json: the Node.js lines supported and tested. */
interface NodeLines { default: number; lines: { major: number; status: string; endOfLife: string; ci: string }[] }

const runs = (instructions: Instruction[], pattern: RegExp) => instructions.findIndex((i) => i.keyword === 'RUN' && pattern.test(i.args));
const NPM_CI = /(^|[\s;&|])npm ci(\s|$)/;
const NPM_CI_PROD = /(^|[\s;&|])npm ci\b[^;&|]*--omit=dev/;
const NPM_RUN_BUILD = /(^|[\s;&|])npm run build(\s|$)/;

/** The stage the final stage copies `what` (a path relative to its WORKDIR) from, for `flavor`. */
function copiedFrom(flavor: string, what: string): { stage: Stage; source: string } {
  const final = stage(df);
  const dest = path.posix.join(workdir(inheritedInstructions(df, final, { FLAVOR: flavor })), what);
  for (const ins of inheritedInstructions(df, final, { FLAVOR: flavor })) {
    if (ins.keyword !== 'COPY') continue;
    const copy = parseCopy(ins);
    const target = path.posix.resolve(workdir(inheritedInstructions(df, final, { FLAVOR: flavor })), copy.dest);
    if (copy.from && copy.sources.length === 1 && target === dest) return { stage: stage(df, copy.from), source: copy.sources[0] ?? '' };
  }
  throw new Error(`the final stage copies no ${what} from another stage`);
}

/** The final stage's entrypoint, with paths made relative to its WORKDIR. */
function imageEntrypoint(d: Dockerfile): { executable: string; args: string[]; dir: string } {
  const instructions = inheritedInstructions(d, stage(d));
  const entry = instructions.filter((i) => i.keyword === 'ENTRYPOINT').pop();
  if (!entry) throw new Error('no ENTRYPOINT');
  const [executable = '', ...args] = execForm(entry);
  return { executable, args, dir: workdir(instructions) };
}

/** `args` with every path resolved against `dir` and written relative to it. */
function relativeTo(dir: string, args: string[], resolve = path.posix.resolve): string[] {
  return args.map((a) => (a.startsWith('-') ? a : path.posix.relative(dir, resolve(dir, a))));
}

describe('Dockerfile', () => {
  it('builds dist/ with the project\'s own commands: npm ci, then npm run build', () => {
    expect(pkg.scripts?.build).toBeDefined();
    for (const flavor of FLAVORS) {
      const { stage: build, source } = copiedFrom(flavor, 'dist');
      const instructions = inheritedInstructions(df, build, { FLAVOR: flavor });
      const ci = runs(instructions, NPM_CI);
      const compile = runs(instructions, NPM_RUN_BUILD);
      expect(ci).toBeGreaterThanOrEqual(0);
      expect(compile).toBeGreaterThan(ci);
      // The sources go in whole (the build compiles every source folder), before the build runs.
      const copyAll = instructions.findIndex((i) => i.keyword === 'COPY' && parseCopy(i).sources.includes('.'));
      expect(copyAll).toBeGreaterThan(ci);
      expect(copyAll).toBeLessThan(compile);
      expect(path.posix.resolve(workdir(instructions.slice(0, compile + 1)), 'dist')).toBe(path.posix.resolve(workdir(instructions), source));
    }
  });

  it('ships production dependencies only, installed by npm ci from the lock file', () => {
    for (const flavor of FLAVORS) {
      const { stage: deps } = copiedFrom(flavor, 'node_modules');
      const instructions = inheritedInstructions(df, deps, { FLAVOR: flavor });
      expect(runs(instructions, NPM_CI_PROD)).toBeGreaterThanOrEqual(0);
      expect(instructions.some((i) => i.keyword === 'COPY' && parseCopy(i).sources.includes('package-lock.json'))).toBe(true);
    }
  });

  it('builds from sources only: the context leaves out node_modules, dist and models', () => {
    const ignored = fs.readFileSync(path.join(repo, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', 'models']));
    for (const needed of ['lib', 'services', 'proto', 'scripts', 'package.json', 'package-lock.json']) expect(ignored).not.toContain(needed);
  });

  it('selects the CPU or the CUDA build of onnxruntime-node with the FLAVOR build argument (cpu by default)', () => {
    expect(df.globalArgs.get('FLAVOR')).toBe('cpu');
    const install = (flavor: string) => envValue(inheritedInstructions(df, copiedFrom(flavor, 'node_modules').stage, { FLAVOR: flavor }), 'ONNXRUNTIME_NODE_INSTALL');
    expect(install('cpu')).toBe('skip');
    expect(install('gpu')).toBe('cuda12');
    const runtimeImage = (flavor: string) => lineage(df, stage(df), { FLAVOR: flavor }).image;
    expect(runtimeImage('cpu')).toMatch(/^node:\d+-bookworm-slim$/);
    expect(runtimeImage('gpu')).toMatch(/^nvidia\/cuda:12\.[\d.]+-cudnn-runtime-/);
    // The CUDA image has no Node: the same binary is copied from the Node image.
    const gpuRuntime = inheritedInstructions(df, stage(df), { FLAVOR: 'gpu' });
    expect(gpuRuntime.some((i) => i.keyword === 'COPY' && parseCopy(i).dest === '/usr/local/bin/node')).toBe(true);
  });

  it('builds on the default Node.js line, an LTS line whose support has not ended, and one CI tests', () => {
    const lines = JSON.parse(fs.readFileSync(path.join(repo, 'scripts', 'node-lines.json'), 'utf8')) as NodeLines;
    const major = Number(/^node:(\d+)-/.exec(df.globalArgs.get('NODE_IMAGE') ?? '')?.[1]);
    expect(major).toBe(lines.default);
    const line = lines.lines.find((l) => l.major === major);
    expect(line).toMatchObject({ status: 'LTS', ci: expect.stringMatching(new RegExp(`^${major}\\.\\d+\\.\\d+$`)) });
    // Even-numbered lines are the ones Node.js makes LTS; a date in the past would be an end-of-life image.
    expect(major % 2).toBe(0);
    expect(Date.parse(line!.endOfLife)).toBeGreaterThan(Date.now());
    // package.json's engines admits every line CI tests, and nothing older.
    const engines = (JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    expect(engines.split('||').map((r) => Number(/\^(\d+)\./.exec(r.trim())?.[1])).sort()).toEqual(lines.lines.map((l) => l.major).sort());
  });

  it('runs as a numeric non-root user', () => {
    for (const flavor of FLAVORS) {
      const user = inheritedInstructions(df, stage(df), { FLAVOR: flavor }).filter((i) => i.keyword === 'USER').pop()?.args;
      expect(user).toMatch(/^\d+(:\d+)?$/);
      expect(Number(user?.split(':')[0])).toBeGreaterThan(0);
    }
  });

  it.each(services)('starts %s the way npm start does: telemetry preloaded, then dist/services/<name>/main.js', (name) => {
    const image = imageEntrypoint(df);
    expect(path.posix.basename(image.executable)).toBe('node');
    // The entrypoint is what every service shares; manifests pass the service's own flags and module.
    expect(relativeTo(image.dir, image.args)).toEqual(relativeTo(ROOT, sharedNodeArgs(), path.resolve));
    const own = relativeTo(ROOT, serviceArgs(name as ServiceName), path.resolve);
    expect(own[own.length - 1]).toBe(`dist/services/${name}/main.js`);
    expect(relativeTo(ROOT, serviceCommand(name as ServiceName), path.resolve)).toEqual([...relativeTo(ROOT, sharedNodeArgs(), path.resolve), ...own]);
  });

  it('defaults to a service that exists, started as that service is', () => {
    const cmd = stage(df).instructions.filter((i) => i.keyword === 'CMD').pop();
    expect(cmd).toBeDefined();
    const args = execForm(cmd as Instruction);
    const main = args[args.length - 1] ?? '';
    const service = services.find((s) => `dist/services/${s}/main.js` === main);
    expect(service).toBeDefined();
    expect(relativeTo(imageEntrypoint(df).dir, args)).toEqual(relativeTo(ROOT, serviceArgs(service as ServiceName), path.resolve));
  });
});
