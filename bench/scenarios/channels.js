'use strict';
// Channel calls with many other channels of the same pool open: a call names
// its channel by an id into its view's table, and a send that wakes a
// waiter looks through that channel's own records only, so neither may grow
// with the number of channels. Two groups, each with 0 and with `others`
// other channels open (capacity 2 each, in the measuring thread's view):
//   - sendMany + receiveMany of 8 handles, one thread (ns per pair);
//   - a round trip to a worker whose receiveAsync waits on the channel: each
//     send wakes it (ns per round trip).
const { Worker } = require('node:worker_threads');
const { ObjectPool } = require('../..');

const WORKER = `
  const { workerData } = require('node:worker_threads');
  const { ObjectPool, HandleChannel } = require(workerData.root);
  const pool = ObjectPool.attach(workerData.pool);
  const a = HandleChannel.attach(workerData.a, pool), b = HandleChannel.attach(workerData.b, pool);
  (async () => { for await (const h of a) b.send(h); })();`;

function setup(others) {
  const pool = new ObjectPool({ capacity: 64, objectSize: 64 });
  const keep = [];
  for (let i = 0; i < others; i++) keep.push(pool.channel({ capacity: 2 }));
  const a = pool.channel({ capacity: 16 }), b = pool.channel({ capacity: 16 }), c = pool.channel({ capacity: 16 });
  const hs = new Uint32Array(8), out = new Uint32Array(8);
  for (let i = 0; i < hs.length; i++) hs[i] = pool.pop();
  const worker = new Worker(WORKER, { eval: true, workerData: { root: require.resolve('../..'), pool: pool.descriptor, a: a.descriptor, b: b.descriptor } });
  const batch = { run(n) { for (let i = 0; i < n; i++) { c.sendMany(hs); c.receiveMany(out); } } };
  let h = pool.pop();
  const wake = { async run(n) { for (let i = 0; i < n; i++) { a.send(h); h = await b.receiveAsync(); } } };
  return { batch, wake, stop: async () => { a.close(); await worker.terminate(); keep.length = 0; } };
}

module.exports = {
  name: 'channels',
  title: 'channel calls with many other channels of the pool open: ns per call pair / round trip',
  baseline: 'sendMany + receiveMany (8), no other channel',
  defaults: { ops: 200_000, rounds: 7, others: 20_000 },
  async run({ ops, rounds, others }) {
    const { interleave } = require('../lib');
    const none = setup(0), many = setup(others);
    const samples = await interleave({
      'sendMany + receiveMany (8), no other channel': none.batch,
      [`sendMany + receiveMany (8), ${others} other channels`]: many.batch,
    }, { ops, rounds });
    const wakes = await interleave({
      'send waking a worker\'s receiveAsync, round trip, no other channel': none.wake,
      [`send waking a worker's receiveAsync, round trip, ${others} other channels`]: many.wake,
    }, { ops: Math.ceil(ops / 40), rounds });
    await none.stop();
    await many.stop();
    return {
      samples,
      tables: [{ title: 'channel wake-ups with many other channels open: ns per round trip', baseline: 'send waking a worker\'s receiveAsync, round trip, no other channel', samples: wakes }],
    };
  },
};
