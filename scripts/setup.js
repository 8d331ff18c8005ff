#!/usr/bin/env node
// Makes a fresh clone runnable: npm dependencies, the nats-server binary, the build and the demo
// models. `npm start`, `npm test` and `npm run bench` run it first; each step is skipped when done.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const quiet = process.argv.includes('--quiet');
const say = (msg) => { if (!quiet) console.error(`setup: ${msg}`); };

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) {
    console.error(`setup: \`${cmd} ${args.join(' ')}\` failed (exit ${r.status})`);
    process.exit(r.status ?? 1);
  }
}

function onPath(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).status === 0;
}

function dependencies() {
  const lock = path.join(root, 'package-lock.json');
  const installed = path.join(root, 'node_modules', '.package-lock.json');
  if (fs.existsSync(installed) && fs.statSync(installed).mtimeMs >= fs.statSync(lock).mtimeMs) return;
  say('installing npm dependencies');
  // `npm install` follows package-lock.json like `npm ci` but tolerates optional platform
  // packages a registry mirror does not carry. onnxruntime-node's install script downloads CUDA
  // binaries; the CPU build ships in the package, so it is skipped.
  run('npm', ['install', '--no-audit', '--no-fund'], { ONNXRUNTIME_NODE_INSTALL: 'skip' });
}

function natsServer() {
  if (process.env.INFERMESH_NATS_URL || process.env.NATS_URL || onPath('nats-server')) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const sudo = isRoot ? [] : onPath('sudo') ? ['sudo'] : null;
  if (!onPath('apt-get') || sudo === null) {
    console.error('setup: nats-server is not on PATH. Install it (Debian/Ubuntu: `apt-get install -y nats-server`;');
    console.error('       elsewhere: https://docs.nats.io) or point INFERMESH_NATS_URL at a NATS server with JetStream.');
    process.exit(1);
  }
  say('installing nats-server from the distribution packages');
  const apt = (args, env) => (sudo.length ? run('sudo', ['apt-get', ...args], env) : run('apt-get', args, env));
  apt(['update', '-qq']);
  apt(['install', '-y', '-qq', 'nats-server'], { DEBIAN_FRONTEND: 'noninteractive' });
}

function newestMtime(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : fs.statSync(full).mtimeMs);
  }
  return newest;
}

function build() {
  const stamp = path.join(root, 'dist', '.built');
  const sources = ['lib', 'services', 'client', 'cli', 'bench', 'tools', 'fuzz', 'proto']
    .filter((d) => fs.existsSync(path.join(root, d)))
    .map((d) => newestMtime(path.join(root, d)));
  if (fs.existsSync(stamp) && fs.statSync(stamp).mtimeMs >= Math.max(...sources)) return;
  say('building dist/');
  run(process.execPath, [path.join(root, 'scripts', 'build.js'), '--quiet']);
  fs.writeFileSync(stamp, new Date().toISOString());
}

function models() {
  say('checking models/');
  run(process.execPath, [path.join(root, 'dist', 'tools', 'models', 'build-models.js')]);
}

dependencies();
natsServer();
build();
models();
