'use strict';
// Choosing the automatic cache size: one thread's pop+push pair cost for
// cache sizes 0..128 under three patterns: alternating (pop, push), bursts
// of 8 and bursts of 32 (k pops, then k pushes). One op = one pair.
const { ObjectPool } = require('../..');

const SIZES = [0, 2, 4, 8, 16, 32, 64, 128];
const BURSTS = [1, 8, 32];

function implementations() {
  const impls = {};
  for (const burst of BURSTS) {
    for (const cache of SIZES) {
      impls[`burst ${burst}, cache ${cache}`] = () => {
        const pool = new ObjectPool({ capacity: 4096, objectSize: 64, slots: 2, cache });
        // A loop of its own per implementation (new Function), so that its
        // call sites see one pool's closures only and stay monomorphic.
        const run = new Function('pool', 'held', `return function run(n) {
          for (let i = 0; i < n; i += ${burst}) {
            for (let k = 0; k < ${burst}; k++) held[k] = pool.pop();
            for (let k = 0; k < ${burst}; k++) pool.push(held[k]);
          }
        };`)(pool, new Int32Array(burst));
        return { run };
      };
    }
  }
  return impls;
}

module.exports = {
  name: 'cache',
  title: 'cache size: ns per pop+push pair, by burst length and per-thread cache size',
  baseline: 'burst 1, cache 0',
  defaults: { ops: 1_000_000, rounds: 5 },
  async run({ ops, rounds }) {
    const { samples } = await require('../lib').measureAll(implementations(), { ops, rounds });
    return { samples };
  },
};
