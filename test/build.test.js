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
