// `node dist/bench/profile-summary.js FILE.cpuprofile [top]`: where a V8 CPU profile's time went,
// as self time per package (node_modules/<pkg>, node: internals, infermesh's own code, V8's
// (garbage collector), (program) and (idle)) and the top functions by self time.
import fs from 'node:fs';
import { table, num } from './markdown';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

/** The parts of a .cpuprofile this summary reads. */
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The bucket a frame's self time is counted in. */
export function packageOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith('node:')) return 'node: internals';
  const dist = url.indexOf('/dist/');
  return dist >= 0 ? `infermesh ${url.slice(dist + 6).split('/').slice(0, 2).join('/')}` : url;
}

/** Self time in ms per node id. */
function selfTimes(p: CpuProfile): Map<number, number> {
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000));
  return self;
}

/** Total (self + callees) time in ms per function label, each counted once per stack. */
function totalTimes(p: CpuProfile, self: Map<number, number>, label: (f: CallFrame) => string): Map<string, number> {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, number>();
  const visit = (id: number, onStack: Set<string>): number => {
    const node = byId.get(id)!;
    let ms = self.get(id) ?? 0;
    const name = label(node.callFrame);
    const fresh = !onStack.has(name);
    if (fresh) onStack.add(name);
    for (const child of node.children ?? []) ms += visit(child, onStack);
    if (fresh) {
      onStack.delete(name);
      totals.set(name, (totals.get(name) ?? 0) + ms);
    }
    return ms;
  };
  const root = p.nodes[0];
  if (root) visit(root.id, new Set());
  return totals;
}

const functionLabel = (frame: CallFrame) =>
  `${frame.functionName || '(anonymous)'} ${frame.url ? `${frame.url.split('/').slice(-2).join('/')}:${frame.lineNumber + 1}` : ''}`.trim();

/** Markdown tables of the profile's self time by package and by function, and total time by function. */
export function summarizeProfile(p: CpuProfile, top = 25): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = selfTimes(p);
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const busy = total - [...self.entries()].filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)').reduce((a, [, ms]) => a + ms, 0);
  const byPackage = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const [id, ms] of self) {
    const frame = byId.get(id)!.callFrame;
    const pkg = packageOf(frame);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + ms);
    const fn = functionLabel(frame);
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms);
  }
  const inclusive = totalTimes(p, self, functionLabel);
  for (const synthetic of ['(root)', '(idle)', '(program)', '(garbage collector)']) inclusive.delete(synthetic);
  const rows = (m: Map<string, number>, n: number) =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, ms]) => [k, num(ms), `${num((100 * ms) / busy, 1)} %`]);
  return [
    `Sampled ${num(total)} ms, of which ${num(busy)} ms not idle (percentages are of the busy time).`,
    '',
    table(['package', 'self ms', 'share'], rows(byPackage, 20)),
    '',
    table(['function', 'self ms', 'share'], rows(byFunction, top)),
    '',
    table(['function (with its callees)', 'total ms', 'share'], rows(inclusive, top)),
  ].join('\n');
}

if (require.main === module) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: node dist/bench/profile-summary.js FILE.cpuprofile [top]\n');
    process.exit(2);
  }
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  process.stdout.write(summarizeProfile(profile, top ? Number(top) : 25) + '\n');
}
