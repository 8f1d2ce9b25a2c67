'use strict';
// Which addon file loads: lib/native.ts asks node-gyp-build, which prefers a
// source build (build/Release, build/Debug) over prebuilds/. A checkout runs
// its own build; the installed package (no build/ in the tarball) runs the
// prebuild (test/package/run.js checks that side on a packed tarball).
const test = require('ava');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { addonPath } = require('../dist/native');
const { newerSource } = require('./dev-build');

const root = path.join(__dirname, '..');
const built = path.join(root, 'build', 'Release', 'objpool.node');

test('a checkout loads its own build (or the one OBJPOOL_ADDON names)', (t) => {
  if (process.env.OBJPOOL_ADDON) {
    t.is(addonPath, path.resolve(process.env.OBJPOOL_ADDON));
    return;
  }
  t.is(addonPath, built, 'node-gyp-build must pick build/Release; a prebuild here would test stale code (npm run build)');
  const changed = newerSource();
  t.is(changed, null, `${changed} changed after the addon was built: run npm run build (npm ci does it too)`);
});

// A copy of the package's loader with a chosen set of addon files around it.
function layout(t, files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'objpool-loader-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'dist'));
  fs.copyFileSync(path.join(root, 'dist', 'native.js'), path.join(dir, 'dist', 'native.js'));
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'objpool' }));
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.copyFileSync(built, path.join(dir, f));
  }
  const env = { ...process.env, NODE_PATH: path.join(root, 'node_modules') };
  delete env.OBJPOOL_ADDON;
  delete env.OBJPOOL_PREBUILD;
  const run = spawnSync(process.execPath, ['-e', `
    try { const n = require('./dist/native.js'); console.log(JSON.stringify({ path: n.addonPath, ok: typeof n.native.open === 'function' })); }
    catch (e) { console.log(JSON.stringify({ error: e.message, code: e.code })); }`], { cwd: dir, env, encoding: 'utf8' });
  t.is(run.status, 0, run.stderr);
  return { dir, result: JSON.parse(run.stdout) };
}

test('the loader takes build/Release over prebuilds/, and the prebuild when there is no build', (t) => {
  const prebuild = path.join('prebuilds', 'linux-x64', 'objpool.glibc.node');
  if (process.platform !== 'linux' || process.arch !== 'x64') return t.pass('the prebuild is linux-x64 only');
  const both = layout(t, [prebuild, path.join('build', 'Release', 'objpool.node')]);
  t.deepEqual(both.result, { path: path.join(both.dir, 'build', 'Release', 'objpool.node'), ok: true });
  const only = layout(t, [prebuild]);
  t.deepEqual(only.result, { path: path.join(only.dir, prebuild), ok: true });
});

test('with no addon anywhere, the error lists every place it looked', (t) => {
  const { dir, result } = layout(t, [path.join('prebuilds', 'darwin-arm64', 'objpool.node')]);
  t.is(result.code, 'ERR_OBJPOOL_NO_ADDON');
  for (const where of [path.join(dir, 'build', 'Release'), path.join(dir, 'build', 'Debug'), path.join(dir, 'prebuilds', `${process.platform}-${process.arch}`)]) {
    t.true(result.error.includes(where), `${where} in: ${result.error}`);
  }
  t.regex(result.error, /npm rebuild objpool/);
});
