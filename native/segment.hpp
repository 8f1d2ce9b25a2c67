// segment.hpp: process-shared pools (`processShared: true`). The pool's
// metadata and arena live in one segment of OS shared memory that every
// process of the pool maps; its header holds what no JS code can reach:
//   - a 128-bit random token, which a process descriptor must name;
//   - the process table: one entry per process that has the pool mapped
//     (its PID and start time, which tell a reused PID from the process
//     that had it, and its share of the cache budget); an entry's slot plus
//     one is the owner tag of the objects that process holds (pool.hpp);
//   - the view table: one gap word per view (a thread's ObjectPool) of any
//     process (see Pool::Gap), which a recovery waits on;
//   - the recovery lock.
// Each process runs one watcher thread per segment: it notices a process of
// the pool dying (a pidfd per process, polled) and runs Pool::recover(); it
// also passes a close by another process on to this process's views.
//
// Linux: the segment is a memfd (no name in any file system, mode 0600,
// sealed against resizing); another process of the same user opens it
// through /proc/<pid>/fd/<fd> of any process that has it (the kernel checks
// that it may: same user, or ptrace rights), and it goes away with its last
// descriptor and mapping. Other platforms: not built yet (processCreate()
// throws ERR_OBJPOOL_UNSUPPORTED).
//
// Memory: what the header says is checked at attach against the real size
// of the memory, then copied here; nothing read from the segment afterwards
// (owner tags, PIDs, view owners) is used as an index without a bounds
// check. The mapping stays until the last holder (a view, an ArrayBuffer
// over it, the process table of this process) lets go.
#ifndef OBJPOOL_SEGMENT_HPP
#define OBJPOOL_SEGMENT_HPP

#include <napi.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "objpool.hpp"

namespace objpool::binding {

namespace seg {
inline constexpr uint32_t kMagic = 0x4753504fu;  // "OPSG" in little-endian bytes
inline constexpr uint32_t kVersion = 2;
inline constexpr size_t kPage = 4096;
inline constexpr uint32_t kMaxProcs = objpool::kMaxOwners;
inline constexpr uint32_t kMaxViews = 1024;
// Header words (byte offsets).
inline constexpr size_t magic = 0;
inline constexpr size_t version = 4;
inline constexpr size_t token = 8;  // 16 bytes
inline constexpr size_t uid = 24;
inline constexpr size_t lock = 28;  // u32: owner tag of the process recovering now, 0 none
inline constexpr size_t meta_off = 32;
inline constexpr size_t meta_len = 40;
inline constexpr size_t arena_off = 48;
inline constexpr size_t arena_len = 56;
inline constexpr size_t total = 64;  // u64: the bytes of the pool's own part (header, metadata, arena)
// Channels (their memory follows the pool's part, a page-aligned block each).
inline constexpr size_t chan_next = 72;    // u64: where the next channel's block starts
inline constexpr size_t chan_frozen = 80;  // u32: non-zero while a recovery holds every channel still
// Recovery counters (u64, relaxed: counts for stats()), of channel calls that dead processes cut short.
inline constexpr size_t chan_repaired = 88;   // cells repaired (a claimed cell published as a hole, or emptied)
inline constexpr size_t chan_recovered = 96;  // objects taken back from the middle of a channel call
inline constexpr uint32_t kMaxChannels = 64;
inline constexpr size_t chans = 256;  // the channel table
inline constexpr size_t chan_bytes = 32;
inline constexpr size_t c_state = 0;     // u32: ChanState
inline constexpr size_t c_capacity = 4;  // u32
inline constexpr size_t c_off = 8;       // u64: the block's offset in the memory
inline constexpr size_t c_len = 16;      // u64: the block's length
static_assert(chans + kMaxChannels * chan_bytes <= kPage, "the channel table fits in the first page");
inline constexpr size_t procs = kPage;  // the process table
inline constexpr size_t proc_bytes = 64;
inline constexpr size_t p_state = 0;    // u32: ProcState
inline constexpr size_t p_pid = 4;      // u32
inline constexpr size_t p_start = 8;    // u64: start time, in clock ticks since boot (/proc/<pid>/stat)
inline constexpr size_t p_budget = 16;  // u32: the process's share of the cache budget
inline constexpr size_t views = procs + size_t(kMaxProcs) * proc_bytes;  // the view table
inline constexpr size_t view_bytes = 64;  // one line each: a gap word is written on every list operation
inline constexpr size_t v_owner = 0;      // u32: owner tag of the view's process, 0 free
inline constexpr size_t v_gap = 4;        // u32: see Pool::Gap
inline constexpr size_t v_cgap = 8;       // u32: the same for a channel call (see ChanGap)
inline constexpr size_t header_bytes = views + size_t(kMaxViews) * view_bytes;
static_assert(header_bytes % kPage == 0, "the metadata starts on a page");
}  // namespace seg

enum ProcState : uint32_t { kProcFree = 0, kProcClaiming = 1, kProcLive = 2, kProcDead = 3 };
// A channel table entry: free, being made (by a process that may die
// there: the entry is then lost, never the memory of another), in use (for
// as long as the pool's memory lives).
enum ChanState : uint32_t { kChanFree = 0, kChanCreating = 1, kChanLive = 2 };

struct Segment {
  int fd = -1;
  uint8_t* base = nullptr;
  size_t size = 0;          // what `base` maps
  uint64_t pool_bytes = 0;  // of that, the pool's own part (the header's total): channel blocks start after it
  uint8_t token[16] = {};
  std::string token_hex;
  uint64_t meta_off = 0, meta_len = 0, arena_off = 0, arena_len = 0;
  uint32_t me = 0;  // this process's owner tag: its slot in the process table, plus one
  int pid = 0;
  objpool::Pool pool;  // for the watcher: no gap word, no owner
  std::thread watcher;
  int stop_pipe[2] = {-1, -1};
  std::atomic<bool> stopping{false};
  // This process's mappings of the pool's channels, by table index: made
  // once (under chan_mutex), kept while the segment lives.
  struct ChanMap {
    uint8_t* base = nullptr;
    size_t len = 0;
  };
  std::mutex chan_mutex;
  ChanMap chans[seg::kMaxChannels];

  ~Segment();
  uint8_t* meta() const { return base + meta_off; }
  uint8_t* arena() const { return base + arena_off; }
  uint32_t* word(size_t off) const { return reinterpret_cast<uint32_t*>(base + off); }
  uint32_t* proc_word(uint32_t slot, size_t off) const {
    return word(seg::procs + size_t(slot) * seg::proc_bytes + off);
  }
  uint32_t* view_word(uint32_t v, size_t off) const { return word(seg::views + size_t(v) * seg::view_bytes + off); }
  uint32_t* chan_word(uint32_t i, size_t off) const { return word(seg::chans + size_t(i) * seg::chan_bytes + off); }
  // A view record for a new view of this process: its index, or -1 when all are taken.
  int claim_view();
  void free_view(int v);
  // The pool's tag in its channels (objpool::Channel::pool_tag()): from the token.
  uint64_t channel_tag() const;
  // A recovery counter of the header (seg::chan_repaired, seg::chan_recovered).
  uint64_t counted(size_t which) const {
    // relaxed: a count.
    return atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(base + which)).load(std::memory_order_relaxed);
  }
  // A new channel of `capacity` cells (a power of two), formatted as the
  // MPMC queue: its index in the channel table, or -1 with `code` and
  // `message` set.
  int create_channel(uint32_t capacity, std::string* code, std::string* message);
  // Channel `index` of the table, mapped into this process (once), its
  // entry checked against the memory's real size: bound to `out`, or false
  // (no such channel, or a forged entry).
  bool channel(uint32_t index, objpool::Channel& out);
};

// A channel call of a view of a process-shared pool runs inside the view's
// channel gap (an odd count in its record's v_cgap word, as Pool::Gap for
// list operations): a recovery freezes every channel (chan_frozen), waits
// until no live view is inside a gap it entered before, and then finds
// every unfinished call in the cells a dead view left (see
// Channel::recover_cells()). A call that finds the channels frozen leaves
// its gap and waits for the thaw. No-op for a view without a segment.
class ChanGap {
 public:
  ChanGap(Segment* s, int view);
  ~ChanGap();
  ChanGap(const ChanGap&) = delete;
  ChanGap& operator=(const ChanGap&) = delete;

 private:
  uint32_t* gap_ = nullptr;
};

// The segment of a new pool (the metadata formatted for `c`), or null with
// `code` and `message` set.
std::shared_ptr<Segment> create_segment(const objpool::Config& c, std::string* code, std::string* message);
// Maps the pool of a process descriptor: (pid, fd, token). The same segment
// when this process has it mapped already.
std::shared_ptr<Segment> attach_segment(double pid, double fd, const std::string& token, std::string* code,
                                        std::string* message);
// The segment an External made by segmentValue() holds, or null.
std::shared_ptr<Segment> segment_of(napi_env env, napi_value v);

// An ArrayBuffer over `len` bytes at `p` of the segment's memory, which it
// keeps mapped; null after a thrown error.
napi_value segment_memory(napi_env env, const std::shared_ptr<Segment>& s, const void* p, size_t len);

Napi::Value ProcessCreate(const Napi::CallbackInfo& info);
Napi::Value ProcessAttach(const Napi::CallbackInfo& info);
Napi::Value ProcessSupported(const Napi::CallbackInfo& info);

}  // namespace objpool::binding

#endif  // OBJPOOL_SEGMENT_HPP
