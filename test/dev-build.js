#!/usr/bin/env node
'use strict';
// Part of `prepare` (npm ci / npm install in a checkout, npm pack): rebuilds
// the development addon when build/Release/objpool.node is older than its
// sources. The install script (node-gyp-build) compiles only when no addon
// loads at all, so without this a checkout whose native sources changed since
// its last build (a pull, a branch switch) would keep testing the old binary.
// Rebuilds with the tool that made the build: cmake-js if build/ holds its
// cache, else node-gyp. Also `node test/dev-build.js --check`: exit 1 when stale.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const addon = path.join(root, 'build', 'Release', 'objpool.node');

/** The newest source the addon is built from that is newer than the addon, or null. */
function newerSource() {
  const built = fs.statSync(addon).mtimeMs;
  const sources = ['binding.gyp', 'CMakeLists.txt', ...fs.readdirSync(path.join(root, 'native')).map((f) => path.join('native', f))];
  return sources.find((f) => fs.statSync(path.join(root, f)).mtimeMs > built) ?? null;
}

function main() {
  if (!fs.existsSync(addon)) return; // nothing built here (the install script builds what is missing)
  const changed = newerSource();
  if (process.argv.includes('--check')) {
    if (changed) {
      console.error(`${path.relative(root, addon)} is older than ${changed}: run npm run build (or npm run build:cmake)`);
      process.exit(1);
    }
    return;
  }
  if (!changed) return;
  const cmake = fs.existsSync(path.join(root, 'build', 'CMakeCache.txt'));
  console.log(`# ${changed} is newer than ${path.relative(root, addon)}: rebuilding with ${cmake ? 'cmake-js' : 'node-gyp'}`);
  const tool = cmake ? require.resolve('cmake-js/bin/cmake-js') : require.resolve('node-gyp/bin/node-gyp.js');
  execFileSync(process.execPath, [tool, 'rebuild'], { cwd: root, stdio: 'inherit', env: require('./build-env').buildEnv() });
}

if (require.main === module) main();
module.exports = { newerSource };
