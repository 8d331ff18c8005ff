// infermesh's version, from package.json (found from the sources or from dist/).
import fs from 'node:fs';
import path from 'node:path';

function readVersion(): string {
  for (const p of [path.resolve(__dirname, '../package.json'), path.resolve(__dirname, '../../package.json')]) {
    try {
      const pkg = JSON.parse(fs.readFileSync(p, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'infermesh' && pkg.version) return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return '0.0.0';
}

/** The running infermesh version. */
export const VERSION: string = readVersion();
