#!/usr/bin/env node
// The `infermesh` command; the code is built into dist/ by `npm run build` (npm start/test do it).
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const main = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
if (!fs.existsSync(main)) {
  console.error('infermesh: not built yet; run `npm run setup` in ' + path.dirname(__dirname));
  process.exit(1);
}
require(main);
