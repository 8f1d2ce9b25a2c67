'use strict';
// Loads the test-only addon, building it first when it is missing or older
// than its sources (it is not part of the published package).
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const dir = __dirname;
const target = path.join(dir, 'build', 'Release', 'objpool_testing.node');
const core = ['objpool.hpp', 'platform.hpp', 'layout.hpp', 'pool.hpp', 'channel.hpp'].map((f) => `../../native/${f}`);
const sources = ['testing.cc', 'binding.gyp', ...core].map((f) => path.join(dir, f));

function stale() {
  if (!fs.existsSync(target)) return true;
  const built = fs.statSync(target).mtimeMs;
  return sources.some((f) => fs.statSync(f).mtimeMs > built);
}

function build() {
  const gyp = require.resolve('node-gyp/bin/node-gyp.js');
  const { buildEnv } = require('../build-env');
  execFileSync(process.execPath, [gyp, 'rebuild', '--silent'], { cwd: dir, stdio: 'inherit', env: buildEnv() });
}

if (process.env.OBJPOOL_TESTING_ADDON) {
  // A given build (a cross-built one, for a suite run under qemu or wine).
  if (require.main !== module) module.exports = require(path.resolve(process.env.OBJPOOL_TESTING_ADDON));
} else if (require.main === module) {
  if (stale()) build();
} else {
  if (stale()) build();
  module.exports = require(target);
}
