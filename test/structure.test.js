'use strict';
// The shape of the sources: no import cycle among lib/ modules, type-only
// imports and re-exports included (each module can be read after the ones
// it imports), and lib/native.ts the one module that loads the addon.
const test = require('ava');
const fs = require('node:fs');
const path = require('node:path');

const lib = path.join(__dirname, '..', 'lib');
const modules = fs.readdirSync(lib).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3));

// Every './x' a module imports or re-exports, by any form, types included.
function importsOf(name) {
  const src = fs.readFileSync(path.join(lib, `${name}.ts`), 'utf8');
  const out = new Set();
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"]\.\/([\w-]+)['"]/gm;
  for (let m; (m = re.exec(src)) !== null;) out.add(m[1]);
  return [...out];
}

test('lib/ has no import cycle, type-only imports included', (t) => {
  const graph = Object.fromEntries(modules.map((m) => [m, importsOf(m)]));
  for (const [m, deps] of Object.entries(graph)) for (const d of deps) t.true(modules.includes(d), `${m} imports ./${d}, which is not in lib/`);
  const cycles = [];
  const state = {};
  const visit = (m, trail) => {
    if (state[m] === 'done') return;
    if (state[m] === 'open') { cycles.push([...trail.slice(trail.indexOf(m)), m].join(' -> ')); return; }
    state[m] = 'open';
    for (const d of graph[m] ?? []) visit(d, [...trail, m]);
    state[m] = 'done';
  };
  for (const m of modules) visit(m, []);
  t.deepEqual(cycles, []);
  // The check itself sees imports: the pool imports its hot path and channels.
  t.true(graph.pool.includes('hotpath') && graph.pool.includes('channel'));
});

test('lib/native.ts is the one module that loads the addon', (t) => {
  const loaders = modules.filter((m) => /\.node\b|node-gyp-build|process\.dlopen/.test(fs.readFileSync(path.join(lib, `${m}.ts`), 'utf8')));
  t.deepEqual(loaders, ['native']);
});
