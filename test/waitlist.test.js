'use strict';
// The wait list behind pooled sockets (lib/waitlist.ts), driven without
// sockets: readers that wait for an object, one pool wait for all of them.
const test = require('ava');
const { ObjectPool } = require('..');
const { Waitlist } = require('../dist/waitlist');
const { assertIntact, until } = require('./helpers');

const settle = () => new Promise((r) => setImmediate(r));

function reader(pool, name, served) {
  return {
    tryResume(h = -1) {
      if (h < 0 && (h = pool.pop()) < 0) return false;
      served.push([name, h]);
      return true;
    },
  };
}

// The pool wait settles as its reader leaves; a new reader arms a new wait
// before the first one's handler runs. That handler must not drop the new
// wait: nobody could abort it, and it would keep the thread alive.
test('a wait that settled while its readers left and came back does not orphan the new wait', async (t) => {
  const pool = new ObjectPool({ capacity: 2, objectSize: 8, cache: 0 });
  const a = pool.pop();
  const list = new Waitlist(pool);
  const served = [];
  const r1 = reader(pool, 'r1', served);
  const r2 = reader(pool, 'r2', served);
  list.add(r1); // the wait takes the last object at once; its handler runs later
  list.delete(r1);
  list.add(r2); // the pool is empty now: a second wait, pending
  t.is(pool.stats().waiting, 1);
  await settle();
  t.deepEqual(served.map(([name]) => name), ['r2'], 'the object reached the reader that waits');
  t.is(pool.stats().waiting, 0, 'no wait is left behind once nobody waits');
  pool.push(a);
  pool.push(served[0][1]);
  assertIntact(t, pool);
});

test('readers are served in order as objects come back, and the wait ends with the last one', async (t) => {
  const pool = new ObjectPool({ capacity: 2, objectSize: 8, cache: 0 });
  const held = [pool.pop(), pool.pop()];
  const list = new Waitlist(pool);
  const served = [];
  for (const name of ['r1', 'r2']) list.add(reader(pool, name, served));
  t.is(pool.stats().waiting, 1, 'one pool wait for every reader');
  // A push reaches the pool wait through the wake-up thread: wait for it.
  pool.push(held[0]);
  await until(() => served.length === 1);
  pool.push(held[1]);
  await until(() => served.length === 2);
  t.deepEqual(served.map(([name]) => name), ['r1', 'r2']);
  t.is(pool.stats().waiting, 0);
  for (const [, h] of served) pool.push(h);
  assertIntact(t, pool);
});
