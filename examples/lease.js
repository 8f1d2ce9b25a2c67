'use strict';
// Leases, leak reports and zeroing: node --expose-gc examples/lease.js
const { ObjectPool } = require('objpool');

const pool = new ObjectPool({
  capacity: 8,
  objectSize: 256,
  zero: true, // every object is zeroed when it comes back: no bytes pass from one user to the next
  leaks: { sample: 1, onLeak: (r) => console.log(`leak: object ${r.handle}, held ${r.heldMs} ms, acquired at:\n${r.stack.split('\n')[0]}`) },
});

// A lease returns its object at scope exit (`using lease = pool.lease()` where
// the runtime has the syntax; here its Symbol.dispose is called the same way).
function handle(request) {
  const lease = pool.lease();
  try {
    lease.buffer.write(request);
    return lease.buffer.toString('utf8', 0, request.length).toUpperCase();
  } finally {
    lease[Symbol.dispose]();
  }
}
console.log(handle('hello'), handle('pool'));

// A buffer that is dropped without being released is found when it is collected.
function forgetful() {
  pool.acquire().write('never released');
}
forgetful();

const b = pool.acquire();
console.log(`a reused object is zeroed: ${b.every((x) => x === 0)}`);
pool.release(b);

if (typeof gc === 'function') {
  gc();
  setTimeout(() => console.log('in use:', pool.stats().inUse), 10);
} else {
  console.log('run with --expose-gc to see the leak report now (otherwise it comes whenever V8 collects)');
}
