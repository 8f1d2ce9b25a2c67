'use strict';
// Reads what the prebuild checks need straight from a binary's headers, for
// the three formats the prebuilds come in, without a tool per format: ELF
// (Linux), Mach-O (macOS) and PE/COFF (Windows).
//
//   read(file) -> { format: 'elf' | 'macho' | 'pe', cpu: 'x64' | 'arm64' | ..., ... }
//
// ELF:    { stripped (no .symtab), sections }  (imports: symbols.js, objdump)
// Mach-O: { filetype, dylibs, minos, sdk, undefined: [{ name, from }], locals,
//           stabs, exported, signature: { present, valid, adhoc, error } }
// PE:     { dll, imports: { 'KERNEL32.dll': [names], ... }, exports: [names],
//           stripped (no COFF symbol table, no .debug sections), sections }
const fs = require('node:fs');
const crypto = require('node:crypto');

const ELF_MACHINE = { 3: 'ia32', 40: 'arm', 62: 'x64', 183: 'arm64' };
const MACHO_CPU = { 0x01000007: 'x64', 0x0100000c: 'arm64' };
const PE_MACHINE = { 0x8664: 'x64', 0xaa64: 'arm64', 0x14c: 'ia32' };

function cstr(buf, off, max = buf.length - off) {
  const end = buf.indexOf(0, off);
  return buf.toString('latin1', off, end < 0 || end > off + max ? off + max : end);
}

function read(file) {
  const b = fs.readFileSync(file);
  if (b.length >= 4 && b.readUInt32BE(0) === 0x7f454c46) return elf(b);
  if (b.length >= 4 && b.readUInt32LE(0) === 0xfeedfacf) return macho(b);
  if (b.length >= 2 && b.toString('latin1', 0, 2) === 'MZ') return pe(b);
  return { format: 'unknown' };
}

function elf(b) {
  if (b[4] !== 2 || b[5] !== 1) return { format: 'elf', cpu: 'unknown', error: 'not ELF64 little-endian' };
  const type = b.readUInt16LE(16);
  const cpu = ELF_MACHINE[b.readUInt16LE(18)] ?? `machine ${b.readUInt16LE(18)}`;
  const shoff = Number(b.readBigUInt64LE(40));
  const shentsize = b.readUInt16LE(58);
  const shnum = b.readUInt16LE(60);
  const shstrndx = b.readUInt16LE(62);
  const sh = (i) => shoff + i * shentsize;
  const strOff = shnum ? Number(b.readBigUInt64LE(sh(shstrndx) + 24)) : 0;
  const sections = [];
  for (let i = 0; i < shnum; i++) sections.push(cstr(b, strOff + b.readUInt32LE(sh(i))));
  return { format: 'elf', cpu, shared: type === 3, sections, stripped: !sections.includes('.symtab') && !sections.some((s) => s.startsWith('.debug')) };
}

// Mach-O: load commands, the symbol table and the ad-hoc code signature.
const LC = { DYLD_INFO_ONLY: 0x80000022, DYLD_EXPORTS_TRIE: 0x80000033, SYMTAB: 0x2, LOAD_DYLIB: 0xc, ID_DYLIB: 0xd, LOAD_WEAK_DYLIB: 0x80000018, REEXPORT_DYLIB: 0x8000001f, CODE_SIGNATURE: 0x1d, BUILD_VERSION: 0x32, VERSION_MIN_MACOSX: 0x24 };
const N_STAB = 0xe0;
const N_EXT = 0x01;
const N_PEXT = 0x10;
const N_TYPE = 0x0e;
const N_UNDF = 0x0;
const DYNAMIC_LOOKUP_ORDINAL = 0xfe;

function version(v) {
  return `${v >>> 16}.${(v >> 8) & 0xff}${v & 0xff ? `.${v & 0xff}` : ''}`;
}

function macho(b) {
  const cpu = MACHO_CPU[b.readUInt32LE(4)] ?? `cputype 0x${b.readUInt32LE(4).toString(16)}`;
  const filetype = { 6: 'dylib', 8: 'bundle' }[b.readUInt32LE(12)] ?? `filetype ${b.readUInt32LE(12)}`;
  const ncmds = b.readUInt32LE(16);
  const out = { format: 'macho', cpu, filetype, dylibs: [], minos: null, sdk: null, undefined: [], locals: 0, stabs: 0, exported: [] };
  let off = 32;
  let symtab = null;
  let sig = null;
  let trie = null;
  for (let i = 0; i < ncmds; i++) {
    const cmd = b.readUInt32LE(off);
    const size = b.readUInt32LE(off + 4);
    if (cmd === LC.LOAD_DYLIB || cmd === LC.LOAD_WEAK_DYLIB || cmd === LC.REEXPORT_DYLIB) out.dylibs.push(cstr(b, off + b.readUInt32LE(off + 8), size));
    else if (cmd === LC.BUILD_VERSION) {
      out.minos = version(b.readUInt32LE(off + 12));
      out.sdk = version(b.readUInt32LE(off + 16));
    } else if (cmd === LC.VERSION_MIN_MACOSX) {
      out.minos = version(b.readUInt32LE(off + 8));
      out.sdk = version(b.readUInt32LE(off + 12));
    } else if (cmd === LC.SYMTAB) symtab = { symoff: b.readUInt32LE(off + 8), nsyms: b.readUInt32LE(off + 12), stroff: b.readUInt32LE(off + 16) };
    else if (cmd === LC.DYLD_INFO_ONLY) trie = { off: b.readUInt32LE(off + 40), size: b.readUInt32LE(off + 44) };
    else if (cmd === LC.DYLD_EXPORTS_TRIE) trie = { off: b.readUInt32LE(off + 8), size: b.readUInt32LE(off + 12) };
    else if (cmd === LC.CODE_SIGNATURE) sig = { dataoff: b.readUInt32LE(off + 8), datasize: b.readUInt32LE(off + 12) };
    off += size;
  }
  if (symtab) {
    for (let i = 0; i < symtab.nsyms; i++) {
      const e = symtab.symoff + i * 16;
      const name = cstr(b, symtab.stroff + b.readUInt32LE(e)).replace(/^_/, '');
      const type = b[e + 4];
      const desc = b.readUInt16LE(e + 6);
      if (type & N_STAB) out.stabs++;
      else if (!(type & N_EXT) || (type & N_PEXT)) out.locals++;
      else if ((type & N_TYPE) === N_UNDF) {
        const ord = (desc >> 8) & 0xff;
        const from = ord === DYNAMIC_LOOKUP_ORDINAL ? 'dynamic lookup' : ord >= 1 && ord <= out.dylibs.length ? out.dylibs[ord - 1] : `ordinal ${ord}`;
        out.undefined.push({ name, from });
      }
    }
  }
  // What dyld (dlsym) finds: the export trie, not the symbol table (which a
  // strip empties of everything but the undefined symbols).
  if (trie && trie.size) out.exported = exportTrie(b.subarray(trie.off, trie.off + trie.size)).map((n) => n.replace(/^_/, ''));
  out.stripped = out.locals === 0 && out.stabs === 0;
  out.signature = sig ? verifySignature(b, sig) : { present: false };
  return out;
}

function uleb(buf, pos) {
  let v = 0;
  let shift = 0;
  for (;;) {
    const byte = buf[pos.i++];
    v += (byte & 0x7f) * 2 ** shift;
    if (!(byte & 0x80)) return v;
    shift += 7;
  }
}

function exportTrie(t) {
  const names = [];
  const walk = (node, prefix, depth) => {
    if (depth > 128 || node >= t.length) return;
    const pos = { i: node };
    const terminal = uleb(t, pos);
    if (terminal) names.push(prefix);
    pos.i += terminal;
    const children = t[pos.i++];
    for (let c = 0; c < children; c++) {
      const end = t.indexOf(0, pos.i);
      const edge = t.toString('latin1', pos.i, end);
      pos.i = end + 1;
      walk(uleb(t, pos), prefix + edge, depth + 1);
    }
  };
  walk(0, '', 0);
  return names;
}

// Checks the ad-hoc signature's code hashes against the file, page by page:
// arm64 macOS refuses to map code whose signature does not match (a strip
// after the link must re-sign; llvm-strip >= 14 does).
function verifySignature(b, { dataoff, datasize }) {
  try {
    const sb = b.subarray(dataoff, dataoff + datasize);
    if (sb.readUInt32BE(0) !== 0xfade0cc0) return { present: true, valid: false, error: 'no SuperBlob' };
    const count = sb.readUInt32BE(8);
    for (let i = 0; i < count; i++) {
      const type = sb.readUInt32BE(12 + i * 8);
      const off = sb.readUInt32BE(16 + i * 8);
      if (type !== 0) continue;  // CSSLOT_CODEDIRECTORY
      const cd = sb.subarray(off);
      if (cd.readUInt32BE(0) !== 0xfade0c02) return { present: true, valid: false, error: 'bad CodeDirectory' };
      const flags = cd.readUInt32BE(12);
      const hashOffset = cd.readUInt32BE(16);
      const nCodeSlots = cd.readUInt32BE(28);
      const codeLimit = cd.readUInt32BE(32);
      const hashSize = cd[36];
      const hashType = cd[37];
      const pageSize = 2 ** cd[39];
      const algo = { 1: 'sha1', 2: 'sha256' }[hashType];
      if (!algo) return { present: true, valid: false, error: `hash type ${hashType}` };
      for (let s = 0; s < nCodeSlots; s++) {
        const page = b.subarray(s * pageSize, Math.min((s + 1) * pageSize, codeLimit));
        const want = cd.subarray(hashOffset + s * hashSize, hashOffset + (s + 1) * hashSize);
        const got = crypto.createHash(algo).update(page).digest().subarray(0, hashSize);
        if (!got.equals(want)) return { present: true, valid: false, error: `page ${s} hash differs` };
      }
      return { present: true, valid: true, adhoc: (flags & 0x2) !== 0, linkerSigned: (flags & 0x20000) !== 0, pages: nCodeSlots };
    }
    return { present: true, valid: false, error: 'no CodeDirectory' };
  } catch (err) {
    return { present: true, valid: false, error: err.message };
  }
}

// PE/COFF: machine, DLL flag, section names, import and export names.
function pe(b) {
  const peOff = b.readUInt32LE(0x3c);
  if (b.readUInt32LE(peOff) !== 0x00004550) return { format: 'pe', cpu: 'unknown', error: 'no PE signature' };
  const coff = peOff + 4;
  const cpu = PE_MACHINE[b.readUInt16LE(coff)] ?? `machine 0x${b.readUInt16LE(coff).toString(16)}`;
  const nsect = b.readUInt16LE(coff + 2);
  const symPtr = b.readUInt32LE(coff + 8);
  const nsyms = b.readUInt32LE(coff + 12);
  const optSize = b.readUInt16LE(coff + 16);
  const chars = b.readUInt16LE(coff + 18);
  const opt = coff + 20;
  const pe32plus = b.readUInt16LE(opt) === 0x20b;
  const dd = opt + (pe32plus ? 112 : 96);
  const dir = (i) => ({ rva: b.readUInt32LE(dd + i * 8), size: b.readUInt32LE(dd + i * 8 + 4) });
  const sections = [];
  for (let i = 0; i < nsect; i++) {
    const s = opt + optSize + i * 40;
    let name = cstr(b, s, 8);
    // Long names ("/123") live in the COFF string table.
    if (name.startsWith('/') && symPtr) name = cstr(b, symPtr + nsyms * 18 + Number(name.slice(1)));
    sections.push({ name, va: b.readUInt32LE(s + 12), vsize: b.readUInt32LE(s + 8), raw: b.readUInt32LE(s + 20) });
  }
  const at = (rva) => {
    const s = sections.find((x) => rva >= x.va && rva < x.va + Math.max(x.vsize, 1));
    if (!s) throw new Error(`RVA 0x${rva.toString(16)} in no section`);
    return rva - s.va + s.raw;
  };
  const imports = {};
  const imp = dir(1);
  if (imp.rva) {
    for (let d = at(imp.rva); ; d += 20) {
      const ilt = b.readUInt32LE(d);
      const nameRva = b.readUInt32LE(d + 12);
      const iat = b.readUInt32LE(d + 16);
      if (!nameRva) break;
      const names = [];
      for (let t = at(ilt || iat); ; t += pe32plus ? 8 : 4) {
        const v = pe32plus ? b.readBigUInt64LE(t) : BigInt(b.readUInt32LE(t));
        if (v === 0n) break;
        const byOrdinal = pe32plus ? v >> 63n : v >> 31n;
        names.push(byOrdinal ? `#${Number(v & 0xffffn)}` : cstr(b, at(Number(v & 0x7fffffffn)) + 2));
      }
      imports[cstr(b, at(nameRva))] = names;
    }
  }
  const exports = [];
  const exp = dir(0);
  if (exp.rva) {
    const e = at(exp.rva);
    const n = b.readUInt32LE(e + 24);
    const namesAt = at(b.readUInt32LE(e + 32));
    for (let i = 0; i < n; i++) exports.push(cstr(b, at(b.readUInt32LE(namesAt + i * 4))));
  }
  const names = sections.map((s) => s.name);
  return {
    format: 'pe', cpu, dll: (chars & 0x2000) !== 0, pe32plus, sections: names, imports, exports,
    stripped: nsyms === 0 && !names.some((n) => n.startsWith('.debug')),
  };
}

module.exports = { read };
