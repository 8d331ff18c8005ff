// Lets a child process run the TypeScript sources (services/<name>/main.ts) compiled on load by
// @swc/core with jest's own transform options, so a service started by a test runs the code in the
// tree as the in-process tests do, never a dist/ older than it. Used with `node --require`.
'use strict';
const fs = require('node:fs');
const { transformSync } = require('@swc/core');

const options = {
  jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
  module: { type: 'commonjs' },
  sourceMaps: 'inline',
};

require.extensions['.ts'] = function compileTypeScript(module, filename) {
  const { code } = transformSync(fs.readFileSync(filename, 'utf8'), { ...options, filename });
  module._compile(code, filename);
};
