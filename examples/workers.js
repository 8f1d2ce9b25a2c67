'use strict';
// One pool shared by the main thread and two worker threads: workers fill
// pooled buffers and hand over only their handles; the main thread reads the
// bytes in place (no copy) and returns the buffers to the pool.
//
//   node examples/workers.js
const { Worker, isMainThread, parentPort, workerData, threadId } = require('node:worker_threads');
const { ObjectPool } = require('objpool');

if (isMainThread) {
  const pool = new ObjectPool({ capacity: 64, objectSize: 16 * 1024 });
  let running = 2;
  for (let i = 0; i < 2; i++) {
    const worker = new Worker(__filename, { workerData: pool.descriptor });
    worker.on('message', (handle) => {
      console.log(`main read: ${pool.buffer(handle).toString('utf8', 0, 24)}`);
      pool.push(handle); // popped in the worker, pushed here
    });
    worker.on('exit', () => {
      if (--running === 0) console.log('pool after the workers:', pool.stats());
    });
  }
} else {
  const pool = ObjectPool.attach(workerData); // validates the descriptor first
  for (let i = 0; i < 3; i++) {
    const handle = pool.pop();
    if (handle < 0) break; // empty: every buffer is out
    pool.buffer(handle).write(`worker ${threadId}, message ${i}`.padEnd(24));
    parentPort.postMessage(handle);
  }
}
