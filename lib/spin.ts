// The bounded spin before a wait (HandleChannel.receiveAsync(), and
// ObjectPool.popAsync() on a process-shared pool): one per instance.
//
// Waking a sleeping thread costs tens of microseconds (the OS, then the
// event loop): a peer that answers within the spin is caught without
// either. Measured (2-core VM, Node 20): a receiveAsync ping-pong between
// two threads went from 74.7 us to 0.64 us a round trip with a 20 us spin
// (npm run bench -- channel), and a popAsync ping-pong between two
// processes from 66.9 to 5.0 us (npm run bench -- process). A spin that
// catches nothing makes the next ones skip it, 1, 2, 4 ... up to 64 calls,
// so a peer that is always slower costs at most one 20 us spin in 64 waits;
// a catch resets it.

const SPIN_MS = 0.02;
const SPIN_MAX_SKIP = 64;
const SPIN_MAX_LOOKS = 4096; // far more than 20 us of empty looks: a clock that stands still (fake timers) cannot hold the thread

export class BoundedSpin {
  /** Calls left to skip the spin, and the next skip. */
  #skip = 0;
  #backoff = 0;

  /** Calls `look()` until it returns >= 0 (returned) or the spin is over (-1). */
  run(look: () => number): number {
    if (this.#skip > 0) {
      this.#skip--;
      return -1;
    }
    const end = performance.now() + SPIN_MS;
    let looks = SPIN_MAX_LOOKS;
    do {
      const h = look();
      if (h >= 0) {
        this.#backoff = 0;
        return h;
      }
    } while (--looks > 0 && performance.now() < end);
    this.#skip = this.#backoff = Math.min(2 * this.#backoff || 1, SPIN_MAX_SKIP);
    return -1;
  }
}
