'use strict';
const test = require('ava');
const net = require('node:net');
const path = require('node:path');
const crypto = require('node:crypto');
const { Worker } = require('node:worker_threads');
const { ObjectPool, net: pooled } = require('..');
const { until } = require('./helpers');
const { echoClient: sharedEchoClient } = require('./fixtures/net-proxy');

const pattern = crypto.randomBytes((1 << 20) + 13);

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

function pooledEchoServer(pool, read = {}) {
  const readers = [];
  const server = net.createServer({ pauseOnConnect: true }, (accepted) => {
    const s = pooled.adopt(pool, accepted, { onData: (chunk, done) => pooled.writePooled(s, chunk, done), ...read });
    s.on('end', () => s.end());
    s.on('error', () => {});
    readers.push(s);
  });
  return { server, sockets: readers };
}

// Sends `bytes` of the pattern, reads the echo, checks every byte.
const echoClient = (port, bytes, options) => sharedEchoClient(port, bytes, pattern, options);

test('integrity over many connections at once through a small pool', async (t) => {
  const pool = new ObjectPool({ capacity: 16, objectSize: 16 * 1024 });
  const { server } = pooledEchoServer(pool);
  const port = await listen(server);
  const results = await Promise.all(Array.from({ length: 24 }, (_, i) => echoClient(port, (1 << 20) + i * 977)));
  results.forEach((r, i) => {
    t.is(r.received, (1 << 20) + i * 977, `connection ${i}: every byte came back`);
    t.is(r.mismatch, -1, `connection ${i}: byte for byte`);
  });
  await new Promise((r) => server.close(r));
  // A pooled write gives its buffer back when libuv completes the write: on
  // Linux before the socket's 'close', on Windows (IOCP) possibly just after
  // it, so the server's close callback can come first there.
  await until(() => pool.stats().available === 16, 2000).catch(() => {});
  t.is(pool.stats().available, 16, 'every buffer is back in the pool');
});

test('pooled reads through net.connect and createSocket, released by done()', async (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 4096 });
  const server = net.createServer((s) => s.end(pattern.subarray(0, 100_000)));
  const port = await listen(server);
  for (const make of [
    (read) => pooled.connect(pool, { port, host: '127.0.0.1' }, read),
    (read) => pooled.createSocket(pool, {}, read).connect(port, '127.0.0.1'),
  ]) {
    const chunks = [];
    await new Promise((resolve) => {
      const s = make({
        onData(chunk, done) {
          t.true(pool.handleOf(chunk) >= 0, 'each chunk is a view of a pooled buffer');
          chunks.push(Buffer.from(chunk));
          done();
          done(); // idempotent
        },
      });
      s.on('end', resolve);
    });
    t.true(Buffer.concat(chunks).equals(pattern.subarray(0, 100_000)));
    await until(() => pool.stats().available === 4);
  }
  await new Promise((r) => server.close(r));
  t.pass();
});

test('an empty pool pauses reading until a buffer comes back, and nothing is lost', async (t) => {
  const pool = new ObjectPool({ capacity: 2, objectSize: 1024 });
  const total = 200_000;
  const server = net.createServer((s) => s.end(pattern.subarray(0, total)));
  const port = await listen(server);
  const got = [];
  const reader = new pooled.PooledReader(pool, {
    onData(chunk, done) {
      got.push(Buffer.from(chunk));
      setTimeout(done, 1); // keep the buffer a while: the pool runs dry
    },
  });
  await new Promise((resolve) => {
    const s = reader.attach(net.connect({ port, host: '127.0.0.1', onread: reader.onread }));
    s.on('end', resolve);
  });
  t.true(reader.pauses > 0, `reading paused ${reader.pauses} times`);
  t.true(Buffer.concat(got).equals(pattern.subarray(0, total)), 'every byte, in order');
  await until(() => pool.stats().available === 2);
  await new Promise((r) => server.close(r));
});

test("whenEmpty: 'allocate' keeps reading into fresh buffers when the pool is empty", async (t) => {
  const pool = new ObjectPool({ capacity: 1, objectSize: 1024 });
  const total = 100_000;
  const server = net.createServer((s) => s.end(pattern.subarray(0, total)));
  const port = await listen(server);
  const got = [];
  const held = [];
  let unpooled = 0;
  const reader = new pooled.PooledReader(pool, {
    whenEmpty: 'allocate',
    onData(chunk, done) {
      try { pool.handleOf(chunk); } catch { unpooled++; }
      got.push(Buffer.from(chunk));
      held.push(done); // hold everything until the end
    },
  });
  await new Promise((resolve) => reader.attach(net.connect({ port, host: '127.0.0.1', onread: reader.onread })).on('end', resolve));
  t.is(reader.pauses, 0);
  t.true(unpooled > 0);
  t.true(Buffer.concat(got).equals(pattern.subarray(0, total)));
  for (const done of held) done();
  await until(() => pool.stats().available === 1);
  await new Promise((r) => server.close(r));
});

test('a connection reset mid-stream returns every buffer to the pool', async (t) => {
  const pool = new ObjectPool({ capacity: 32, objectSize: 8192 });
  const { server, sockets } = pooledEchoServer(pool);
  const port = await listen(server);
  await new Promise((resolve) => {
    const c = net.connect({ port, host: '127.0.0.1' }, () => {
      // Send a lot without reading the echo, so server writes back up, then reset.
      for (let i = 0; i < 64; i++) c.write(pattern.subarray(0, 64 * 1024));
      setTimeout(() => { c.resetAndDestroy(); resolve(); }, 50);
    });
    c.on('error', () => {});
  });
  await until(() => sockets.length === 1 && sockets[0].destroyed);
  await until(() => pool.stats().available === 32);
  t.is(pool.stats().inUse, 0);
  await new Promise((r) => server.close(r));
});

test('writePooled returns the buffer once the write completed, or when the socket is destroyed', async (t) => {
  const pool = new ObjectPool({ capacity: 2, objectSize: 64 });
  const server = net.createServer((s) => s.resume());
  const port = await listen(server);
  const s = net.connect({ port, host: '127.0.0.1' });
  await new Promise((r) => s.on('connect', r));
  const buf = pool.acquire();
  buf.write('hello');
  const err = await new Promise((resolve) => pooled.writePooled(s, buf.subarray(0, 5), (e) => { pool.release(buf); resolve(e); }));
  t.falsy(err);
  const big = Buffer.alloc(32 << 20);
  s.write(big); // fill the socket's queue so the next write is still pending
  const other = pool.acquire();
  const pending = new Promise((resolve) => pooled.writePooled(s, other, (e) => { pool.release(other); resolve(e); }));
  s.destroy();
  t.truthy(await pending, 'called with the error of the destroyed socket');
  t.is(pool.stats().available, 2);
  await new Promise((r) => server.close(r));
});

test('a server spread over worker threads draws from one shared pool', async (t) => {
  const pool = new ObjectPool({ capacity: 32, objectSize: 16 * 1024 });
  const workers = [0, 1].map(() => new Worker(path.join(__dirname, 'fixtures', 'net-worker.js'), { workerData: { descriptor: pool.descriptor } }));
  const ports = await Promise.all(workers.map((w) => new Promise((r) => w.once('message', (m) => r(m.port)))));
  const results = await Promise.all(Array.from({ length: 8 }, (_, i) => echoClient(ports[i % 2], 512 * 1024 + i)));
  results.forEach((r, i) => {
    t.is(r.received, 512 * 1024 + i);
    t.is(r.mismatch, -1);
  });
  const stopped = await Promise.all(workers.map((w) => { w.postMessage('stop'); return new Promise((r) => w.on('message', (m) => m.stopped && r(m))); }));
  t.deepEqual(stopped.map((m) => m.connections), [4, 4]);
  await until(() => pool.stats().available === 32);
  await Promise.all(workers.map((w) => w.terminate()));
});

test('closing the pool under a reading socket ends that socket with ERR_OBJPOOL_CLOSED, no crash', async (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 1024 });
  const server = net.createServer((s) => {
    s.on('error', () => {});
    const timer = setInterval(() => s.write(pattern.subarray(0, 4096)), 1);
    s.on('close', () => clearInterval(timer));
  });
  const port = await listen(server);
  let chunks = 0;
  const sock = pooled.connect(pool, { port, host: '127.0.0.1' }, { onData(chunk, done) { chunks++; done(); } });
  await until(() => chunks > 5);
  const err = new Promise((resolve) => sock.on('error', resolve));
  const released = [];
  const closing = pool.close((_, info) => released.push(info.handle));
  t.is((await err).code, 'ERR_OBJPOOL_CLOSED');
  await closing;
  t.deepEqual([...released].sort(), [0, 1, 2, 3], 'the buffers the socket held were released too');
  await new Promise((r) => server.close(r));
});

// A throwing onData: its buffer goes back to the pool, the socket is
// destroyed with the error, and the pool still closes. Also on a server that
// reads several chunks before the throw, and with buffers still out in
// other chunks (their done() comes later, and still counts).
for (const at of [1, 3]) {
  test(`an onData that throws (at chunk ${at}) gives its buffer back and destroys the socket with the error`, async (t) => {
    const pool = new ObjectPool({ capacity: 4, objectSize: 1024 });
    const server = net.createServer((s) => { s.on('error', () => {}); s.end(pattern.subarray(0, 64 * 1024)); });
    const port = await listen(server);
    const boom = new Error('boom');
    let chunks = 0;
    const kept = [];
    const sock = pooled.connect(pool, { port, host: '127.0.0.1' }, {
      onData(chunk, done) {
        if (++chunks === at) throw boom;
        kept.push(done); // released after the socket is gone
      },
    });
    const err = await new Promise((resolve) => sock.on('error', resolve));
    t.is(err, boom, "the socket's 'error' listeners get what onData threw");
    await new Promise((r) => sock.destroyed ? r() : sock.on('close', r));
    t.is(pool.stats().inUse, kept.length, 'only the buffers onData kept are out');
    for (const done of kept) done();
    t.is(pool.stats().inUse, 0, 'every buffer is back');
    await pool.close();
    await new Promise((r) => server.close(r));
  });
}

test('PooledReader validates its options', (t) => {
  const pool = new ObjectPool({ capacity: 1, objectSize: 8 });
  t.throws(() => new pooled.PooledReader({ objectSize: 8 }, { onData() {} }), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => new pooled.PooledReader(pool, null), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => new pooled.PooledReader(pool, {}), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => new pooled.PooledReader(pool, { onData() {}, whenEmpty: 'drop' }), { code: 'ERR_INVALID_ARG_VALUE' });
  const socket = new net.Socket();
  t.throws(() => pooled.writePooled({}, Buffer.alloc(1), () => {}), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => pooled.writePooled(socket, 'text', () => {}), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => pooled.writePooled(socket, Buffer.alloc(1)), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => pooled.adopt(pool, socket, { onData() {} }), { code: 'ERR_INVALID_ARG_VALUE' });
});

test('a pooled socket that closes while waiting for an object leaves no timer behind: the process exits', async (t) => {
  // Regression: the poll that waits for objects from other threads was left
  // running when its last waiting reader went away, keeping the process alive.
  const { execFile } = require('node:child_process');
  const res = await new Promise((resolve) => {
    execFile(process.execPath, [path.join(__dirname, 'fixtures', 'net-exit.js')], { timeout: 20_000 }, (err, stdout) => resolve({ err, stdout }));
  });
  t.is(res.err, null, 'exited by itself, with code 0');
  t.regex(res.stdout, /closed; waiting readers gone, 1 available/);
});

// A server that sends `total` bytes of the pattern to each connection, then ends it.
async function patternServer(total) {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.end(pattern.subarray(0, total));
  });
  return { server, port: await listen(server) };
}

for (const n of [1, 2, 4, 8]) {
  test(`done() inside onData keeps ${n} socket(s) reading from a pool of ${n} that runs dry`, async (t) => {
    // Regression: done() woke the reader while Node was still in its read
    // callback (socket.resume() is a no-op there), then the callback said
    // "stop" and nobody restarted it.
    const pool = new ObjectPool({ capacity: n, objectSize: 4096 });
    const total = 300_000;
    const { server, port } = await patternServer(total);
    const got = Array.from({ length: n }, () => []);
    let ended = 0;
    const sockets = got.map((chunks) => {
      const s = pooled.connect(pool, { port, host: '127.0.0.1' }, {
        onData(chunk, done) {
          chunks.push(Buffer.from(chunk));
          done();
        },
      });
      s.on('end', () => ended++);
      return s;
    });
    await until(() => ended === n);
    for (const chunks of got) t.true(Buffer.concat(chunks).equals(pattern.subarray(0, total)));
    await until(() => sockets.every((s) => s.destroyed) && pool.stats().available === n);
    await new Promise((r) => server.close(r));
  });
}

// An idle connection: the server sends one chunk and then nothing, keeping it open.
async function idleServer() {
  const accepted = [];
  const server = net.createServer((s) => {
    s.on('error', () => {});
    accepted.push(s);
    s.write(pattern.subarray(0, 1000));
  });
  return { server, accepted, port: await listen(server) };
}

test('closing the pool destroys an idle pooled socket with ERR_OBJPOOL_CLOSED, and close() finishes', async (t) => {
  // Regression: an idle reader kept the object reserved for its next read,
  // so close() never resolved until another byte arrived.
  const pool = new ObjectPool({ capacity: 4, objectSize: 1024 });
  const { server, accepted, port } = await idleServer();
  let chunks = 0;
  const sock = pooled.connect(pool, { port, host: '127.0.0.1' }, { onData(chunk, done) { chunks++; done(); } });
  const err = new Promise((resolve) => sock.on('error', resolve));
  await until(() => chunks === 1);
  let closed = false;
  const closing = pool.close().then(() => { closed = true; });
  await until(() => closed && sock.destroyed);
  await closing;
  t.is((await err).code, 'ERR_OBJPOOL_CLOSED');
  for (const s of accepted) s.destroy();
  await new Promise((r) => server.close(r));
});

test('closing the pool destroys an idle adopted server socket too', async (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 1024 });
  const { server, sockets } = pooledEchoServer(pool);
  const port = await listen(server);
  const client = net.connect({ port, host: '127.0.0.1' });
  client.on('error', () => {});
  client.write('hello');
  await new Promise((r) => client.once('data', r)); // echoed: the server socket is idle now
  const err = new Promise((resolve) => sockets[0].on('error', resolve));
  let closed = false;
  const closing = pool.close().then(() => { closed = true; });
  await until(() => closed && sockets[0].destroyed);
  await closing;
  t.is((await err).code, 'ERR_OBJPOOL_CLOSED');
  client.destroy();
  await new Promise((r) => server.close(r));
});

test('a pool closed by another thread destroys this thread\'s idle pooled sockets, and that close() finishes', async (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 1024 });
  const { server, accepted, port } = await idleServer();
  let chunks = 0;
  const sock = pooled.connect(pool, { port, host: '127.0.0.1' }, { onData(chunk, done) { chunks++; done(); } });
  const err = new Promise((resolve) => sock.on('error', resolve));
  await until(() => chunks === 1);
  const worker = new Worker(path.join(__dirname, 'fixtures', 'net-close-worker.js'), { workerData: { descriptor: pool.descriptor } });
  await new Promise((r) => worker.once('message', r));
  let closed = false;
  worker.once('message', (m) => { closed = m === 'closed'; });
  worker.postMessage('close');
  await until(() => closed && sock.destroyed);
  t.is((await err).code, 'ERR_OBJPOOL_CLOSED');
  t.true(pool.closed);
  await worker.terminate();
  for (const s of accepted) s.destroy();
  await new Promise((r) => server.close(r));
});

// A server that does not pause on connect: its sockets start reading at once.
// The test pauses each one and adopts it once `ready(accepted)` holds.
function lateAdoptServer(pool, ready) {
  const adopted = [];
  const server = net.createServer((accepted) => {
    accepted.pause();
    until(() => ready(accepted)).then(() => {
      const got = [];
      const s = pooled.adopt(pool, accepted, { onData(chunk, done) { got.push(Buffer.from(chunk)); done(); } });
      s.on('error', () => {});
      adopted.push({ socket: s, got, ended: new Promise((r) => s.on('end', r)) });
    });
  });
  return { server, adopted };
}

test('adopt() hands the bytes the accepted socket had already buffered to onData first', async (t) => {
  // Regression: adopt() checked only isPaused(), and what the socket had read
  // before it was paused was silently dropped.
  const pool = new ObjectPool({ capacity: 4, objectSize: 1024 });
  const { server, adopted } = lateAdoptServer(pool, (s) => s.readableLength >= 5000);
  const port = await listen(server);
  const c = net.connect({ port, host: '127.0.0.1' });
  c.write(pattern.subarray(0, 5000));
  await until(() => adopted.length === 1);
  c.end(pattern.subarray(5000, 9000));
  await adopted[0].ended;
  t.true(Buffer.concat(adopted[0].got).equals(pattern.subarray(0, 9000)), 'every byte, in order');
  t.true(adopted[0].got.every((chunk) => chunk.length <= pool.objectSize), 'no chunk longer than an object');
  await until(() => pool.stats().available === 4);
  await new Promise((r) => server.close(r));
});

test('adopt() of a socket whose peer already ended delivers the buffered bytes, then end', async (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 1024 });
  const { server, adopted } = lateAdoptServer(pool, (s) => s.readableLength >= 3000 && s.readableEnded === false && s._readableState.ended);
  const port = await listen(server);
  const c = net.connect({ port, host: '127.0.0.1' });
  c.on('error', () => {});
  c.end(pattern.subarray(0, 3000));
  await until(() => adopted.length === 1);
  await adopted[0].ended;
  t.true(Buffer.concat(adopted[0].got).equals(pattern.subarray(0, 3000)));
  adopted[0].socket.end();
  await until(() => pool.stats().available === 4);
  await new Promise((r) => server.close(r));
});

for (const when of ['inside onData', 'later']) {
  test(`a socket the application paused (${when}) stays paused when the pool hands it an object`, async (t) => {
    // Regression: the pool's wake-up called socket.resume() on a socket the
    // application had paused itself.
    const pool = new ObjectPool({ capacity: 1, objectSize: 1024 });
    const total = 100_000;
    const { server, port } = await patternServer(total);
    const got = [];
    let held = null;
    const sock = pooled.connect(pool, { port, host: '127.0.0.1' }, {
      onData(chunk, done) {
        got.push(Buffer.from(chunk));
        if (got.length > 1) return done();
        held = done; // the only object: the reader waits for it
        if (when === 'inside onData') sock.pause();
      },
    });
    const ended = new Promise((r) => sock.on('end', r));
    await until(() => held !== null);
    if (when === 'later') sock.pause();
    held(); // the object comes back
    t.true(sock.isPaused(), 'still paused right after the object came back');
    await new Promise((r) => setTimeout(r, 50)); // time for a resumed socket to read
    t.is(got.length, 1, 'nothing read while paused');
    t.true(sock.isPaused());
    sock.resume();
    await ended;
    t.true(Buffer.concat(got).equals(pattern.subarray(0, total)), 'every byte, in order, once resumed');
    await until(() => pool.stats().available === 1);
    await new Promise((r) => server.close(r));
  });
}

test('idle pooled sockets hold no object: a pool of 2 serves 8 idle connections and a busy 9th', async (t) => {
  const pool = new ObjectPool({ capacity: 2, objectSize: 4096 });
  const { server, accepted, port } = await idleServer(); // 1000 bytes, then nothing
  let chunks = 0;
  const idle = Array.from({ length: 8 }, () => pooled.connect(pool, { port, host: '127.0.0.1' }, { onData(chunk, done) { chunks++; done(); } }));
  await until(() => chunks === 8);
  t.is(pool.stats().available, 2, 'every object is in the pool while the sockets idle');
  const total = 300_000;
  const busy = await patternServer(total);
  const got = [];
  const reader = new pooled.PooledReader(pool, { onData(chunk, done) { got.push(Buffer.from(chunk)); done(); } });
  await new Promise((resolve) => reader.attach(net.connect({ port: busy.port, host: '127.0.0.1', onread: reader.onread })).on('end', resolve));
  t.true(Buffer.concat(got).equals(pattern.subarray(0, total)));
  t.is(reader.unpooled, 0, 'every chunk in a pooled buffer');
  for (const s of idle) s.destroy();
  for (const s of accepted) s.destroy();
  await until(() => pool.stats().available === 2);
  await new Promise((r) => server.close(r));
  await new Promise((r) => busy.server.close(r));
});

test("'pause' mode: bytes that arrive while the pool is dry are handed over once unpooled, then reading pauses until an object comes back", async (t) => {
  const pool = new ObjectPool({ capacity: 1, objectSize: 1024 });
  const taken = pool.pop(); // the pool is dry
  const sent = [];
  let peer;
  const server = net.createServer((s) => {
    peer = s;
    s.on('error', () => {});
  });
  const port = await listen(server);
  const got = [];
  const reader = new pooled.PooledReader(pool, { onData(chunk, done) { got.push(Buffer.from(chunk)); done(); } });
  const sock = reader.attach(net.connect({ port, host: '127.0.0.1', onread: reader.onread }));
  await until(() => peer !== undefined);
  const say = (text) => { sent.push(text); peer.write(text); };
  say('first');
  await until(() => got.length === 1);
  t.is(reader.unpooled, 1, 'the bytes had nowhere else to go');
  t.is(reader.pauses, 1, 'and reading paused: a trickle of small reads is not handed over unpooled one by one');
  say('second');
  say('third');
  pool.push(taken); // an object comes back: reading resumes
  await until(() => Buffer.concat(got).toString() === sent.join(''));
  t.is(reader.unpooled, 1, 'what came after went into the pool\'s object');
  sock.destroy();
  peer.destroy();
  await until(() => pool.stats().available === 1);
  await new Promise((r) => server.close(r));
});
