// Worker threads need a JavaScript file. Services run from dist/, where the worker's .js sits beside
// its caller; tests run the TypeScript sources, so the worker comes from the build in dist/.
import fs from 'node:fs';
import path from 'node:path';

const repoRoot = path.resolve(__dirname, '..');

/** The compiled path of the module `name` (no extension) in the same folder as the caller `dir`. */
export function workerScript(dir: string, name: string): string {
  const beside = path.join(dir, `${name}.js`);
  if (fs.existsSync(beside)) return beside;
  const built = path.join(repoRoot, 'dist', path.relative(repoRoot, dir), `${name}.js`);
  if (fs.existsSync(built)) return built;
  throw new Error(`worker script ${name}.js not found beside ${dir} or in ${built}: run \`npm run build\``);
}
