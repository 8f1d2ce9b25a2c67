'use strict';
// What a Linux binary needs from the system, read with `objdump -T` (dynamic
// symbols) and `objdump -p` (NEEDED libraries), checked against the baseline
// the prebuilt addon promises.
const { execFileSync } = require('node:child_process');

// GLIBC 2.28 is the floor of Node's own official Linux x64 binaries (20 and
// later), so the prebuild loads wherever they run. GCC_ versions come from
// libgcc_s.so.1 (GCC 7.0.0: the libgcc_s of GCC 8, as in RHEL 8). No
// GLIBCXX_/CXXABI_ version at all: libstdc++ is linked in.
const BASELINE = { GLIBC: '2.28', GCC: '7.0.0' };
const ALLOWED_LIBS = new Set(['libc.so.6', 'libm.so.6', 'libgcc_s.so.1', 'libpthread.so.0', 'libdl.so.2', 'ld-linux-x86-64.so.2']);

function compare(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

function objdump(args) {
  try {
    return execFileSync('objdump', args, { encoding: 'utf8' });
  } catch (err) {
    if (err.code === 'ENOENT') throw new Error('objdump is not installed (binutils)');
    throw err;
  }
}

/** { versions: { GLIBC: ['2.2.5', ...], ... }, max: { GLIBC: '2.18', ... }, needed: [...], bySymbol: [...] } */
function inspect(file) {
  const versions = {};
  const bySymbol = [];
  for (const line of objdump(['-T', file]).split('\n')) {
    const m = /\*UND\*\s+\S+\s+\(?([A-Z_]+)_([0-9.]+)\)?\s+(\S+)/.exec(line);
    if (!m) continue;
    (versions[m[1]] ??= new Set()).add(m[2]);
    bySymbol.push({ lib: m[1], version: m[2], symbol: m[3] });
  }
  const max = {};
  for (const [lib, set] of Object.entries(versions)) {
    versions[lib] = [...set].sort(compare);
    max[lib] = versions[lib].at(-1);
  }
  const needed = [...objdump(['-p', file]).matchAll(/^\s*NEEDED\s+(\S+)/gm)].map((m) => m[1]);
  return { versions, max, needed, bySymbol };
}

/** The ways `file` breaks the baseline (empty when it does not); `extraLibs`:
 * more allowed NEEDED entries (another architecture's dynamic loader). */
function problems(info, extraLibs = []) {
  const out = [];
  for (const lib of Object.keys(info.versions)) {
    if (lib === 'GLIBCXX' || lib === 'CXXABI') {
      const syms = info.bySymbol.filter((s) => s.lib === lib).map((s) => `${s.symbol}@${lib}_${s.version}`);
      out.push(`needs libstdc++ (${syms.slice(0, 5).join(', ')}${syms.length > 5 ? ', ...' : ''})`);
    } else if (lib in BASELINE) {
      for (const s of info.bySymbol) {
        if (s.lib === lib && compare(s.version, BASELINE[lib]) > 0) out.push(`${s.symbol} needs ${lib}_${s.version} > ${BASELINE[lib]}`);
      }
    } else {
      out.push(`needs symbol versions ${lib}_${info.versions[lib].join(', ')} (not in the baseline)`);
    }
  }
  for (const lib of info.needed) if (!ALLOWED_LIBS.has(lib) && !extraLibs.includes(lib)) out.push(`links ${lib}`);
  return out;
}

function summary(info) {
  const max = Object.entries(info.max).map(([lib, v]) => `${lib}_${v}`).join(', ');
  return `max versions: ${max || 'none'}; NEEDED: ${info.needed.join(', ')}`;
}

module.exports = { BASELINE, inspect, problems, summary };
