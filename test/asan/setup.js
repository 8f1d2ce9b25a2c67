'use strict';
// The AddressSanitizer + UBSan build of the addon and the environment that
// runs Node against it, for test/asan/run.js and test/fuzz/long.js.
//
// How the sanitizer runtime is loaded: node itself is not instrumented, so
// ASan's runtime must be the first library in the process. We preload the
// compiler's libasan.so (g++ -print-file-name=libasan.so) with LD_PRELOAD,
// and point lib/native.ts at the instrumented addon with OBJPOOL_ADDON. Leak
// detection is off (node does not free everything at exit); any other ASan
// or UBSan report aborts the process and fails the run.
const { execFileSync, spawnSync } = require('node:child_process');
const path = require('node:path');
const fs = require('node:fs');

const root = path.join(__dirname, '..', '..');
const out = path.join(root, 'build-asan');
const addon = path.join(out, 'Release', 'objpool.node');

/** Builds build-asan/Release/objpool.node (cmake-js, same sources and defines as the real build). */
function build() {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  console.log('# building the addon with -fsanitize=address,undefined (CMakeLists.txt: OBJPOOL_SANITIZE)');
  execFileSync(process.execPath, [cmakeJs, 'rebuild', '--out', out, '--CDOBJPOOL_SANITIZE=address,undefined'], {
    cwd: root, stdio: ['ignore', 'ignore', 'inherit'], env: require('../build-env').buildEnv(),
  });
  if (!fs.existsSync(addon)) throw new Error(`no ${addon}`);
}

/** The environment that runs Node against the instrumented addon. */
function env(base = process.env) {
  const cxx = base.CXX || 'g++';
  const lib = (name) => execFileSync(cxx, [`-print-file-name=${name}`], { encoding: 'utf8' }).trim();
  return {
    ...base,
    LD_PRELOAD: [lib('libasan.so'), lib('libubsan.so')].join(' '),
    OBJPOOL_ADDON: addon,
    // A small quarantine: freed memory is held back for use-after-free
    // detection (256 MiB by default), which the lifecycle test would read as
    // a leak when it measures RSS.
    ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=0:quarantine_size_mb=8',
    UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
  };
}

/** Canaries: the addon must really be instrumented, and the preload really in effect. Throws if not. */
function check(asanEnv) {
  const symbols = execFileSync('nm', ['-D', '--undefined-only', addon], { encoding: 'utf8' });
  if (!/__asan_report_/.test(symbols) || !/__ubsan_handle_/.test(symbols)) throw new Error(`${addon} is not instrumented with ASan and UBSan`);
  const probe = spawnSync(process.execPath, ['-e', `
    const m = require('node:fs').readFileSync('/proc/self/maps', 'utf8');
    if (!m.includes('libasan')) { console.error('libasan is not loaded'); process.exit(1); }
    require(process.env.OBJPOOL_ADDON);`], { env: asanEnv, stdio: 'inherit' });
  if (probe.status !== 0) throw new Error('the ASan runtime is not in effect');
}

module.exports = { root, addon, build, env, check };
