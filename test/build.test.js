'use strict';
// binding.gyp and CMakeLists.txt must compile the same sources with the same defines.
const test = require('ava');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const gyp = JSON.parse(fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8')).targets.find((t) => t.target_name === 'objpool');
const cmake = fs.readFileSync(path.join(root, 'CMakeLists.txt'), 'utf8');

function cmakeList(name) {
  const m = cmake.match(new RegExp(`set\\(${name}\\s+([^)]*)\\)`));
  if (!m) throw new Error(`CMakeLists.txt has no set(${name} ...)`);
  return m[1].trim().split(/\s+/);
}

test('both builds compile the same sources', (t) => {
  t.deepEqual([...cmakeList('OBJPOOL_SOURCES')].sort(), [...gyp.sources].sort());
  for (const src of gyp.sources) t.true(fs.existsSync(path.join(root, src)), src);
});

test('both builds use the same defines', (t) => {
  t.deepEqual([...cmakeList('OBJPOOL_DEFINES')].sort(), [...gyp.defines].sort());
});

test('both builds hide symbols and use C++20 with exceptions', (t) => {
  t.true(gyp.cflags_cc.includes('-std=c++20') && gyp.cflags_cc.includes('-fexceptions') && gyp.cflags_cc.includes('-fvisibility=hidden'));
  t.regex(cmake, /CMAKE_CXX_STANDARD 20/);
  t.regex(cmake, /CMAKE_CXX_VISIBILITY_PRESET hidden/);
  t.regex(cmake, /-fexceptions/);
});

test('both builds link the portable prebuild the same way', (t) => {
  const portable = gyp.conditions.find(([cond]) => /objpool_portable\s*==\s*1/.test(cond));
  t.truthy(portable, 'binding.gyp has an objpool_portable condition');
  t.regex(portable[0], /OS\s*==\s*'linux'/);
  t.deepEqual([...cmakeList('OBJPOOL_PORTABLE_SOURCES')].sort(), [...portable[1].sources].sort());
  t.deepEqual(cmakeList('OBJPOOL_PORTABLE_LDFLAGS'), portable[1].ldflags);
  for (const src of portable[1].sources) t.true(fs.existsSync(path.join(root, src)), src);
  t.true(portable[1].ldflags.includes('-static-libstdc++'));
  t.regex(cmake, /if\(OBJPOOL_PORTABLE AND CMAKE_SYSTEM_NAME STREQUAL "Linux"\)/);
});

test('no build names a CPU: portable code only', (t) => {
  const flags = [...gyp.cflags, ...gyp.cflags_cc, ...gyp.conditions.flatMap(([, c]) => [...(c.cflags ?? []), ...(c.cflags_cc ?? []), ...(c.ldflags ?? [])])];
  t.false(flags.some((f) => /^-m(arch|tune|cpu)=|^-m(avx|sse4|bmi)/.test(f)), flags.join(' '));
  t.notRegex(cmake, /-m(arch|tune|cpu)=/);
});
