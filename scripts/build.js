#!/usr/bin/env node
// Compiles the TypeScript sources to dist/ with swc (type checking is `npm run typecheck`),
// and copies proto/ beside them, so dist/ alone (with node_modules) runs every service.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const swc = require('@swc/core');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'dist');
const sourceDirs = ['lib', 'services', 'client', 'cli', 'bench', 'tools', 'fuzz'];
const swcOptions = {
  jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
  module: { type: 'commonjs' },
  sourceMaps: 'inline',
};

function* walk(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(full);
    else yield full;
  }
}

function build() {
  fs.rmSync(out, { recursive: true, force: true });
  let count = 0;
  for (const dir of sourceDirs) {
    const abs = path.join(root, dir);
    if (!fs.existsSync(abs)) continue;
    for (const file of walk(abs)) {
      if (!file.endsWith('.ts') || file.endsWith('.d.ts')) continue;
      const rel = path.relative(root, file);
      const target = path.join(out, rel.replace(/\.ts$/, '.js'));
      const { code } = swc.transformFileSync(file, { ...swcOptions, filename: file, sourceFileName: path.relative(path.dirname(target), file) });
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, code);
      count++;
    }
  }
  fs.cpSync(path.join(root, 'proto'), path.join(out, 'proto'), { recursive: true });
  return count + buildConsole();
}

/**
 * The web console (console/): its TypeScript compiled for the browser as a module with no imports,
 * its page and styles, and uPlot's browser build and styles beside them, in dist/console.
 */
function buildConsole() {
  const src = path.join(root, 'console');
  const target = path.join(out, 'console');
  fs.mkdirSync(target, { recursive: true });
  const file = path.join(src, 'app.ts');
  const { code } = swc.transformFileSync(file, { ...swcOptions, module: { type: 'es6' }, sourceMaps: false, filename: file });
  fs.writeFileSync(path.join(target, 'app.js'), code);
  for (const f of ['index.html', 'app.css']) fs.copyFileSync(path.join(src, f), path.join(target, f));
  const uplot = path.dirname(require.resolve('uplot/package.json'));
  for (const f of ['uPlot.iife.min.js', 'uPlot.min.css']) fs.copyFileSync(path.join(uplot, 'dist', f), path.join(target, f));
  return 1;
}

const count = build();
if (!process.argv.includes('--quiet')) console.log(`build: ${count} files compiled to dist/`);
