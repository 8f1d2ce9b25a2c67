'use strict';
// Regressions from a hostile review of channels and of the metrics: leak
// tracking untracks exactly what was sent or pushed even when the caller's
// array changes under it; a pool's internals are reachable from no object
// of the library.
const test = require('ava');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { ObjectPool, HandleChannel } = require('..');

// Wraps the view's native call `name` while a pool is made: `hook` sees its
// arguments (the view's native calls are reachable from no object of the pool).
function withNativeHook(name, hook, make) {
  const { native } = require('../dist/native');
  const open = native.open;
  native.open = (...args) => {
    const ops = open(...args);
    const real = ops[name];
    ops[name] = (...a) => { hook(a); return real(...a); };
    return ops;
  };
  try {
    return make();
  } finally {
    native.open = open;
  }
}

for (const [what, call] of [['sendMany', 'chanSendMany'], ['pushMany', 'pushMany']]) {
  test(`leaks on: ${what} sends from one private copy of the handles, taken first, and untracks from that copy`, (t) => {
    const seen = [];
    const pool = withNativeHook(call, (a) => seen.push(what === 'sendMany' ? a[1] : a[0]), () =>
      new ObjectPool({ capacity: 8, objectSize: 8, leaks: { sample: 1 } }));
    const ch = pool.channel({ capacity: 8 });
    const x = pool.acquire(), y = pool.acquire();
    const hx = pool.handleOf(x), hy = pool.handleOf(y);
    const arr = new Uint32Array(new SharedArrayBuffer(4));
    arr[0] = hx;
    const run = (a) => (what === 'sendMany' ? ch.sendMany(a, 1) : pool.pushMany(a, 1));
    run(arr);
    t.is(seen.length, 1);
    t.not(seen[0], arr, 'native code read a copy, not the caller\'s shared array');
    t.deepEqual([...seen[0]], [hx]);
    // Another thread changing the caller's array after the copy changes nothing sent.
    arr[0] = hy;
    t.deepEqual([...seen[0]], [hx]);
    if (what === 'sendMany') t.is(ch.receive(), hx);
    else t.is(pool.stats().inUse, 1);
    // A Proxy of a Uint32Array: the coded error, as without leak tracking.
    t.throws(() => run(new Proxy(arr, {})), { code: 'ERR_INVALID_ARG_TYPE' });
    t.throws(() => run([hy]), { code: 'ERR_INVALID_ARG_TYPE' });
  });
}

test('no symbol or property of a pool or channel leads to its native calls or its own memory', (t) => {
  const pool = new ObjectPool({ capacity: 4, objectSize: 8 });
  const ch = pool.channel({ capacity: 2 });
  for (const o of [pool, Object.getPrototypeOf(pool), ch, Object.getPrototypeOf(ch), ch.send, ch.receive]) {
    for (const s of Object.getOwnPropertySymbols(o)) {
      t.not(String(s), 'Symbol(objpool.channelHost)');
      t.not(String(s), 'Symbol(objpool.channel.record)');
    }
  }
  // attach() takes only a real pool instance.
  t.throws(() => HandleChannel.attach(ch.descriptor, Object.create(ObjectPool.prototype)), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => HandleChannel.attach(ch.descriptor, {}), { code: 'ERR_INVALID_ARG_TYPE' });
  const h = pool.pop();
  t.true(HandleChannel.attach(ch.descriptor, pool).send(h));
  t.is(ch.receive(), h);
});

