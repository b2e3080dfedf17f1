#!/usr/bin/env node
'use strict';
// Runs the compiled CLI (npm install builds it through `prepare`); from a source checkout without a build,
// compiles on the fly with ts-node.
const path = require('node:path');
const fs = require('node:fs');
const compiled = path.join(__dirname, '..', 'dist', 'app', 'cli.js');
let cli;
if (fs.existsSync(compiled)) {
  cli = require(compiled);
} else {
  require('ts-node').register({ transpileOnly: true, project: path.join(__dirname, '..', 'tsconfig.json') });
  cli = require(path.join(__dirname, '..', 'app', 'cli.ts'));
}
cli.main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`carbonpay: ${error && error.message ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
