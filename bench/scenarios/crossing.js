'use strict';
// Splits the cost of a bound pop+push pair: the bare JS-to-native crossing,
// then each N-API accessor the binding needs, then the real calls. One op =
// two calls (like one pop + one push).
const { ObjectPool } = require('../..');
const t = require('../../test/addon');

const implementations = {
  // Without a cache: every pop and push crosses into native code.
  'pool.pop() + pool.push(h), cache: 0': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: 64, cache: 0 });
    return { run(n) { for (let i = 0; i < n; i++) pool.push(pool.pop()); } };
  },
  'pool.pop() + pool.push(h), unchecked, cache: 0': () => {
    const pool = new ObjectPool({ capacity: 1024, objectSize: 64, checked: false, cache: 0 });
    return { run(n) { for (let i = 0; i < n; i++) pool.push(pool.pop()); } };
  },
  'no-op x2': () => {
    const f = t.noop;
    return { run(n) { for (let i = 0; i < n; i++) { f(); f(i); } } };
  },
  'no-op x2 + get_cb_info(data)': () => {
    const f = t.noopData;
    return { run(n) { for (let i = 0; i < n; i++) { f(); f(i); } } };
  },
  // What pop/push would cost with a return value and an argument instead of
  // the register: compare with the row above.
  'pop-shaped + push-shaped calls, no pool': () => {
    const pop = t.noopReturnInt;
    const push = t.noopArgDouble;
    return { run(n) { for (let i = 0; i < n; i++) push(pop()); } };
  },
};

module.exports = {
  name: 'crossing',
  title: 'where a pop+push pair goes: the crossing, the N-API accessors, the core',
  baseline: 'no-op x2',
  defaults: { ops: 2_000_000, rounds: 9 },
  async run({ ops, rounds }) {
    const { samples } = await require('../lib').measureAll(implementations, { ops, rounds });
    return { samples };
  },
};
