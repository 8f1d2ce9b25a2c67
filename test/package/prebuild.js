#!/usr/bin/env node
'use strict';
// npm run build:prebuild (and prepack, so every packed tarball has a fresh
// one): builds the prebuilt addon the package ships,
// prebuilds/linux-x64/objpool.glibc.node, with prebuildify (N-API, one binary
// for every Node version from 20 on).
//
// Portable: binding.gyp's objpool_portable=1 links libstdc++ in (symbols kept
// private) and the compiler flags name no CPU (no -march). The result is
// checked with objdump against test/package/symbols.js's baseline: no GLIBCXX
// symbol, GLIBC <= 2.28. It is built in a copy of the sources under
// build/prebuild/, so a development build in build/Release stays as it was
// (prebuildify would move it away).
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { buildEnv } = require('../build-env');
const symbols = require('./symbols');

const root = path.join(__dirname, '..', '..');
// Elsewhere (packing a git dependency on another platform, say) there is
// nothing to build: the package then compiles from source where it installs.
// Publishing needs the prebuild, so `npm publish` stops here instead.
if (process.platform !== 'linux' || process.arch !== 'x64' || fs.existsSync('/etc/alpine-release')) {
  const msg = 'build:prebuild: the published prebuild is linux-x64 (glibc); build it on such a host';
  if (process.env.npm_command === 'publish') {
    console.error(msg);
    process.exit(1);
  }
  console.warn(`${msg} (skipped)`);
  process.exit(0);
}
const stage = path.join(root, 'build', 'prebuild');
const dest = path.join(root, 'prebuilds', 'linux-x64');
fs.rmSync(stage, { recursive: true, force: true });
fs.rmSync(dest, { recursive: true, force: true });
fs.mkdirSync(stage, { recursive: true });
for (const f of ['package.json', 'binding.gyp', 'native']) fs.cpSync(path.join(root, f), path.join(stage, f), { recursive: true });

const t0 = Date.now();
const prebuildify = require.resolve('prebuildify/bin.js');
execFileSync(process.execPath, [prebuildify, '--napi', '--strip', '--tag-libc', '--cwd', stage, '--out', root], {
  cwd: stage,
  stdio: ['ignore', 'ignore', 'inherit'],
  env: { ...buildEnv(), npm_config_objpool_portable: '1', npm_config_loglevel: 'warn' },
});
fs.rmSync(stage, { recursive: true, force: true });

const file = path.join(dest, 'objpool.glibc.node');
if (!fs.existsSync(file)) throw new Error(`prebuildify did not write ${file}`);
const info = symbols.inspect(file);
console.log(`# ${path.relative(root, file)}: ${fs.statSync(file).size} bytes, built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
console.log(`# ${symbols.summary(info)}`);
const bad = symbols.problems(info);
if (bad.length) {
  console.error(`# not portable (baseline: GLIBC <= ${symbols.BASELINE.GLIBC}, GCC <= ${symbols.BASELINE.GCC}, no GLIBCXX):\n#   ${bad.join('\n#   ')}`);
  process.exit(1);
}
