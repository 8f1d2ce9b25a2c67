'use strict';
// A pipeline over handle channels: the main thread reads a TCP stream into
// pooled buffers and sends their handles to worker threads through one
// channel (any worker takes the next one); each worker hashes its buffer in
// place and sends the handle back through a second channel; the main thread
// checks every digest against the stream it expects and returns the buffer
// to the pool. Only handles move: no byte is copied between threads.
//
//   node examples/pipeline.js
//   node examples/pipeline.js --mib 256 --workers 4 --object-size 131072 --capacity 128
//
// --mib N              MiB streamed (default 32)
// --workers N          hashing worker threads (default 2)
// --object-size BYTES  bytes per pooled buffer (default 65536)
// --capacity N         buffers in the pool (default 64); each channel holds as many
// --corrupt            the client flips one byte: the check must fail (exit 1)
const net = require('node:net');
const { createHash } = require('node:crypto');
const { once } = require('node:events');
const { spawn } = require('node:child_process');
const { Worker, isMainThread, workerData } = require('node:worker_threads');
const { ObjectPool, HandleChannel, net: pooled } = require('objpool');

// The stream: word k (4 bytes) is mix(k), a bijection, so no stretch of the
// stream repeats and any range can be made on its own, by the client that
// sends it and by the main thread that checks it.
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

// ---- the client (a child process): streams `total` bytes, then ends ----

if (process.argv[2] === '--client') {
  const [port, total, corrupt] = process.argv.slice(3).map(Number);
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', (err) => {
    console.error(`client: ${err.message}`); // the server failed and went away
    process.exit(1);
  });
  socket.on('connect', async () => {
    const piece = 1 << 20;
    for (let at = 0; at < total; at += piece) {
      const bytes = streamBytes(at, Math.min(piece, total - at));
      if (corrupt && at === 0) bytes[bytes.length >> 1] ^= 1;
      if (!socket.write(bytes)) await once(socket, 'drain');
    }
    socket.end();
  });
  return;
}

// ---- a worker thread: hashes what it receives, sends it back ----

if (!isMainThread) {
  const { index, poolDescriptor, jobsDescriptor, resultsDescriptor, lengths, digests, hashedBy } = workerData;
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
      // Sent: h is no longer ours. (results holds as many handles as the
      // pool has: it is never full, and send() never says false.)
      if (!results.send(h)) throw new Error('results is full');
    }
  })();
  return;
}

// ---- the main thread ----

function usage(problem) {
  console.error(`${problem}\nusage: node examples/pipeline.js [--mib N] [--workers N] [--object-size BYTES] [--capacity N] [--corrupt]`);
  process.exit(2);
}

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isInteger(value) || value < 0) usage(`--${name} needs a whole number`);
  return value;
}

const mib = option('mib', 32);
const workers = option('workers', 2);
const objectSize = option('object-size', 64 * 1024);
const capacity = option('capacity', 64);
if (workers < 1 || objectSize < 1) usage('--workers and --object-size must be at least 1');
// A read's object is held while its bytes are packed into another: with one
// object there would be nothing to pack into.
if (capacity < 2) usage('--capacity must be at least 2');
const total = mib * 2 ** 20;

function fail(err) {
  console.error(`pipeline failed: ${err.stack ?? err}`);
  process.exit(1);
}

const pool = new ObjectPool({ capacity, objectSize, name: 'pipeline' });
// Both channels hold as many handles as the pool has: a send never finds
// them full, so the pool alone is the back-pressure.
const jobs = pool.channel({ capacity });     // main -> workers: full buffers to hash
const results = pool.channel({ capacity });  // workers -> main: hashed buffers
// What travels with a handle, indexed by it, in shared memory: written by the
// sender before send(), read by the receiver after receive().
const lengths = new Int32Array(new SharedArrayBuffer(4 * capacity));  // bytes used in object h
const digests = new Uint8Array(new SharedArrayBuffer(32 * capacity)); // sha256 of them
const hashedBy = new Int32Array(new SharedArrayBuffer(4 * capacity)); // the worker that hashed them
const offsets = new Float64Array(capacity); // where object h's bytes start in the stream (main only)

let running = workers;
for (let index = 0; index < workers; index++) {
  const worker = new Worker(__filename, {
    workerData: { index, poolDescriptor: pool.descriptor, jobsDescriptor: jobs.descriptor, resultsDescriptor: results.descriptor, lengths, digests, hashedBy },
  });
  worker.on('error', fail);
  worker.on('exit', (code) => {
    if (code !== 0) fail(new Error(`worker ${index} exited with ${code}`));
    // The last worker is gone: every result is in `results`. Closing it
    // ends the main thread's for-await once it has taken them all.
    else if (--running === 0) results.close();
  });
}

// Reading: each read lands in a pooled buffer (the net helpers); its bytes
// are copied into `cur` so that every object sent is full but the last.
// That is the only copy: from here on, only the handle moves.
let cur = -1;     // the object being filled: ours until sent
let filled = 0;
let sent = 0;     // bytes sent to the workers
let chunks = 0;

function ship() {
  lengths[cur] = filled; // before send(): the receiver reads it after receive()
  offsets[cur] = sent;
  sent += filled;
  chunks++;
  // Sent: cur is the channel's now, then the receiving worker's; never
  // false, as the channel holds as many handles as the pool has.
  if (!jobs.send(cur)) throw new Error('jobs is full');
  cur = -1;
  filled = 0;
}

// Packs a read's bytes; false when the pool is empty: it paused the socket
// and finishes once an object comes back. done() returns the read's object.
function pack(socket, chunk, done) {
  while (chunk.length > 0) {
    if (cur < 0 && (cur = pool.pop()) < 0) {
      // Every object is in the pipeline: read nothing until one comes back.
      socket.pause();
      pool.popAsync().then((h) => {
        cur = h; // popped: ours
        if (pack(socket, chunk, done)) socket.resume();
      }, fail);
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

let t0 = 0;
let socketClosed; // once closed, the socket's reader has given back every object it held
const server = net.createServer({ pauseOnConnect: true }, (accepted) => {
  server.close(); // one client
  t0 = performance.now();
  const socket = pooled.adopt(pool, accepted, { onData: (chunk, done) => pack(socket, chunk, done) });
  socketClosed = once(socket, 'close');
  socket.on('error', fail);
  socket.on('end', () => {
    if (filled > 0) ship(); // the last, partly filled object
    jobs.close();           // the workers take what is left, then their for-await ends
  });
});

let clientExited;
server.listen(0, '127.0.0.1', () => {
  const corrupt = process.argv.includes('--corrupt') ? 1 : 0;
  const client = spawn(process.execPath, [__filename, '--client', server.address().port, total, corrupt], { stdio: 'inherit' });
  clientExited = once(client, 'exit').then(([code]) => code === 0 || fail(new Error(`the client exited with ${code}`)));
});

// Checking: every object comes back through `results`, in any order.
(async () => {
  const perWorker = new Array(workers).fill(0);
  let checked = 0;
  let checkedChunks = 0;
  for await (const h of results) {
    // Received: h is ours again, and so are the digest and hashedBy the
    // worker wrote before its send. The digest must be that of the bytes
    // the stream has at h's offset.
    const want = sha256(streamBytes(offsets[h], lengths[h]));
    if (!want.equals(digests.subarray(h * 32, h * 32 + 32))) {
      throw new Error(`chunk at offset ${offsets[h]} (${lengths[h]} bytes, object ${h}, worker ${hashedBy[h]}): sha256 differs from the stream's`);
    }
    checked += lengths[h];
    checkedChunks++;
    perWorker[hashedBy[h]]++;
    pool.push(h); // back to the pool: the reader can fill it again
  }
  const secs = (performance.now() - t0) / 1000;
  await Promise.all([socketClosed, clientExited]);
  if (checked !== total || sent !== total || checkedChunks !== chunks) {
    throw new Error(`checked ${checked} bytes in ${checkedChunks} chunks; ${sent} bytes in ${chunks} chunks were read, ${total} sent`);
  }
  const { inUse } = pool.stats();
  await pool.close();
  const split = perWorker.map((n, i) => `w${i}: ${n}`).join(', ');
  console.log(`pipeline: ${checked} bytes in ${chunks} chunks, ${workers} workers (${split} chunks), every byte checked, ${(checked / 1e6 / secs).toFixed(0)} MB/s, pool inUse ${inUse}`);
})().catch(fail);
