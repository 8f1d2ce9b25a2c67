'use strict';
// The byte stream both ends of the net scenario agree on: 17 blocks of
// 64 KiB from a seeded xorshift generator, sent over and over.
const CHUNK = 64 * 1024;
const BLOCKS = 17;

function makePattern(seed = 0x9e3779b9) {
  const buf = Buffer.allocUnsafe(CHUNK * BLOCKS);
  let x = seed >>> 0;
  for (let i = 0; i < buf.length; i += 4) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    buf.writeUInt32LE(x, i);
  }
  return buf;
}

module.exports = { CHUNK, BLOCKS, makePattern };
