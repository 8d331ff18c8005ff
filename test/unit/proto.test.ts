import { execFileSync } from 'node:child_process';
import path from 'node:path';

describe('generated proto types', () => {
  it('are current with proto/ (scripts/gen-proto-types.js --check)', () => {
    const root = path.resolve(__dirname, '../..');
    expect(() => execFileSync(process.execPath, [path.join(root, 'scripts/gen-proto-types.js'), '--check'], { cwd: root, stdio: 'pipe' })).not.toThrow();
  });
});
