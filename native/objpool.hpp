// objpool.hpp: a scalable lock-free pool of fixed-size objects.
//
// Header-only, no Node headers: usable from any C++ thread. The pool works
// over memory the caller provides (in the addon: SharedArrayBuffers owned by
// V8), so every thread that can see that memory can use the same pool.
//
// The core, in the headers this one includes (include this one; each also
// compiles on its own):
//   - platform.hpp: the platform seam: per-OS includes and macros, the CPU
//     number as a slot hint, and the address wait (futex, WaitOnAddress,
//     __ulock_wait, or std::atomic_ref::wait);
//   - layout.hpp: what the parts share: the metadata's constants and byte
//     layout, Counter, Status, Config and the shape checks;
//   - pool.hpp: objpool::Pool (per-CPU tagged Treiber stacks of handles,
//     waiting, close and drain, the caches' budget, counters), with the
//     design notes;
//   - channel.hpp: objpool::Channel, handle channels (a bounded MPMC queue
//     of a pool's handles in shared memory) and chan_layout;
//   - atomic_ref.hpp: objpool::atomic_ref (std::atomic_ref, or a stand-in).
// The N-API binding over the core (binding.hpp, addon.cc, registry.cc,
// waiting.cc, channels.cc) is the only part that needs Node.
#ifndef OBJPOOL_HPP
#define OBJPOOL_HPP

#include "channel.hpp"
#include "layout.hpp"
#include "platform.hpp"
#include "pool.hpp"

#endif  // OBJPOOL_HPP
