'use strict';
// Waiting for an object: node examples/wait.js
// A pool of 2 buffers shared with a worker. The main thread takes both, then
// waits (popAsync) while the worker returns them a little later; a third
// wait gives up after 50 ms, a fourth when its AbortSignal fires.
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const { ObjectPool } = require('objpool');

if (isMainThread) {
  (async () => {
    const pool = new ObjectPool({ capacity: 2, objectSize: 1024 });
    const worker = new Worker(__filename, { workerData: pool.descriptor });
    const held = await new Promise((resolve) => worker.once('message', resolve)); // the worker holds both
    console.log(`worker holds ${held.length} objects; pool.pop() gives ${pool.pop()}`);
    const t0 = Date.now();
    const [a, b] = await Promise.all([pool.acquireAsync(), pool.popAsync()]);
    console.log(`waited ${Date.now() - t0} ms for 2 objects pushed back by the worker: "${a.toString('utf8', 0, 11)}", handle ${b}`);
    try {
      await pool.popAsync({ timeout: 50 });
    } catch (err) {
      console.log(`third wait: ${err.code}`);
    }
    try {
      await pool.popAsync({ signal: AbortSignal.timeout(20) });
    } catch (err) {
      console.log(`fourth wait: ${err.name}`);
    }
    pool.release(a);
    pool.push(b);
    await worker.terminate();
    console.log('stats:', JSON.stringify(pool.stats()));
  })();
} else {
  const pool = ObjectPool.attach(workerData);
  const held = [pool.pop(), pool.pop()];
  parentPort.postMessage(held);
  setTimeout(() => {
    for (const h of held) {
      pool.buffer(h).write('from worker');
      pool.push(h); // wakes the main thread's waiters
    }
  }, 100);
}
