// Markdown output of the benchmarks: tables, number formats, and the results folder.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A Markdown table of `rows` under `header`; cells are written as given. */
export function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** A number with `digits` decimals, or '–' when it is not finite. */
export function num(v: number, digits = 0): string {
  if (!Number.isFinite(v)) return '–';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A ratio as "3.1×". */
export function ratio(v: number): string {
  return Number.isFinite(v) ? `${v.toFixed(2)}×` : '–';
}

/** One line describing where the numbers were measured. */
export function machineLine(): string {
  const cpus = os.cpus();
  const model = cpus[0]?.model.trim() ?? 'unknown CPU';
  return `${os.availableParallelism()} cores (${model}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}; load average at start ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`;
}

/** The folder results are written to (bench/results/, git-ignored). */
export function resultsDir(root: string): string {
  return path.join(root, 'bench', 'results');
}

/** Writes `markdown` to bench/results/<name>.md and returns the path. */
export function writeResult(root: string, name: string, markdown: string): string {
  const dir = resultsDir(root);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.md`);
  fs.writeFileSync(file, markdown.endsWith('\n') ? markdown : markdown + '\n');
  return file;
}
