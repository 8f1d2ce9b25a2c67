'use strict';
// A pipeline over handle channels: the main thread reads a TCP stream into
// pooled buffers and sends their handles to worker threads through one
// channel (any worker takes the next one); each worker hashes its buffer in
// place and sends the handle back through a second channel; the main thread
// files the digest and returns the buffer to the pool. Only handles move: no
// byte is copied between threads.
//
// The check is off the hot path: the client (another process) hashes every
// chunk of the stream as it makes it and hands the digests over at the end;
// the main thread compares them with the workers' once the stream is done.
//
// --mode picks how chunks reach the workers, for comparison (the same
// stream, chunking, hashing and check):
//   channels   pooled buffers, handles through two channels (default)
//   transfer   a fresh ArrayBuffer per chunk, postMessage with transfer
//   copy       pooled buffers, postMessage copies each chunk
//   single     no workers: the main thread hashes each chunk itself
//
//   node examples/pipeline.js
//   node examples/pipeline.js --mib 256 --workers 4 --object-size 16384 --capacity 128 --mode transfer
//
// --mib N              MiB streamed (default 32)
// --workers N          hashing worker threads (default 2)
// --object-size BYTES  bytes per chunk, the pooled buffer's size (default 65536)
// --capacity N         buffers in the pool (default 64); chunks in flight at most
// --corrupt            the client flips one byte: the check must fail (exit 1)
const net = require('node:net');
const { createHash } = require('node:crypto');
const { once } = require('node:events');
const { spawn } = require('node:child_process');
const { Worker, isMainThread, workerData, parentPort } = require('node:worker_threads');
const { ObjectPool, HandleChannel, net: pooled } = require('objpool');

// The stream: word k (4 bytes) is mix(k), a bijection, so no stretch of the
// stream repeats.
function mix(k) {
  k = Math.imul(k ^ (k >>> 16), 0x85ebca6b);
  k = Math.imul(k ^ (k >>> 13), 0xc2b2ae35);
  return (k ^ (k >>> 16)) >>> 0;
}

function streamBytes(offset, length) {
  const first = Math.floor(offset / 4);
  const words = new Uint32Array(Math.ceil((offset + length) / 4) - first);
  for (let i = 0; i < words.length; i++) words[i] = mix(first + i);
  return Buffer.from(words.buffer, offset - first * 4, length);
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest();

// ---- the client (a child process): streams `total` bytes, then sends the
// digest of every `chunk` bytes of them to its parent ----

if (process.argv[2] === '--client') {
  const [port, total, corrupt, chunk] = process.argv.slice(3).map(Number);
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', (err) => {
    console.error(`client: ${err.message}`); // the server failed and went away
    process.exit(1);
  });
  const digests = Buffer.alloc(Math.ceil(total / chunk) * 32);
  let hash = createHash('sha256');
  let inChunk = 0, done = 0;
  // Hashes what is sent, chunk by chunk, before any byte is flipped.
  const account = (bytes) => {
    for (let at = 0; at < bytes.length; ) {
      const n = Math.min(bytes.length - at, chunk - inChunk);
      hash.update(bytes.subarray(at, at + n));
      at += n;
      inChunk += n;
      if (inChunk === chunk) {
        hash.digest().copy(digests, 32 * done++);
        hash = createHash('sha256');
        inChunk = 0;
      }
    }
  };
  socket.on('connect', async () => {
    const piece = 1 << 20;
    for (let at = 0; at < total; at += piece) {
      const bytes = streamBytes(at, Math.min(piece, total - at));
      account(bytes);
      if (corrupt && at === 0) bytes[bytes.length >> 1] ^= 1;
      if (!socket.write(bytes)) await once(socket, 'drain');
    }
    if (inChunk > 0) hash.digest().copy(digests, 32 * done++);
    socket.end();
    // The digests to the parent, over the IPC channel (base64: it carries JSON).
    process.send({ digests: digests.toString('base64') }, () => process.disconnect());
  });
  return;
}

// ---- a worker thread: hashes what it receives, sends it back ----

if (!isMainThread) {
  const { index, mode, poolDescriptor, jobsDescriptor, resultsDescriptor, lengths, digests, hashedBy } = workerData;
  if (mode !== 'channels') {
    // postMessage: { k, bytes } in, { k, digest, index } out.
    parentPort.on('message', ({ k, bytes }) => {
      parentPort.postMessage({ k, digest: sha256(bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes), index });
    });
    return;
  }
  const pool = ObjectPool.attach(poolDescriptor);
  const jobs = HandleChannel.attach(jobsDescriptor, pool);
  const results = HandleChannel.attach(resultsDescriptor, pool);
  (async () => {
    // Ends once the main thread has closed `jobs` and it is empty.
    for await (const h of jobs) {
      // Received: h is this worker's now. lengths[h] was written before the
      // send, and the channel orders that write before this read.
      digests.set(sha256(pool.buffer(h).subarray(0, lengths[h])), h * 32);
      hashedBy[h] = index;
      // Sent: h is no longer ours. (results holds twice as many handles as
      // the pool has: it is never full, and send() never says false.)
      if (!results.send(h)) throw new Error('results is full');
    }
  })();
  return;
}

// ---- the main thread ----

function usage(problem) {
  console.error(`${problem}\nusage: node examples/pipeline.js [--mib N] [--workers N] [--object-size BYTES] [--capacity N] [--mode channels|transfer|copy|single] [--corrupt]`);
  process.exit(2);
}

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isInteger(value) || value < 0) usage(`--${name} needs a whole number`);
  return value;
}

const MODES = ['channels', 'transfer', 'copy', 'single'];
const modeAt = process.argv.indexOf('--mode');
const mode = modeAt < 0 ? 'channels' : process.argv[modeAt + 1];
if (!MODES.includes(mode)) usage(`--mode must be one of ${MODES.join(', ')}`);
const mib = option('mib', 32);
const workers = mode === 'single' ? 0 : option('workers', 2);
const objectSize = option('object-size', 64 * 1024);
const capacity = option('capacity', 64);
if ((mode !== 'single' && workers < 1) || objectSize < 1 || mib < 1) usage('--mib, --workers and --object-size must be at least 1');
// A read's object is held while its bytes are packed into another: with one
// object there would be nothing to pack into.
if (capacity < 2) usage('--capacity must be at least 2');
const total = mib * 2 ** 20;
const chunkCount = Math.ceil(total / objectSize);

function fail(err) {
  console.error(`pipeline failed: ${err.stack ?? err}`);
  process.exit(1);
}

const pool = new ObjectPool({ capacity, objectSize, name: 'pipeline' });
// Both channels hold twice as many handles as the pool has: a send never
// finds them full, so the pool alone is the back-pressure. (As many would
// not do: a receiver that has taken a handle frees its cell a moment later,
// and the handle can come round and be sent again before that.)
const jobs = pool.channel({ capacity: 2 * capacity });     // main -> workers: full buffers to hash
const results = pool.channel({ capacity: 2 * capacity });  // workers -> main: hashed buffers
// What travels with a handle, indexed by it, in shared memory: written by the
// sender before send(), read by the receiver after receive().
const lengths = new Int32Array(new SharedArrayBuffer(4 * capacity));  // bytes used in object h
const digests = new Uint8Array(new SharedArrayBuffer(32 * capacity)); // sha256 of them
const hashedBy = new Int32Array(new SharedArrayBuffer(4 * capacity)); // the worker that hashed them
const chunkOf = new Float64Array(capacity); // the chunk object h holds (main only)
// Filed as results come, compared with the client's once all are in.
const got = Buffer.alloc(32 * chunkCount);
const gotBy = new Int8Array(chunkCount).fill(-1);
const gotIn = new Int32Array(chunkCount).fill(-1);

const threads = [];
let running = workers;
let finishing = false;
for (let index = 0; index < workers; index++) {
  const worker = new Worker(__filename, {
    workerData: { index, mode, poolDescriptor: pool.descriptor, jobsDescriptor: jobs.descriptor, resultsDescriptor: results.descriptor, lengths, digests, hashedBy },
  });
  threads.push(worker);
  worker.on('error', fail);
  worker.on('exit', (code) => {
    if (finishing) return; // terminated at the end
    if (code !== 0) fail(new Error(`worker ${index} exited with ${code}`));
    // The last worker is gone: every result is in `results`. Closing it
    // ends the main thread's for-await once it has taken them all.
    else if (--running === 0 && mode === 'channels') results.close();
  });
}

// Reading: each read lands in a pooled buffer (the net helpers); its bytes
// are copied into `cur` so that every chunk is full but the last. That is
// the only copy with channels: from there on, only the handle moves.
let cur = -1;       // the object being filled: ours until sent
let filled = 0;
let sent = 0;       // chunks sent to the workers
let inFlight = 0;   // postMessage modes: chunks at the workers
let resultsIn = 0;  // chunks hashed and filed
let ended = false;  // the stream has ended and its last chunk is out
let resumeReading = null; // postMessage modes: a paused read, resumed as results come
let onAllIn;
const allIn = new Promise((resolve) => { onAllIn = resolve; });

function file(k, digest, by, h) {
  digest.copy(got, 32 * k);
  gotBy[k] = by;
  gotIn[k] = h;
  if (++resultsIn === chunkCount) onAllIn();
}

// Hands the chunk in `cur` (`filled` bytes) to the workers, or hashes it.
function ship() {
  const k = sent++;
  if (mode === 'channels') {
    lengths[cur] = filled; // before send(): the receiver reads it after receive()
    chunkOf[cur] = k;
    // Sent: cur is the channel's now, then the receiving worker's; never
    // false, as the channel holds twice as many handles as the pool has.
    if (!jobs.send(cur)) throw new Error('jobs is full');
  } else if (mode === 'single') {
    file(k, sha256(pool.buffer(cur).subarray(0, filled)), 0, cur);
    pool.push(cur);
  } else {
    const bytes = pool.buffer(cur).subarray(0, filled);
    inFlight++;
    if (mode === 'transfer') {
      // A fresh ArrayBuffer of the chunk's own, transferred (moved, not copied) to the worker.
      const own = new ArrayBuffer(filled);
      new Uint8Array(own).set(bytes);
      threads[k % workers].postMessage({ k, bytes: own }, [own]);
    } else {
      // The pool's memory is shared: a clone of a view of it would share it
      // too. A private copy, which the structured clone copies again, as
      // for any Buffer a program posts.
      const own = new Uint8Array(filled);
      own.set(bytes);
      threads[k % workers].postMessage({ k, bytes: own });
    }
    pool.push(cur); // the bytes left with the message
  }
  cur = -1;
  filled = 0;
}

if (mode !== 'channels') for (const worker of threads) {
  worker.on('message', ({ k, digest, index }) => {
    inFlight--;
    file(k, Buffer.from(digest), index, -1);
    if (resumeReading && inFlight < capacity) {
      const resume = resumeReading;
      resumeReading = null;
      resume();
    }
  });
}

// Packs a read's bytes; false when no chunk can be started (the pool is
// empty, or as many chunks as the pool holds are at the workers): it paused
// the socket and finishes later. done() returns the read's object.
function pack(socket, chunk, done) {
  while (chunk.length > 0) {
    if (cur < 0 && (mode === 'channels' || mode === 'single' || inFlight < capacity - 1)) cur = pool.pop();
    if (cur < 0) {
      // Every object is in the pipeline: read nothing until one comes back.
      socket.pause();
      const go = (h) => {
        cur = h; // popped: ours
        if (pack(socket, chunk, done)) socket.resume();
      };
      if (mode === 'channels') pool.popAsync().then(go, fail);
      else resumeReading = () => go(pool.pop());
      return false;
    }
    const n = chunk.copy(pool.buffer(cur), filled);
    filled += n;
    chunk = chunk.subarray(n);
    if (filled === objectSize) ship();
  }
  done();
  return true;
}

let t0 = 0, cpu0;
let socketClosed; // once closed, the socket's reader has given back every object it held
const server = net.createServer({ pauseOnConnect: true }, (accepted) => {
  server.close(); // one client
  t0 = performance.now();
  cpu0 = process.cpuUsage();
  const socket = pooled.adopt(pool, accepted, { onData: (chunk, done) => pack(socket, chunk, done) });
  socketClosed = once(socket, 'close');
  socket.on('error', fail);
  socket.on('end', () => {
    if (filled > 0) ship(); // the last, partly filled object
    ended = true;
    if (mode === 'channels') jobs.close(); // the workers take what is left, then their for-await ends
  });
});

let clientDone;
server.listen(0, '127.0.0.1', () => {
  const corrupt = process.argv.includes('--corrupt') ? 1 : 0;
  const client = spawn(process.execPath, [__filename, '--client', server.address().port, total, corrupt, objectSize], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let digestsIn = null;
  client.on('message', (m) => { digestsIn = Buffer.from(m.digests, 'base64'); });
  clientDone = once(client, 'exit').then(([code]) => {
    if (code !== 0 || digestsIn === null) fail(new Error(`the client exited with ${code}${digestsIn === null ? ', without its digests' : ''}`));
    return digestsIn;
  });
});

(async () => {
  if (mode === 'channels') {
    // Every object comes back through `results`, in any order.
    for await (const h of results) {
      // Received: h is ours again, and so are the digest and hashedBy the
      // worker wrote before its send. Filed for the check at the end.
      file(chunkOf[h], Buffer.from(digests.subarray(h * 32, h * 32 + 32)), hashedBy[h], h);
      pool.push(h); // back to the pool: the reader can fill it again
    }
  }
  await allIn;
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const expected = await clientDone;
  await socketClosed;
  if (!ended || sent !== chunkCount || resultsIn !== chunkCount) throw new Error(`${resultsIn} of ${chunkCount} chunks came back (${sent} sent)`);
  // The check: every chunk's digest against the client's, made as it sent them.
  for (let k = 0; k < chunkCount; k++) {
    if (!got.subarray(32 * k, 32 * k + 32).equals(expected.subarray(32 * k, 32 * k + 32))) {
      const where = mode === 'channels' ? `object ${gotIn[k]}, worker ${gotBy[k]}` : `worker ${gotBy[k]}`;
      throw new Error(`chunk at offset ${k * objectSize} (${Math.min(objectSize, total - k * objectSize)} bytes, ${where}): sha256 differs from the stream's`);
    }
  }
  const perWorker = new Array(Math.max(workers, 1)).fill(0);
  for (let k = 0; k < chunkCount; k++) perWorker[gotBy[k]]++;
  const { inUse } = pool.stats();
  await pool.close();
  finishing = true;
  for (const w of threads) await w.terminate();
  const split = mode === 'single' ? 'the main thread' : perWorker.map((n, i) => `w${i}: ${n}`).join(', ') + ' chunks';
  const cpuMsPerGiB = ((cpu.user + cpu.system) / 1000) / (total / 2 ** 30);
  console.log(`pipeline (${mode}): ${total} bytes in ${chunkCount} chunks of ${objectSize}, ${workers} workers (${split}), every byte checked, ${(total / 1e6 / secs).toFixed(0)} MB/s, CPU ${cpuMsPerGiB.toFixed(0)} ms/GiB, pool inUse ${inUse}`);
})().catch(fail);
