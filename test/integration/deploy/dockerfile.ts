// A small Dockerfile reader for the deploy tests: stages, their instructions, and what a stage
// inherits from the stages it is built FROM, for given build arguments. It knows the forms the
// project's Dockerfile uses (no heredocs, no escape directive).

/** One instruction: its keyword in upper case and the rest of its (joined) lines. */
export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** A build stage: FROM <base> [AS <name>] and what follows it. */
export interface Stage {
  index: number;
  name: string | undefined;
  base: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs before the first FROM, with their defaults ('' when none). */
  globalArgs: Map<string, string>;
  stages: Stage[];
}

export function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  let pending: { text: string; line: number } | undefined;
  text.split('\n').forEach((raw, i) => {
    const trimmed = raw.trim();
    if (!pending && (trimmed === '' || trimmed.startsWith('#'))) return;
    if (pending && trimmed.startsWith('#')) return; // comment lines inside a continuation
    const continues = trimmed.endsWith('\\');
    const part = continues ? trimmed.slice(0, -1) : trimmed;
    pending = pending ? { text: `${pending.text} ${part}`, line: pending.line } : { text: part, line: i + 1 };
    if (continues) return;
    const m = /^(\S+)\s*(.*)$/s.exec(pending.text.trim());
    if (m) instructions.push({ keyword: (m[1] ?? '').toUpperCase(), args: (m[2] ?? '').trim(), line: pending.line });
    pending = undefined;
  });

  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`line ${ins.line}: unreadable FROM ${ins.args}`);
      stages.push({ index: stages.length, base: m[1] ?? '', name: m[2]?.toLowerCase(), instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword !== 'ARG') throw new Error(`line ${ins.line}: ${ins.keyword} before the first FROM`);
      const eq = ins.args.indexOf('=');
      globalArgs.set((eq < 0 ? ins.args : ins.args.slice(0, eq)).trim(), eq < 0 ? '' : ins.args.slice(eq + 1).trim());
    } else {
      stages[stages.length - 1]?.instructions.push(ins);
    }
  }
  return { globalArgs, stages };
}

/** Replaces ${NAME} and $NAME with the global ARG defaults overridden by `buildArgs`. */
export function substitute(df: Dockerfile, text: string, buildArgs: Record<string, string> = {}): string {
  const value = (name: string) => buildArgs[name] ?? df.globalArgs.get(name) ?? '';
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => value(a ?? b ?? ''));
}

/** The stage named `name` (or the last stage when omitted). */
export function stage(df: Dockerfile, name?: string): Stage {
  const s = name === undefined ? df.stages[df.stages.length - 1] : df.stages.find((st) => st.name === name.toLowerCase());
  if (!s) throw new Error(`no stage ${name ?? '(last)'}`);
  return s;
}

/**
 * The stages a stage is built on, resolved for `buildArgs`: the stage itself first, then its base
 * stage, and so on; ends at an image that is not a stage (returned as `image`).
 */
export function lineage(df: Dockerfile, from: Stage, buildArgs: Record<string, string> = {}): { stages: Stage[]; image: string } {
  const stages: Stage[] = [];
  let current: Stage | undefined = from;
  let image = '';
  while (current) {
    stages.push(current);
    const base = substitute(df, current.base, buildArgs);
    const next: Stage | undefined = df.stages.find((s) => s.name === base.toLowerCase() && s.index < (current as Stage).index);
    if (!next) image = base;
    current = next;
  }
  return { stages, image };
}

/** The instructions a stage runs, its base stages' first (as the build runs them). */
export function inheritedInstructions(df: Dockerfile, from: Stage, buildArgs: Record<string, string> = {}): Instruction[] {
  return lineage(df, from, buildArgs).stages.reverse().flatMap((s) => s.instructions);
}

/** The value of ENV `name` after `instructions` ran, or undefined. */
export function envValue(instructions: Instruction[], name: string): string | undefined {
  let value: string | undefined;
  for (const ins of instructions) {
    if (ins.keyword !== 'ENV') continue;
    for (const m of ins.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) if (m[1] === name) value = (m[2] ?? '').replace(/^"|"$/g, '');
  }
  return value;
}

/** The last WORKDIR set by `instructions` ('/' when none). */
export function workdir(instructions: Instruction[]): string {
  return instructions.filter((i) => i.keyword === 'WORKDIR').pop()?.args ?? '/';
}

/** A COPY's --from stage, sources and destination. */
export function parseCopy(ins: Instruction): { from: string | undefined; sources: string[]; dest: string } {
  const words = ins.args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith('--'));
  const paths = words.filter((w) => !w.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length).toLowerCase();
  return { from, sources: paths.slice(0, -1), dest: paths[paths.length - 1] ?? '' };
}

/** An exec-form (JSON array) ENTRYPOINT or CMD; throws on the shell form, which eats signals. */
export function execForm(ins: Instruction): string[] {
  const parsed: unknown = JSON.parse(ins.args);
  if (!Array.isArray(parsed) || !parsed.every((p) => typeof p === 'string')) throw new Error(`line ${ins.line}: ${ins.keyword} is not in exec form`);
  return parsed as string[];
}
