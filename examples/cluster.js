#!/usr/bin/env node
'use strict';
// One pool across processes: a node:cluster primary reads a TCP stream into
// 64 KiB buffers of a process-shared pool, and its workers (other processes)
// checksum each buffer in place: the primary sends a worker only the
// buffer's handle, offset and length (a few bytes over IPC), the worker
// reads the bytes where they are and sends its checksum back, and the
// primary then returns the buffer to the pool. Every byte is checked: the
// sender computes the stream's checksum as it writes, the primary combines
// the workers' checksums in stream order, and the two must agree.
//
// --mode copy runs the same pipeline the usual way for comparison: each
// chunk's bytes go to the worker over IPC (serialization: 'advanced').
// Prints throughput and the CPU per MiB of the primary and of the workers
// (the sender is a process of its own, not counted).
//
//   node examples/cluster.js [--mib 256] [--workers 2] [--mode pool|copy|both] [--corrupt]
const cluster = require('node:cluster');
const net = require('node:net');
const { fork } = require('node:child_process');
const { ObjectPool, net: pooled } = require('..');

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const MIB = Number(arg('mib', 256));
const WORKERS = Number(arg('workers', 2));
const MODE = arg('mode', 'both');
const CORRUPT = process.argv.includes('--corrupt'); // flips one byte at the primary: the check must fail
const SIZE = 64 * 1024;

// A position-weighted checksum that chunks can compute on their own and the
// primary can combine: sum of b[i] and of b[i] * (offset + i), mod 2^32.
function sums(bytes) {
  let s1 = 0, s2 = 0;
  for (let i = 0; i < bytes.length; i++) {
    s1 = (s1 + bytes[i]) | 0;
    s2 = (s2 + Math.imul(bytes[i], i)) | 0;
  }
  return [s1 >>> 0, s2 >>> 0];
}
const combine = (acc, [s1, s2], offset) => [(acc[0] + s1) >>> 0, (acc[1] + s2 + Math.imul(s1, offset)) >>> 0];

if (process.argv[2] === '--sender') {
  // The sender, a process of its own: writes the stream, sends its checksum.
  send(Number(process.argv[3]), Number(process.argv[4])).then((acc) => process.send(acc, () => process.exit(0)));
} else if (cluster.isWorker) {
  // A worker: attaches the pool once, then checksums what the primary names.
  const pool = process.env.OBJPOOL ? ObjectPool.attachProcess(JSON.parse(process.env.OBJPOOL)) : null;
  process.on('message', (m) => {
    if (m.type === 'bytes') {
      process.send({ type: 'sums', seq: m.seq, sums: sums(m.bytes) });
    } else if (m.type === 'chunk') {
      const buf = pool.buffer(m.handle);
      process.send({ type: 'sums', seq: m.seq, sums: sums(buf.subarray(m.offset, m.offset + m.length)) });
    } else if (m.type === 'cpu') {
      process.send({ type: 'cpu', cpu: process.cpuUsage() });
    }
  });
  process.send({ type: 'ready' });
} else {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

// The sender: a deterministic stream (xorshift bytes) of `mib` MiB to
// `port`, with its checksum computed as it is written.
function send(port, mib) {
  return new Promise((resolve, reject) => {
    let acc = [0, 0], offset = 0, x = 0x9e3779b9;
    const total = mib * 1024 * 1024;
    const s = net.connect(port, '127.0.0.1', () => {
      const write = () => {
        while (offset < total) {
          const n = Math.min(SIZE, total - offset);
          const b = Buffer.allocUnsafe(n);
          for (let i = 0; i < n; i += 4) {
            x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
            b.writeInt32LE(x | 0, i);
          }
          acc = combine(acc, sums(b), offset);
          offset += n;
          if (!s.write(b)) return s.once('drain', write);
        }
        s.end(() => resolve(acc));
      };
      write();
    });
    s.on('error', reject);
  });
}

async function run(mode, pool, workers) {
  const server = net.createServer({ pauseOnConnect: true });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  let acc = [0, 0], offset = 0, seq = 0, next = 0, bytes = 0;
  const results = new Map();  // seq -> [sums, offset]: combined in order
  const pending = new Map();  // seq -> done() of the pooled chunk
  let ended = false, finish;
  const done = new Promise((r) => { finish = r; });
  const settle = () => {
    while (results.has(next) && results.get(next)[0] !== null) {
      const [s, at] = results.get(next);
      results.delete(next++);
      acc = combine(acc, s, at);
    }
    if (ended && next === seq) finish();
  };
  const onSums = (m) => {
    if (m.type !== 'sums') return;
    results.get(m.seq)[0] = m.sums;
    const release = pending.get(m.seq);
    if (release) {
      pending.delete(m.seq);
      release();
    }
    settle();
  };
  for (const w of workers) w.on('message', onSums);
  const placeholder = (at) => [null, at];
  server.on('connection', (socket) => {
    const dispatch = (chunk, release) => {
      const s = seq++;
      if (CORRUPT && s === 3) chunk[chunk.length >> 1] ^= 1;
      const w = workers[s % workers.length];
      results.set(s, placeholder(offset));
      offset += chunk.length;
      bytes += chunk.length;
      if (mode === 'copy') {
        w.send({ type: 'bytes', seq: s, bytes: chunk });
        release();
      } else {
        // The handle and the chunk's place in its object: a few bytes.
        pending.set(s, release);
        const handle = Math.floor(chunk.byteOffset / pool.stride);
        w.send({ type: 'chunk', seq: s, handle, offset: chunk.byteOffset - handle * pool.stride, length: chunk.length });
      }
    };
    const onEnd = () => {
      ended = true;
      settle();
    };
    if (mode === 'copy') {
      socket.on('data', (b) => dispatch(b, () => {}));
      socket.on('end', onEnd);
      socket.resume();
    } else {
      const s = pooled.adopt(pool, socket, { onData: dispatch });
      s.on('end', onEnd);
    }
  });
  const cpu0 = process.cpuUsage();
  const wcpu0 = await workerCpu(workers);
  const t0 = process.hrtime.bigint();
  const sender = fork(__filename, ['--sender', port, MIB]);
  const [expected] = await Promise.all([new Promise((r) => sender.once('message', r)), done]);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const wcpu1 = await workerCpu(workers);
  for (const w of workers) w.off('message', onSums);
  server.close();
  const ok = acc[0] === expected[0] && acc[1] === expected[1] && bytes === MIB * 1024 * 1024;
  const mibs = bytes / 1048576;
  const primaryUs = (cpu.user + cpu.system) / mibs;
  const workersUs = (wcpu1 - wcpu0) / mibs;
  return { mode, ok, mibs, secs, mbps: bytes / 1e6 / secs, primaryUs, workersUs };
}

function workerCpu(workers) {
  return Promise.all(workers.map((w) => new Promise((resolve) => {
    const on = (m) => {
      if (m.type !== 'cpu') return;
      w.off('message', on);
      resolve(m.cpu.user + m.cpu.system);
    };
    w.on('message', on);
    w.send({ type: 'cpu' });
  }))).then((v) => v.reduce((a, b) => a + b, 0));
}

async function main() {
  const pool = new ObjectPool({ capacity: 256, objectSize: SIZE, processShared: true, name: 'cluster' });
  cluster.setupPrimary({ serialization: 'advanced' });
  const workers = [];
  for (let i = 0; i < WORKERS; i++) {
    const w = cluster.fork({ OBJPOOL: JSON.stringify(pool.processDescriptor) });
    await new Promise((r) => w.once('message', r));
    workers.push(w);
  }
  const modes = MODE === 'both' ? ['pool', 'copy'] : [MODE];
  const rows = [];
  for (const m of modes) rows.push(await run(m, pool, workers));
  console.log(`${MIB} MiB over TCP, ${WORKERS} cluster workers checksumming every byte (${pool.capacity} pooled buffers of 64 KiB)`);
  for (const r of rows) {
    const what = r.mode === 'pool' ? 'handles over IPC, bytes in the shared pool' : 'bytes copied over IPC (advanced)';
    console.log(`  ${what.padEnd(45)} ${r.mbps.toFixed(0).padStart(5)} MB/s  primary ${r.primaryUs.toFixed(0).padStart(5)} us CPU/MiB  workers ${r.workersUs.toFixed(0).padStart(5)} us CPU/MiB  checksum ${r.ok ? 'ok' : 'MISMATCH'}`);
  }
  for (const w of workers) w.kill();
  const s = pool.stats();
  console.log(`pool after the runs: ${s.available} of ${s.capacity} objects back`);
  await pool.close();
  process.exit(rows.every((r) => r.ok) && s.available === s.capacity ? 0 : 1);
}
