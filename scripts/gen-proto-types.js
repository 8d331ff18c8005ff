#!/usr/bin/env node
// Generates TypeScript types for every .proto under proto/ into lib/grpc/generated/ with
// proto-loader-gen-types, using the same options as lib/grpc/proto.ts. Never edit the output by hand;
// `node scripts/gen-proto-types.js --check` (run by the tests) fails when it is out of date.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const protoRoot = path.join(root, 'proto');
const target = path.join(root, 'lib', 'grpc', 'generated');
const protos = ['inference/grpc_service.proto', 'grpc/health/v1/health.proto', 'infermesh/registry/v1/registry.proto', 'infermesh/registry/v1/rollouts.proto'];

function generate(outDir) {
  fs.rmSync(outDir, { recursive: true, force: true });
  execFileSync(path.join(root, 'node_modules', '.bin', 'proto-loader-gen-types'), [
    '--keepCase', '--longs=String', '--enums=String', '--defaults', '--oneofs', '--bytes=Buffer',
    '--grpcLib=@grpc/grpc-js', '-I', 'proto', '-I', 'proto/inference', `--outDir=${outDir}`, ...protos,
  ], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  // The generator writes the absolute proto path in a header line; keep the output clone-independent.
  for (const file of walk(outDir)) {
    const text = fs.readFileSync(file, 'utf8').replace(/^\/\/ Original file: .*$/m, (line) =>
      line.replace(protoRoot + path.sep, 'proto/'));
    fs.writeFileSync(file, text);
  }
}

function* walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) yield* walk(full); else yield full;
  }
}

function snapshot(dir) {
  const out = new Map();
  for (const f of walk(dir)) out.set(path.relative(dir, f), fs.readFileSync(f, 'utf8'));
  return out;
}

if (process.argv.includes('--check')) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-gen-'));
  try {
    generate(tmp);
    const want = snapshot(tmp);
    const have = fs.existsSync(target) ? snapshot(target) : new Map();
    const stale = [...new Set([...want.keys(), ...have.keys()])].filter((k) => want.get(k) !== have.get(k));
    if (stale.length) {
      console.error(`lib/grpc/generated is out of date (${stale.slice(0, 5).join(', ')}…): run node scripts/gen-proto-types.js`);
      process.exit(1);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
} else {
  generate(target);
  console.log('generated lib/grpc/generated');
}
