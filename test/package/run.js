#!/usr/bin/env node
'use strict';
// npm run test:package: the package as a user gets it. `npm pack` (whose
// prepack builds the seven prebuilds, test/package/prebuild.js), then the
// tarball installed into fresh projects in a temporary folder with a PATH
// that holds only node, npm and sh (no compiler, make or python), once with
// install scripts off and once with them on. Checks: the listing holds what
// it must and nothing it must not; require() and ESM import work and the
// pool pops and pushes; the addon that loaded is the prebuild; TypeScript
// consumers compile (moduleResolution node16 and bundler); source maps point
// at shipped sources. Ends with one "package: N passed, N failed" line.
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const symbols = require('./symbols');

const root = path.join(__dirname, '..', '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'objpool-package-'));
// The one this machine loads; the tarball must hold every target's.
const prebuild = 'prebuilds/linux-x64/objpool.glibc.node';
const prebuilds = require('./prebuild').TARGETS.map((t) => `prebuilds/${t.dir}/${t.file}`);
let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? `: ${detail}` : ''}`);
}
function attempt(name, fn) {
  try {
    const detail = fn();
    check(name, true, detail);
  } catch (err) {
    const output = [err.stdout, err.stderr].filter(Boolean).join('\n').trim();
    check(name, false, (output || err.message).split('\n').slice(0, 30).join('\n     '));
  }
}
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;

// npm itself: the one running this script, else the one on PATH.
const npmCli = process.env.npm_execpath && /npm-cli\.js$/.test(process.env.npm_execpath)
  ? process.env.npm_execpath
  : fs.realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());

// 1. Pack (prepack: the prebuild; prepare: tsc).
const t0 = Date.now();
console.log('# npm pack');
const pack = spawnSync(process.execPath, [npmCli, 'pack', '--json', '--pack-destination', work], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
if (pack.status !== 0) {
  process.stdout.write(pack.stdout);
  console.log('package: 0 passed, 1 failed');
  process.exit(1);
}
// Lifecycle scripts print to the same stdout: the JSON is the last block.
const json = pack.stdout.slice(pack.stdout.lastIndexOf('\n[\n') + 1);
for (const line of pack.stdout.slice(0, pack.stdout.length - json.length).split('\n')) if (line.startsWith('#')) console.log(line);
const [info] = JSON.parse(json);
const tarball = path.join(work, info.filename);
console.log(`# ${info.filename}: ${info.entryCount} files, ${kib(info.size)} packed, ${kib(info.unpackedSize)} unpacked (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
for (const f of [...info.files].sort((a, b) => a.path.localeCompare(b.path))) console.log(`#   ${String(f.size).padStart(8)}  ${f.path}`);

// 2. The listing.
const files = new Set(info.files.map((f) => f.path));
// The README links into docs/: every page ships with it.
const docs = fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
const must = ['package.json', 'README.md', ...docs, 'binding.gyp', 'CMakeLists.txt', 'native/addon.cc', 'native/registry.cc',
  'native/waiting.cc', 'native/channels.cc', 'native/segment.cc', 'native/segment.hpp', 'native/binding.hpp', 'native/objpool.hpp', 'native/platform.hpp', 'native/layout.hpp',
  'native/pool.hpp', 'native/channel.hpp', 'native/glibc_compat.cc', 'native/atomic_ref.hpp', 'dist/index.js', 'dist/index.d.ts', 'dist/native.js', 'dist/metrics.js', 'dist/metrics.d.ts', ...prebuilds];
const missing = must.filter((f) => !files.has(f));
check('the tarball holds the compiled API, its typings, the sources for a source build, the docs and the seven prebuilds', missing.length === 0, missing.length ? `missing ${missing.join(', ')}` : '');
const binaries = info.files.filter((f) => f.path.startsWith('prebuilds/'));
check('the tarball stays small: under 2 MiB packed', info.size < 2 * 1024 * 1024,
  `${kib(info.size)} packed; prebuilds ${binaries.map((f) => `${f.path.replace(/^prebuilds\//, '')} ${kib(f.size)}`).join(', ')}`);
const stray = [...files].filter((f) => /^(test|bench|build|build-asan|examples|node_modules|\.ci|\.git)\//.test(f) ||
  /\.(tgz|log|o|tmp)$/.test(f) || (f.endsWith('.node') && !f.startsWith('prebuilds/')) || /^tsconfig/.test(f));
check('no tests, benchmarks, examples, build output or stray binaries', stray.length === 0, stray.join(', '));
const orphanMaps = [...files].filter((f) => f.endsWith('.js.map') && !files.has(f.replace(/^dist\/(.*)\.js\.map$/, 'lib/$1.ts')));
check('every source map ships with its TypeScript source', orphanMaps.length === 0, orphanMaps.join(', '));
attempt('the packed prebuild meets the symbol baseline', () => {
  const bin = path.join(root, prebuild);
  const found = symbols.inspect(bin);
  const bad = symbols.problems(found);
  if (bad.length) throw new Error(bad.join('; '));
  return symbols.summary(found);
});

// 3. A PATH with node, npm and sh only.
const bin = path.join(work, 'bin');
fs.mkdirSync(bin);
fs.symlinkSync(process.execPath, path.join(bin, 'node'));
fs.symlinkSync(npmCli, path.join(bin, 'npm'));
fs.symlinkSync('/bin/sh', path.join(bin, 'sh')); // npm runs install scripts with sh
const env = { PATH: bin, HOME: process.env.HOME ?? os.homedir(), TMPDIR: os.tmpdir(), npm_config_update_notifier: 'false', npm_config_audit: 'false', npm_config_fund: 'false' };
const tools = ['cc', 'gcc', 'g++', 'c++', 'clang', 'clang++', 'make', 'python3', 'python'];
const reachable = tools.filter((tool) => spawnSync('/bin/sh', ['-c', `command -v ${tool}`], { env }).status === 0);
check(`no ${tools.join(', ')} on the consumers' PATH`, reachable.length === 0, reachable.join(', '));
const run = (cmd, args, cwd, withEnv = env) => execFileSync(cmd, args, { cwd, env: withEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
// The source build: this machine's own PATH and npm config, no npm_* variables of the npm running us.
const fullEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

function consumer(name, installArgs, { fromSource = false } = {}) {
  const useEnv = fromSource ? fullEnv : env;
  const node = fromSource ? process.execPath : path.join(bin, 'node');
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `objpool-${name}`, version: '1.0.0', private: true }, null, 2));
  attempt(`${name}: npm install ${['<tarball>', ...installArgs].join(' ')}`, () => {
    const t = Date.now();
    const out = run(fromSource ? process.execPath : path.join(bin, 'npm'), [...(fromSource ? [npmCli] : []), 'install', tarball, '--foreground-scripts', ...installArgs], dir, useEnv);
    const ran = /> node-gyp-build/.test(out);
    if (ran === installArgs.includes('--ignore-scripts')) throw new Error(`the install script ${ran ? 'ran' : 'did not run'}:\n${out}`);
    return `${((Date.now() - t) / 1000).toFixed(1)} s${ran ? ', install script (node-gyp-build) ran' : ''}`;
  });
  const pkg = path.join(dir, 'node_modules', 'objpool');
  const expected = path.join(fs.realpathSync(dir), 'node_modules', 'objpool', fromSource ? 'build/Release/objpool.node' : prebuild);
  if (fromSource) check(`${name}: the install script compiled the addon`, fs.existsSync(expected));
  else check(`${name}: nothing was compiled (no build/ in the installed package)`, !fs.existsSync(path.join(pkg, 'build')));

  fs.writeFileSync(path.join(dir, 'check.cjs'), `
    const path = require('node:path');
    const { ObjectPool, codes } = require('objpool');
    const pool = new ObjectPool({ capacity: 4, objectSize: 64 });
    const h = pool.pop();
    pool.buffer(h).write('hello');
    pool.push(h);
    let code;
    try { pool.push(h); } catch (e) { code = e.code; }
    if (code !== codes.DOUBLE_PUSH) throw new Error('double push not caught: ' + code);
    const out = new Uint32Array(4);
    if (pool.popMany(out) !== 4 || pool.pop() !== -1) throw new Error('popMany');
    pool.pushMany(out);
    const { addonPath } = require(path.join(path.dirname(require.resolve('objpool')), 'native.js'));
    const mapped = process.report.getReport().sharedObjects.filter((f) => f.endsWith('.node'));
    console.log(JSON.stringify({ addonPath, mapped, available: pool.stats().available }));`);
  attempt(`${name}: require('objpool') pops and pushes, and the ${fromSource ? 'source build' : 'prebuild'} is what loaded`, () => {
    const r = JSON.parse(run(node, ['check.cjs'], dir, useEnv));
    if (r.available !== 4) throw new Error(`available ${r.available}`);
    if (r.addonPath !== expected) throw new Error(`loaded ${r.addonPath}, expected ${expected}`);
    if (r.mapped.length !== 1 || fs.realpathSync(r.mapped[0]) !== fs.realpathSync(expected)) throw new Error(`mapped .node files: ${r.mapped.join(', ')}`);
    return path.relative(dir, r.addonPath);
  });

  fs.writeFileSync(path.join(dir, 'check.mjs'), `
    import { ObjectPool, codes, net } from 'objpool';
    import objpool from 'objpool';
    const pool = new ObjectPool({ capacity: 2, objectSize: 8 });
    const b = pool.acquire();
    pool.release(b);
    if (objpool.ObjectPool !== ObjectPool || typeof net.PooledReader !== 'function' || codes.CLOSED !== 'ERR_OBJPOOL_CLOSED') throw new Error('exports');
    await pool.close();
    console.log('ok');`);
  attempt(`${name}: import { ObjectPool } from 'objpool' (ESM)`, () => run(node, ['check.mjs'], dir, useEnv).trim());

  attempt(`${name}: source maps point at shipped sources`, () => {
    const maps = fs.readdirSync(path.join(pkg, 'dist')).filter((f) => f.endsWith('.map'));
    for (const m of maps) {
      const map = JSON.parse(fs.readFileSync(path.join(pkg, 'dist', m), 'utf8'));
      for (const src of map.sources) {
        const file = path.resolve(pkg, 'dist', map.sourceRoot ?? '', src);
        if (!fs.existsSync(file)) throw new Error(`${m}: ${src} is not in the package`);
      }
    }
    return `${maps.length} maps`;
  });
  return dir;
}

const quiet = consumer('consumer-no-scripts', ['--ignore-scripts']);
consumer('consumer-with-scripts', []);
// Where no prebuild fits, the install script compiles (forced here; needs the toolchain).
consumer('consumer-from-source', ['--build-from-source'], { fromSource: true });

// 4. TypeScript consumers (the project's own tsc and @types/node).
const tsDir = path.join(quiet, 'ts');
fs.mkdirSync(tsDir);
const types = { types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')] };
const common = { strict: true, noEmit: true, skipLibCheck: false, target: 'es2022', ...types };
const usage = `
const options: PoolOptions = { capacity: 8, objectSize: 1024 };
const pool = new ObjectPool(options);
const h: number = pool.pop();
const buf: Buffer = pool.buffer(h);
pool.push(h);
const d: PoolDescriptor = pool.descriptor;
const code: ErrorCode = codes.DOUBLE_PUSH;
const helpers: typeof net = net;
void [buf, d, code, helpers];
// @ts-expect-error capacity is required
new ObjectPool({ objectSize: 1 });
`;
const imports = "import { ObjectPool, codes, net, type PoolOptions, type PoolDescriptor, type ErrorCode } from 'objpool';";
fs.writeFileSync(path.join(tsDir, 'cjs.ts'), `${imports}\nimport objpool = require('objpool');\nvoid objpool.ObjectPool;\n${usage}`);
fs.writeFileSync(path.join(tsDir, 'esm.mts'), `${imports}\n${usage}`);
fs.writeFileSync(path.join(tsDir, 'bundler.ts'), `${imports}\n${usage}`);
fs.writeFileSync(path.join(tsDir, 'tsconfig.node16.json'), JSON.stringify({ compilerOptions: { module: 'node16', moduleResolution: 'node16', ...common }, files: ['cjs.ts', 'esm.mts'] }, null, 2));
fs.writeFileSync(path.join(tsDir, 'tsconfig.bundler.json'), JSON.stringify({ compilerOptions: { module: 'esnext', moduleResolution: 'bundler', ...common }, files: ['bundler.ts'] }, null, 2));
for (const mode of ['node16', 'bundler']) {
  attempt(`TypeScript consumer compiles with moduleResolution ${mode}, typings from the installed package`, () => {
    const r = spawnSync(path.join(bin, 'node'), [tsc, '-p', `tsconfig.${mode}.json`, '--explainFiles'], { cwd: tsDir, env, encoding: 'utf8' });
    const out = r.stdout;
    if (r.status !== 0) throw new Error(out.split('\n').filter((l) => /error TS/.test(l)).join('\n') || out || r.stderr);
    const typings = path.join('node_modules', 'objpool', 'dist', 'index.d.ts');
    if (!out.includes(typings)) throw new Error(`${typings} was not used:\n${out}`);
    return 'ok';
  });
}

if (process.env.OBJPOOL_KEEP) console.log(`# kept ${work}`);
else fs.rmSync(work, { recursive: true, force: true });
console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s in all`);
console.log(`package: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
