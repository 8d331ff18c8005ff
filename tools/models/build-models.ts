// `node dist/tools/models/build-models.js [--out DIR] [--force]`: writes the project's own models
// (default DIR: <repo>/models), skipping files that exist unless --force; one line per file written.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { writeModels } from './write-models';

const REPO_ROOT = path.resolve(__dirname, '../../..');

// Relative to the working directory when inside it, else absolute.
function shortPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { out: { type: 'string', default: path.join(REPO_ROOT, 'models') }, force: { type: 'boolean', default: false } },
  });
  const outDir = path.resolve(values.out);
  const startedMs = Date.now();
  const { written, skipped } = await writeModels({
    outDir,
    force: values.force,
    onFile: (file, bytes) => console.log(`wrote ${shortPath(file)} (${bytes} bytes)`),
  });
  const seconds = ((Date.now() - startedMs) / 1000).toFixed(1);
  console.log(`models: ${written.length} written, ${skipped.length} kept, in ${outDir} (${seconds} s)`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(`build-models: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
