#!/usr/bin/env node
'use strict';
// One pool across processes: a node:cluster primary reads a TCP stream into
// 64 KiB buffers of a process-shared pool, and its workers (other processes)
// checksum each buffer in place. Every byte is checked: the sender computes
// the stream's checksum as it writes, the primary combines the workers'
// checksums in stream order, and the two must agree. Three ways to hand a
// chunk to a worker, run one after the other over the same workers:
//
// --mode channel: nothing but handles moves. The primary writes where the
//   chunk is (its buffer's handle, offset, length, sequence number) into a
//   small note, an object of a second process-shared pool, and sends the
//   note's handle on a process-shared channel that every worker receives
//   from; the worker that takes it reads the bytes where they are, writes
//   its checksum into the note and sends the note back on a second channel.
//   No message is serialized, and no event-loop turn of IPC is paid.
// --mode pool: the same bytes in the same pool, but the handle, offset and
//   length go to a worker over IPC (process.send(), a few bytes), and the
//   checksum comes back the same way.
// --mode copy: the usual way, for comparison: each chunk's bytes go to the
//   worker over IPC (serialization: 'advanced').
//
// Prints throughput and the CPU per MiB of the primary and of the workers
// (the sender is a process of its own, not counted).
//
//   node examples/cluster.js [--mib 256] [--workers 2] [--mode all|channel|pool|copy] [--corrupt]
const cluster = require('node:cluster');
const net = require('node:net');
const { fork } = require('node:child_process');
const { ObjectPool, HandleChannel, net: pooled } = require('..');

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const MIB = Number(arg('mib', 256));
const WORKERS = Number(arg('workers', 2));
const MODE = arg('mode', 'all');
const CORRUPT = process.argv.includes('--corrupt'); // flips one byte at the primary: the check must fail
const SIZE = 64 * 1024;
// A note: u32 words [seq, handle, offset, length, s1, s2] (channel mode).
const NOTE = 32;
const noteOf = (notes, h) => {
  const b = notes.buffer(h);
  return new Uint32Array(b.buffer, b.byteOffset, NOTE / 4);
};

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
  // A worker: attaches the pools and channels once, then checksums what the
  // primary names.
  const pool = process.env.OBJPOOL ? ObjectPool.attachProcess(JSON.parse(process.env.OBJPOOL)) : null;
  if (process.env.OBJPOOL_NOTES) {
    serveChannel(pool, JSON.parse(process.env.OBJPOOL_NOTES)).catch((err) => {
      console.error(`worker ${process.pid}:`, err);
      process.exit(1);
    });
  }
  // A worker goes with its primary (its channel wait would keep it alive).
  process.on('disconnect', () => process.exit(0));
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

// A worker's side of channel mode: takes notes off the work channel (all
// that are there, else it waits without polling), checksums the bytes each
// names, and sends the notes back on the done channel.
async function serveChannel(pool, { notes: nd, work: wd, done: dd }) {
  const notes = ObjectPool.attachProcess(nd);
  const work = HandleChannel.attachProcess(wd, notes);
  const done = HandleChannel.attachProcess(dd, notes);
  const views = new Map(); // note handle -> its words, made once
  const batch = new Uint32Array(64);
  for (;;) {
    let n = work.receiveMany(batch);
    if (n === 0) {
      batch[0] = await work.receiveAsync();
      n = 1;
    }
    for (let i = 0; i < n; i++) {
      let v = views.get(batch[i]);
      if (!v) views.set(batch[i], (v = noteOf(notes, batch[i])));
      const [s1, s2] = sums(pool.buffer(v[1]).subarray(v[2], v[2] + v[3]));
      v[4] = s1;
      v[5] = s2;
    }
    // The done channel holds as many as there are notes: never full.
    if (done.sendMany(batch, n) !== n) throw new Error('the done channel is full');
  }
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

async function run(mode, pool, ch, workers) {
  const server = net.createServer({ pauseOnConnect: true });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  let acc = [0, 0], offset = 0, seq = 0, next = 0, bytes = 0, copied = 0, noted = 0;
  const results = new Map();  // seq -> [sums, offset]: combined in order
  const pending = new Map();  // seq -> release() of the pooled chunk
  let ended = false, finish;
  const finished = new Promise((r) => { finish = r; });
  const settle = () => {
    while (results.has(next) && results.get(next)[0] !== null) {
      const [s, at] = results.get(next);
      results.delete(next++);
      acc = combine(acc, s, at);
    }
    if (ended && next === seq) finish();
  };
  const gotSums = (s, sums) => {
    results.get(s)[0] = sums;
    const release = pending.get(s);
    if (release) {
      pending.delete(s);
      release();
    }
  };
  const onSums = (m) => {
    if (m.type !== 'sums') return;
    gotSums(m.seq, m.sums);
    settle();
  };
  for (const w of workers) w.on('message', onSums);
  // Channel mode: the notes that come back on the done channel.
  const stop = new AbortController();
  const collecting = mode === 'channel' ? collect(ch, (s, sums) => { noted++; gotSums(s, sums); }, settle, stop.signal) : null;
  server.on('connection', (socket) => {
    const dispatch = (chunk, release) => {
      const s = seq++;
      if (CORRUPT && s === 3) chunk[chunk.length >> 1] ^= 1;
      results.set(s, [null, offset]);
      offset += chunk.length;
      bytes += chunk.length;
      // A pooled read starts at its object. A chunk the reader could not
      // put in the pool (bytes read before it took over the socket, or
      // while the pool was empty) is in a Buffer of its own, with no
      // handle (ERR_OBJPOOL_FOREIGN_BUFFER): its bytes are copied.
      let handle = -1;
      if (mode !== 'copy') {
        try {
          handle = pool.handleOf(chunk);
        } catch {
          copied++;
        }
      }
      if (handle < 0) {
        workers[s % workers.length].send({ type: 'bytes', seq: s, bytes: chunk });
        release();
        return;
      }
      pending.set(s, release);
      if (mode === 'pool') {
        // The handle and the chunk's length: a few bytes.
        workers[s % workers.length].send({ type: 'chunk', seq: s, handle, offset: 0, length: chunk.length });
      } else {
        const n = ch.notes.pop(); // as many notes as buffers: never empty
        if (n < 0) fail(new Error('no note left for a pooled chunk'));
        const v = ch.view(n);
        v[0] = s;
        v[1] = handle;
        v[2] = 0; // the chunk's offset in its object
        v[3] = chunk.length;
        if (!ch.work.send(n)) {
          ch.notes.push(n);
          fail(new Error('the work channel is full'));
        }
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
  const [expected] = await Promise.all([new Promise((r) => sender.once('message', r)), finished]);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const wcpu1 = await workerCpu(workers);
  stop.abort();
  await collecting;
  for (const w of workers) w.off('message', onSums);
  server.close();
  const ok = acc[0] === expected[0] && acc[1] === expected[1] && bytes === MIB * 1024 * 1024;
  const mibs = bytes / 1048576;
  const primaryUs = (cpu.user + cpu.system) / mibs;
  const workersUs = (wcpu1 - wcpu0) / mibs;
  return { mode, ok, mibs, secs, mbps: bytes / 1e6 / secs, primaryUs, workersUs, chunks: seq, copied, noted };
}

// The primary's side of channel mode: takes the notes the workers send
// back (all that are there, else it waits without polling), hands each
// checksum on, and returns the note to its pool; until `signal` aborts.
async function collect(ch, gotSums, settle, signal) {
  const batch = new Uint32Array(64);
  for (;;) {
    let n = ch.done.receiveMany(batch);
    if (n === 0) {
      try {
        batch[0] = await ch.done.receiveAsync({ signal });
      } catch (err) {
        if (signal.aborted) return;
        throw err;
      }
      n = 1;
    }
    for (let i = 0; i < n; i++) {
      const v = ch.view(batch[i]);
      gotSums(v[0], [v[4], v[5]]);
    }
    ch.notes.pushMany(batch, n);
    settle();
  }
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

// Ends the run with an error: nothing the example does is meant to fail.
function fail(err) {
  console.error(err);
  process.exit(1);
}

async function main() {
  const all = ['channel', 'pool', 'copy'];
  if (MODE !== 'all' && !all.includes(MODE)) throw new Error(`--mode must be all, ${all.join(', ')}, not ${MODE}`);
  const pool = new ObjectPool({ capacity: 256, objectSize: SIZE, processShared: true, name: 'cluster' });
  // Channel mode's notes (one per buffer, so never short) and its two
  // channels, each as large as the notes: a send never finds one full.
  const notes = new ObjectPool({ capacity: pool.capacity, objectSize: NOTE, processShared: true, name: 'cluster-notes' });
  const views = [];
  const ch = {
    notes,
    work: notes.channel({ capacity: notes.capacity }),
    done: notes.channel({ capacity: notes.capacity }),
    view: (h) => (views[h] ??= noteOf(notes, h)),
  };
  const env = {
    OBJPOOL: JSON.stringify(pool.processDescriptor),
    OBJPOOL_NOTES: JSON.stringify({ notes: notes.processDescriptor, work: ch.work.processDescriptor, done: ch.done.processDescriptor }),
  };
  cluster.setupPrimary({ serialization: 'advanced' });
  const workers = [];
  let stopping = false;
  for (let i = 0; i < WORKERS; i++) {
    const w = cluster.fork(env);
    await new Promise((r) => w.once('message', r));
    // A worker that dies mid-run would leave its chunks unanswered.
    w.on('exit', (code, signal) => {
      if (!stopping) fail(new Error(`cluster worker ${w.process.pid} died (${signal ?? `exit code ${code}`})`));
    });
    workers.push(w);
  }
  const modes = MODE === 'all' ? all : [MODE];
  const rows = [];
  for (const m of modes) rows.push(await run(m, pool, ch, workers));
  console.log(`${MIB} MiB over TCP, ${WORKERS} cluster workers checksumming every byte (${pool.capacity} pooled buffers of 64 KiB)`);
  const label = {
    channel: 'handles over process channels, bytes in the pool',
    pool: 'handles over IPC, bytes in the shared pool',
    copy: 'bytes copied over IPC (advanced)',
  };
  for (const r of rows) {
    let extra = r.mode === 'channel' ? `  ${r.noted} of ${r.chunks} chunks came back over the channels` : '';
    if (r.copied > 0) extra += `  (${r.copied} of ${r.chunks} chunks outside the pool, copied)`;
    console.log(`  ${label[r.mode].padEnd(50)} ${r.mbps.toFixed(0).padStart(5)} MB/s  primary ${r.primaryUs.toFixed(0).padStart(5)} us CPU/MiB  workers ${r.workersUs.toFixed(0).padStart(5)} us CPU/MiB  checksum ${r.ok ? 'ok' : 'MISMATCH'}${extra}`);
  }
  stopping = true;
  for (const w of workers) w.kill();
  const s = pool.stats(), n = notes.stats();
  console.log(`pool after the runs: ${s.available} of ${s.capacity} objects back; notes: ${n.available} of ${n.capacity} back`);
  await Promise.all([pool.close(), notes.close()]);
  process.exit(rows.every((r) => r.ok) && s.available === s.capacity && n.available === n.capacity ? 0 : 1);
}
