'use strict';
// The obvious cross-thread pool a user would write without objpool: a free
// list of handles in a SharedArrayBuffer guarded by an Atomics spin/wait
// mutex. Words: [0] lock (0 free, 1 held, 2 held with waiters), [1] top,
// [2..] handles.
class MutexFreeList {
  static create(capacity) {
    const sab = new SharedArrayBuffer((capacity + 2) * 4);
    const w = new Int32Array(sab);
    for (let i = 0; i < capacity; i++) w[2 + i] = i;
    w[1] = capacity;
    return sab;
  }
  constructor(sab) {
    this.w = new Int32Array(sab);
  }
  lock() {
    const w = this.w;
    let c = Atomics.compareExchange(w, 0, 0, 1);
    if (c === 0) return;
    for (let spin = 0; spin < 100; spin++) {
      c = Atomics.compareExchange(w, 0, 0, 1);
      if (c === 0) return;
    }
    if (c !== 2) c = Atomics.exchange(w, 0, 2);
    while (c !== 0) {
      Atomics.wait(w, 0, 2);
      c = Atomics.exchange(w, 0, 2);
    }
  }
  unlock() {
    if (Atomics.sub(this.w, 0, 1) !== 1) {
      Atomics.store(this.w, 0, 0);
      Atomics.notify(this.w, 0, 1);
    }
  }
  pop() {
    this.lock();
    const w = this.w;
    const top = w[1];
    const h = top > 0 ? w[1 + top] : -1;
    if (top > 0) w[1] = top - 1;
    this.unlock();
    return h;
  }
  push(h) {
    this.lock();
    const w = this.w;
    const top = w[1] + 1;
    w[1 + top] = h;
    w[1] = top;
    this.unlock();
  }
}

module.exports = { MutexFreeList };
