'use strict';
// pooled.pipe(): a TCP proxy whose reads land in pooled buffers. Integrity,
// resets on either side, half-close, a refused target, and many connections
// through a small pool (the slow reader: net-slow-reader.test.js).
const test = require('ava');
const net = require('node:net');
const path = require('node:path');
const crypto = require('node:crypto');
const { fork } = require('node:child_process');
const { ObjectPool, net: pooled } = require('..');
const { until } = require('./helpers');
const { host, listen, close, startProxy, echoTarget, echoClient: sharedEchoClient } = require('./fixtures/net-proxy');

const pattern = crypto.randomBytes((1 << 20) + 13);

// Sends `bytes` of the pattern, reads the echo, checks every byte.
const echoClient = (port, bytes, options) => sharedEchoClient(port, bytes, pattern, options);

// OBJPOOL_PROXY_MIB: how much goes through (1 GiB by default; less under an emulator).
const MIB = Number(process.env.OBJPOOL_PROXY_MIB || 1024);
if (!Number.isInteger(MIB) || MIB < 1) throw new Error(`OBJPOOL_PROXY_MIB must be a whole number of MiB, at least 1: ${process.env.OBJPOOL_PROXY_MIB}`);
const AMOUNT = MIB % 1024 === 0 ? `${MIB / 1024} GiB` : `${MIB} MiB`;

test(`${AMOUNT} through the proxy arrives intact (sha256), in pooled buffers, and every buffer comes back`, async (t) => {
  const ends = fork(path.join(__dirname, 'fixtures', 'net-ends.js'));
  const messages = [];
  ends.on('message', (m) => messages.push(m));
  try {
    await until(() => messages.some((m) => m.sink));
    const sinkPort = messages.find((m) => m.sink).sink;
    const pool = new ObjectPool({ capacity: 256, objectSize: 64 * 1024 });
    const { server, pipes, port } = await startProxy(pool, sinkPort);
    const bytes = MIB * 1024 * 1024;
    const t0 = process.hrtime.bigint();
    ends.send({ send: { port, bytes } });
    await until(() => messages.some((m) => m.sunk) && messages.some((m) => m.sent) && pipes[0]?.done, 120_000);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    t.log(`${AMOUNT} through the proxy in ${secs.toFixed(1)} s (${(bytes / 1e6 / secs).toFixed(0)} MB/s)`);
    const { sent } = messages.find((m) => m.sent);
    const { sunk } = messages.find((m) => m.sunk);
    t.is(sent.bytes, bytes);
    t.is(sunk.bytes, bytes);
    t.is(sunk.sha256, sent.sha256, 'sha256 of what arrived = sha256 of what was sent');
    t.is(pipes[0].err, null);
    t.is(pipes[0].pipe.bytesAToB, bytes);
    t.is(pipes[0].pipe.bytesBToA, 0);
    t.is(pool.stats().available, 256, 'every buffer is back');
    await close(server);
  } finally {
    ends.kill();
  }
});

for (const side of ['client', 'target']) {
  test(`a reset by the ${side} mid-stream tears both sides down, returns every buffer, and the proxy serves the next connection`, async (t) => {
    const pool = new ObjectPool({ capacity: 32, objectSize: 16 * 1024 });
    const target = await echoTarget();
    const { server, pipes, port } = await startProxy(pool, target.port);
    const c = net.connect({ port, host });
    const clientError = new Promise((resolve) => c.on('error', resolve));
    c.on('close', () => {});
    // Keep the echo flowing back without reading it: buffers pile up in the proxy.
    for (let i = 0; i < 32; i++) c.write(pattern.subarray(0, 64 * 1024));
    await until(() => pipes.length === 1 && pipes[0].pipe.bytesBToA > 256 * 1024);
    if (side === 'client') {
      c.resetAndDestroy();
    } else {
      await until(() => target.sockets.length === 1);
      target.sockets[0].resetAndDestroy();
      c.resume(); // a socket that reads sees the reset
    }
    const clientClosed = new Promise((resolve) => c.on('close', resolve));
    const err = await pipes[0].closed;
    t.true(pipes[0].client.destroyed && pipes[0].upstream.destroyed, 'both sides torn down');
    if (side === 'target' && err === null) {
      // Linux can report a reset that reaches a socket which is not reading
      // (here: held by back-pressure) as an end of stream; the pipe then
      // passes an end on, as it must for an end.
      t.log('the target\'s reset reached the proxy as an end of stream: passed on as an end');
      await clientClosed;
    } else {
      t.is(err?.code, 'ECONNRESET', 'the pipe reports the reset');
      if (side === 'target') t.is((await clientError).code, 'ECONNRESET', 'the reset reaches the client as a reset');
      else await until(() => target.sockets[0].destroyed);
    }
    t.is(pool.stats().available, 32, 'every buffer is back');
    const next = await echoClient(port, 300_000);
    t.deepEqual(next, { received: 300_000, mismatch: -1 }, 'the next connection is served');
    await until(() => pipes[1].done);
    t.is(pipes[1].err, null);
    t.is(pool.stats().available, 32);
    await close(server);
    await close(target.server);
  });
}

test("half-close passes through: the client's end reaches the target, whose answer still comes back", async (t) => {
  // The target answers once it has read everything: the sha256 of it.
  const target = net.createServer({ allowHalfOpen: true }, (s) => {
    const hash = crypto.createHash('sha256');
    s.on('data', (d) => hash.update(d));
    s.on('end', () => s.end(hash.digest('hex')));
  });
  const targetPort = await listen(target);
  const pool = new ObjectPool({ capacity: 8, objectSize: 16 * 1024 });
  const { server, pipes, port } = await startProxy(pool, targetPort);
  const body = pattern.subarray(0, 500_000);
  const answer = await new Promise((resolve, reject) => {
    const chunks = [];
    const c = net.connect({ port, host, allowHalfOpen: true }, () => c.end(body));
    c.on('data', (d) => chunks.push(d));
    c.on('end', () => {
      c.end();
      resolve(Buffer.concat(chunks).toString());
    });
    c.on('error', reject);
  });
  t.is(answer, crypto.createHash('sha256').update(body).digest('hex'));
  await pipes[0].closed;
  t.is(pipes[0].err, null);
  t.is(pipes[0].pipe.bytesAToB, body.length);
  t.is(pool.stats().available, 8);
  await close(server);
  await close(target);
});

test('many connections at once through a small pool: 24 echo connections, 16 buffers', async (t) => {
  const pool = new ObjectPool({ capacity: 16, objectSize: 16 * 1024 });
  const target = await echoTarget();
  const { server, pipes, port } = await startProxy(pool, target.port);
  const sizes = Array.from({ length: 24 }, (_, i) => (1 << 20) + i * 977);
  const results = await Promise.all(sizes.map((n) => echoClient(port, n)));
  results.forEach((r, i) => t.deepEqual(r, { received: sizes[i], mismatch: -1 }, `connection ${i}: every byte, in order`));
  await until(() => pipes.length === 24 && pipes.every((p) => p.done));
  t.true(pipes.every((p) => p.err === null));
  t.is(pool.stats().available, 16, 'every buffer is back');
  await close(server);
  await close(target.server);
});

test('a target that refuses the connection closes the client, and nothing leaks', async (t) => {
  const closed = net.createServer();
  const deadPort = await listen(closed);
  await close(closed); // nothing listens there now
  const pool = new ObjectPool({ capacity: 4, objectSize: 1024 });
  const { server, pipes, port } = await startProxy(pool, deadPort);
  await new Promise((resolve) => {
    const c = net.connect({ port, host });
    c.on('error', () => {});
    c.on('close', resolve);
  });
  const err = await pipes[0].closed;
  t.is(err.code, 'ECONNREFUSED');
  t.is(pool.stats().available, 4);
  await close(server);
});

test('pipe() validates its arguments', async (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 1024 });
  const target = await echoTarget();
  const a = pooled.connect(pool, { host, port: target.port });
  const b = pooled.connect(pool, { host, port: target.port });
  const consumed = pooled.connect(pool, { host, port: target.port }, { onData(chunk, done) { done(); } });
  const plain = net.connect({ host, port: target.port });
  t.throws(() => pooled.pipe(plain, b), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => pooled.pipe(a, {}), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => pooled.pipe(a, consumed), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => pooled.pipe(a, a), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => pooled.pipe(a, b, { highWaterMark: -1 }), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => pooled.pipe(a, b, null), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => pooled.pipe(a, b, {}, 'cb'), { code: 'ERR_INVALID_ARG_TYPE' });
  for (const s of [a, b, consumed, plain]) s.destroy();
  await until(() => pool.stats().available === 4);
  await close(target.server);
});

test('idle proxied connections pin at most an eighth of the pool: 24 open connections through a pool of 16 all get answers while all stay open', async (t) => {
  const pool = new ObjectPool({ capacity: 16, objectSize: 16 * 1024 });
  const target = await echoTarget();
  const { server, pipes, port } = await startProxy(pool, target.port);
  const clients = await Promise.all(Array.from({ length: 24 }, () => new Promise((resolve, reject) => {
    const c = net.connect({ port, host }, () => resolve(c));
    c.on('error', reject);
  })));
  await until(() => pipes.length === 24 && pipes.every((p) => !p.upstream.connecting) && target.sockets.length === 24);
  t.is(pool.stats().available, 16, 'no buffer held by an idle connection');
  // Each client asks and waits for its answer; none closes meanwhile.
  const answers = await Promise.all(clients.map((c, i) => new Promise((resolve) => {
    const ask = pattern.subarray(i * 1000, i * 1000 + 20_000);
    const got = [];
    let n = 0;
    c.on('data', (d) => {
      got.push(d);
      n += d.length;
      if (n >= ask.length) resolve(Buffer.concat(got).equals(ask));
    });
    c.write(ask);
  })));
  t.true(answers.every(Boolean), 'every connection got its echo');
  t.true(pool.stats().available >= 16 - 16 / 8, 'idle connections keep at most capacity/8 objects');
  for (const c of clients) c.end();
  await until(() => pipes.every((p) => p.done));
  t.true(pipes.every((p) => p.err === null));
  await close(server);
  await close(target.server);
});
