#!/usr/bin/env node
'use strict';
// npm run test:asan: builds the addon with AddressSanitizer + UBSan into
// build-asan/ and runs the whole ava suite against it (see setup.js).
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const asan = require('./setup');

asan.build();
const env = asan.env();
asan.check(env);
console.log(`# running the ava suite with ${path.relative(asan.root, asan.addon)} under ASan + UBSan`);
const ava = path.join(asan.root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');
// The channel campaign (test/process-channel.test.js) runs 500 kills in npm
// test; 200 here keep CI short (the pool campaign keeps its 500).
const run = spawnSync(process.execPath, [ava, ...process.argv.slice(2)], { cwd: asan.root, env: { OBJPOOL_CHANNEL_KILLS: '200', ...env }, stdio: 'inherit' });
process.exit(run.status ?? 1);
