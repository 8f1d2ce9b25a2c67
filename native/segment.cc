// segment.cc: process-shared pools' segments (see segment.hpp): creating and
// attaching them, the process and view tables, and the watcher thread that
// recovers what dead processes held.

#include "segment.hpp"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "binding.hpp"

#if defined(__linux__)
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#define OBJPOOL_PROCESS_SHARED 1
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434  // the same number on every architecture
#endif
#endif

namespace objpool::binding {

namespace {

std::mutex& segments_mutex() {
  static auto* m = new std::mutex;
  return *m;
}
// This process's mapped segments, by token: a second attach (another thread,
// another descriptor of the same pool) shares the mapping, so that every
// view of the pool in the process has the same metadata address (the
// registry's key).
std::unordered_map<std::string, std::weak_ptr<Segment>>& segments() {
  static auto* m = new std::unordered_map<std::string, std::weak_ptr<Segment>>;
  return *m;
}

atomic_ref<uint32_t> at(uint32_t* w) { return atomic_ref<uint32_t>(*w); }

std::string hex(const uint8_t* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

bool unhex(const std::string& s, uint8_t* out, size_t n) {
  if (s.size() != 2 * n) return false;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < n; ++i) {
    const int a = nib(s[2 * i]), b = nib(s[2 * i + 1]);
    if (a < 0 || b < 0) return false;
    out[i] = uint8_t(a << 4 | b);
  }
  return true;
}

uint64_t round_up(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

#if defined(OBJPOOL_PROCESS_SHARED)

// This process's descriptor of /proc, opened on first use and kept; -1
// while it cannot be opened (out of descriptors, say): tried again at the
// next call, and absolute paths meanwhile.
std::atomic<int> proc_dir{-1};
int proc_dir_fd() {
  // relaxed (all): the descriptor's number is all that is shared; the
  // descriptor itself is the process's, whichever thread opened it.
  int d = proc_dir.load(std::memory_order_relaxed);
  if (d >= 0) return d;
  const int mine = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (mine < 0) return -1;
  if (proc_dir.compare_exchange_strong(d, mine, std::memory_order_relaxed)) return mine;
  close(mine);  // another thread's came first
  return d;
}
// Drops the descriptor `d` (not closed: its number may be someone else's
// now); the next proc_dir_fd() opens /proc again.
void forget_proc_dir(int d) {
  // relaxed: as above.
  proc_dir.compare_exchange_strong(d, -1, std::memory_order_relaxed);
}

// Whether descriptor `d` is (still) a descriptor of /proc: same device and
// inode as the path "/proc" (which qemu-user does not intercept). The
// system calls themselves, as elsewhere here: glibc 2.33 gave fstat() and
// stat() new symbol versions, which the prebuilds' glibc 2.28 floor lacks.
bool is_proc_dir(int d) {
  struct stat a, b;
  return syscall(SYS_fstat, d, &a) == 0 && syscall(SYS_newfstatat, AT_FDCWD, "/proc", &b, 0) == 0 &&
         a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// A process's start time (clock ticks since boot) and state letter, from
// /proc/<pid>/stat; false if it cannot be read. `gone` (if given) is set
// only when the reason is that there is no such process (ENOENT, ESRCH):
// any other failure (EMFILE, ENOMEM...) says nothing about the process.
//
// The file is opened relative to a descriptor of /proc ("<pid>/stat"), not
// by its absolute path. Under qemu-user, an open of "/proc/self/stat" or
// "/proc/<own pid>/stat" is answered by the emulator, which computes the
// start time itself: measured 1 clock tick later than the kernel's, so a
// watcher in another process, reading the kernel's, took the process for
// one that had died and whose PID was reused. qemu-user (7.2, Debian 12's)
// matches the path as given, so a relative open reaches the kernel.
bool proc_stat(int pid, uint64_t* start, char* state, bool* gone = nullptr) {
  if (gone) *gone = false;
  char path[64];
  std::snprintf(path, sizeof path, "%d/stat", pid);
  int dir = proc_dir_fd();
  int fd = dir >= 0 ? openat(dir, path, O_RDONLY | O_CLOEXEC) : -1;
  int err = errno;  // the open's (is_proc_dir() below makes calls of its own)
  if (fd < 0 && dir >= 0 && !is_proc_dir(dir)) {
    // User code closed the descriptor (it can close one it does not own)
    // and the number came back as something else, where "<pid>/stat" is
    // missing for a live process: dropped (not closed: no longer ours),
    // and /proc opened again.
    forget_proc_dir(dir);
    dir = proc_dir_fd();
    fd = dir >= 0 ? openat(dir, path, O_RDONLY | O_CLOEXEC) : -1;
    err = errno;
  }
  if (fd < 0 && dir < 0) {
    // /proc cannot be opened now (out of descriptors, say): the absolute
    // path, which fails the same way then (taken as no proof below).
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    err = errno;
  }
  if (fd < 0) {
    if (gone) *gone = err == ENOENT || err == ESRCH;
    return false;
  }
  char buf[1024];
  const ssize_t n = read(fd, buf, sizeof buf - 1);
  const int e = errno;
  close(fd);
  if (n <= 0) {
    if (gone) *gone = n == 0 || e == ESRCH;  // an exited process's stat reads empty or ESRCH
    return false;
  }
  buf[n] = 0;
  // The command name (field 2) is in parentheses and may hold anything:
  // the fields go on after the last ')'.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return false;
  p += 2;  // ") "
  *state = *p;
  // Field 22 (starttime) is the 20th after the ')'.
  for (int field = 3; field < 22 && *p; ++p)
    if (*p == ' ') ++field;
  unsigned long long v = 0;
  if (std::sscanf(p, "%llu", &v) != 1) return false;
  *start = v;
  return true;
}

// Whether the process with this PID and start time may still be running:
// false only when it is known to be gone (no such process, another start
// time: its PID was reused, or a zombie: what it held is not coming back).
// A /proc read that fails for another reason (this process out of file
// descriptors, say) is no proof of a death: true.
bool alive(int pid, uint64_t start) {
  uint64_t s;
  char st;
  bool gone = false;
  if (pid <= 0) return false;
  if (!proc_stat(pid, &s, &st, &gone)) return !gone;
  return s == start && st != 'Z' && st != 'X' && st != 'x';
}

bool random_bytes(uint8_t* out, size_t n) {
#if defined(SYS_getrandom)
  if (syscall(SYS_getrandom, out, n, 0) == long(n)) return true;
#endif
  const int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = read(fd, out, n) == ssize_t(n);
  close(fd);
  return ok;
}

// Takes a free entry of the process table for this process; its owner tag, or 0.
uint32_t claim_proc(Segment* s) {
  uint64_t start = 0;
  char st;
  if (!proc_stat(s->pid, &start, &st)) return 0;
  for (uint32_t i = 0; i < seg::kMaxProcs; ++i) {
    uint32_t expect = kProcFree;
    // acquire: a freed entry's last recovery is done before it is reused.
    if (!at(s->proc_word(i, seg::p_state)).compare_exchange_strong(expect, kProcClaiming, std::memory_order_acquire))
      continue;
    // relaxed: published by the release store of kProcLive.
    at(s->proc_word(i, seg::p_pid)).store(uint32_t(s->pid), std::memory_order_relaxed);
    atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(s->proc_word(i, seg::p_start)))
        .store(start, std::memory_order_relaxed);
    at(s->proc_word(i, seg::p_budget)).store(0, std::memory_order_relaxed);
    // release: a watcher that reads kProcLive sees the PID and start time.
    at(s->proc_word(i, seg::p_state)).store(kProcLive, std::memory_order_release);
    return i + 1;
  }
  return 0;
}

void watch(Segment* s);

// Maps `fd` (size checked by the caller) and fills in the segment's fields
// from its header, checked against `size`. False: not a valid segment.
bool map_segment(Segment* s, int fd, size_t size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return false;
  s->fd = fd;
  s->base = static_cast<uint8_t*>(p);
  s->size = size;
  return true;
}

bool start(Segment* s) {
  if (pipe2(s->stop_pipe, O_CLOEXEC) != 0) return false;
  try {
    s->watcher = std::thread(watch, s);
  } catch (...) { return false; }
  return true;
}

#endif  // OBJPOOL_PROCESS_SHARED

void finalize_segment(napi_env, void* data, void*) { delete static_cast<std::shared_ptr<Segment>*>(data); }
void finalize_buffer(napi_env, void*, void* hint) { delete static_cast<std::shared_ptr<Segment>*>(hint); }

}  // namespace

napi_value segment_memory(napi_env env, const std::shared_ptr<Segment>& s, const void* p, size_t len) {
  auto* hold = new std::shared_ptr<Segment>(s);
  napi_value v;
  if (napi_create_external_arraybuffer(env, const_cast<void*>(p), len, finalize_buffer, hold, &v) != napi_ok) {
    delete hold;
    napi_throw_error(env, "ERR_OBJPOOL_UNSUPPORTED", "This Node.js build cannot expose shared memory to JS");
    return nullptr;
  }
  return v;
}

namespace {

// { segment, meta, arena, pid, fd, token } for JS: the External keeps the
// segment for the views opened with it; each ArrayBuffer keeps it too.
Napi::Value describe(napi_env env, const std::shared_ptr<Segment>& s) {
  Napi::Object r = Napi::Object::New(env);
  napi_value ext, meta, arena;
  auto* hold = new std::shared_ptr<Segment>(s);
  if (napi_create_external(env, hold, finalize_segment, nullptr, &ext) != napi_ok) {
    delete hold;
    return Napi::Value();
  }
  auto* hm = new std::shared_ptr<Segment>(s);
  if (napi_create_external_arraybuffer(env, s->meta(), size_t(s->meta_len), finalize_buffer, hm, &meta) != napi_ok) {
    delete hm;
    napi_throw_error(env, "ERR_OBJPOOL_UNSUPPORTED", "This Node.js build cannot expose shared memory to JS");
    return Napi::Value();
  }
  auto* ha = new std::shared_ptr<Segment>(s);
  if (napi_create_external_arraybuffer(env, s->arena(), size_t(s->arena_len), finalize_buffer, ha, &arena) != napi_ok) {
    delete ha;
    napi_throw_error(env, "ERR_OBJPOOL_UNSUPPORTED", "This Node.js build cannot expose shared memory to JS");
    return Napi::Value();
  }
  r.Set("segment", Napi::Value(env, ext));
  r.Set("meta", Napi::Value(env, meta));
  r.Set("arena", Napi::Value(env, arena));
  r.Set("pid", double(s->pid));
  r.Set("fd", double(s->fd));
  r.Set("token", s->token_hex);
  r.Set("owner", double(s->me));
  // The shape checked and copied at attach (the live header is not read again).
  r.Set("capacity", double(s->pool.capacity()));
  r.Set("slots", double(s->pool.slots()));
  r.Set("objectSize", double(s->pool.object_size()));
  r.Set("stride", double(s->pool.stride()));
  r.Set("zero", s->pool.zeroes());
  return r;
}

}  // namespace

int Segment::claim_view() {
  for (uint32_t v = 0; v < seg::kMaxViews; ++v) {
    uint32_t expect = 0;
    // acquire: a freed record is reused after its last owner's writes.
    if (at(view_word(v, seg::v_owner)).compare_exchange_strong(expect, me, std::memory_order_acquire)) {
      // relaxed: only this view writes them from now on; 0 is even (outside
      // a gap). Both: a record freed by a recovery keeps the dead view's
      // words, and an odd one would make every later recovery wait for this
      // view (and give up).
      at(view_word(v, seg::v_gap)).store(0, std::memory_order_relaxed);
      at(view_word(v, seg::v_cgap)).store(0, std::memory_order_relaxed);
      return int(v);
    }
  }
  return -1;
}

void Segment::free_view(int v) {
  if (v < 0 || uint32_t(v) >= seg::kMaxViews) return;
  // release: after the view's last gap. A CAS: a record that a recovery
  // freed meanwhile may be another view's now.
  uint32_t expect = me;
  at(view_word(uint32_t(v), seg::v_owner))
      .compare_exchange_strong(expect, 0, std::memory_order_release, std::memory_order_relaxed);
}

uint64_t Segment::channel_tag() const {
  uint64_t t;
  std::memcpy(&t, token, sizeof t);
  return t | 1;  // never 0 (a channel nobody tagged)
}

#if defined(OBJPOOL_PROCESS_SHARED)

int Segment::create_channel(uint32_t capacity, std::string* code, std::string* message) {
  const uint64_t bytes = round_up(objpool::channel_bytes_for(capacity), seg::kPage);
  uint32_t i = 0;
  for (; i < seg::kMaxChannels; ++i) {
    uint32_t expect = kChanFree;
    // relaxed: the entry's fields are published by the release store of kChanLive.
    if (at(chan_word(i, seg::c_state)).compare_exchange_strong(expect, kChanCreating, std::memory_order_relaxed)) break;
  }
  if (i == seg::kMaxChannels) {
    *code = "ERR_OBJPOOL_NO_MEMORY";
    *message = "A process-shared pool has " + std::to_string(seg::kMaxChannels) + " channels at most";
    return -1;
  }
  // Its block, at the end of the memory: the next offset is handed out
  // once (relaxed: only the value matters), and the memory grows to cover
  // it. Growing races with other processes' growing: a smaller size is
  // refused (the shrink seal, EPERM), when a larger one is already there.
  const uint64_t off = atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(base + seg::chan_next))
                           .fetch_add(bytes, std::memory_order_relaxed);
  bool grown = off % seg::kPage == 0 && off >= pool_bytes && off < (uint64_t(1) << 46);
  while (grown) {
    struct stat st;
    if (syscall(SYS_fstat, fd, &st) != 0)
      grown = false;
    else if (uint64_t(st.st_size) >= off + bytes)
      break;
    else if (ftruncate(fd, off_t(off + bytes)) != 0 && errno != EPERM)
      grown = false;
  }
  void* p = grown ? mmap(nullptr, size_t(bytes), PROT_READ | PROT_WRITE, MAP_SHARED, fd, off_t(off)) : MAP_FAILED;
  if (p == MAP_FAILED) {
    *code = "ERR_OBJPOOL_NO_MEMORY";
    *message =
        "Cannot allocate " + std::to_string(bytes) + " bytes of shared memory for a channel: " + std::strerror(errno);
    // relaxed: nothing was published through it.
    at(chan_word(i, seg::c_state)).store(kChanFree, std::memory_order_relaxed);
    return -1;
  }
  objpool::Channel::format(p, size_t(bytes), capacity, true);
  objpool::Channel ch;
  objpool::Channel::attach(p, size_t(bytes), ch);
  ch.set_pool_tag(channel_tag());
  // relaxed (three): published by the release store of kChanLive.
  at(chan_word(i, seg::c_capacity)).store(capacity, std::memory_order_relaxed);
  atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(chan_word(i, seg::c_off))).store(off, std::memory_order_relaxed);
  atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(chan_word(i, seg::c_len))).store(bytes, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(chan_mutex);
    chans[i] = ChanMap{static_cast<uint8_t*>(p), size_t(bytes)};
  }
  // release: a process that reads kChanLive sees the formatted memory and the entry.
  at(chan_word(i, seg::c_state)).store(kChanLive, std::memory_order_release);
  return int(i);
}

bool Segment::channel(uint32_t i, objpool::Channel& out) {
  if (i >= seg::kMaxChannels) return false;
  std::lock_guard<std::mutex> lock(chan_mutex);
  if (chans[i].base == nullptr) {
    // acquire: pairs with create_channel()'s release (the entry, the format).
    if (at(chan_word(i, seg::c_state)).load(std::memory_order_acquire) != kChanLive) return false;
    // relaxed: published by that release. Any process of the user could
    // have rewritten them since: checked before anything is mapped.
    const uint32_t capacity = at(chan_word(i, seg::c_capacity)).load(std::memory_order_relaxed);
    const uint64_t off =
        atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(chan_word(i, seg::c_off))).load(std::memory_order_relaxed);
    const uint64_t len =
        atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(chan_word(i, seg::c_len))).load(std::memory_order_relaxed);
    if (capacity < objpool::kChanMinCapacity || capacity > objpool::kChanMaxCapacity ||
        (capacity & (capacity - 1)) != 0 || len != round_up(objpool::channel_bytes_for(capacity), seg::kPage) ||
        off % seg::kPage != 0 || off < pool_bytes || off >= (uint64_t(1) << 46))
      return false;
    // The memory covers the block now, and the shrink seal keeps it so.
    struct stat st;
    if (syscall(SYS_fstat, fd, &st) != 0 || uint64_t(st.st_size) < off + len) return false;
    void* p = mmap(nullptr, size_t(len), PROT_READ | PROT_WRITE, MAP_SHARED, fd, off_t(off));
    if (p == MAP_FAILED) return false;
    chans[i] = ChanMap{static_cast<uint8_t*>(p), size_t(len)};
  }
  if (objpool::Channel::attach(chans[i].base, chans[i].len, out) != Status::ok) return false;
  out.set_process_shared();
  return true;
}

ChanGap::ChanGap(Segment* s, int view) {
  if (s == nullptr || view < 0 || uint32_t(view) >= seg::kMaxViews) return;
  gap_ = s->view_word(uint32_t(view), seg::v_cgap);
  auto frozen = at(s->word(seg::chan_frozen));
  for (;;) {
    // relaxed load: only this view's thread writes the word. seq_cst store,
    // then the seq_cst load of the freeze: a recovery that froze the
    // channels and then reads this word sees it odd (and waits for the
    // call), or this call sees the channels frozen (and waits for the thaw).
    const uint32_t v = at(gap_).load(std::memory_order_relaxed);
    at(gap_).store(v | 1u, std::memory_order_seq_cst);
    if (frozen.load(std::memory_order_seq_cst) == 0) return;
    // release: as in the destructor. Out of the gap, then wait.
    at(gap_).store((v | 1u) + 1u, std::memory_order_release);
    // acquire: nothing is read through it; a plain wait for the thaw.
    while (frozen.load(std::memory_order_acquire) != 0) detail::pause_us(50);
  }
}

ChanGap::~ChanGap() {
  if (gap_ == nullptr) return;
  // relaxed load: as above. release: the recovery, which acquires the word,
  // sees the cells and states this call wrote.
  const uint32_t v = at(gap_).load(std::memory_order_relaxed);
  at(gap_).store((v | 1u) + 1u, std::memory_order_release);
}

#else

int Segment::create_channel(uint32_t, std::string* code, std::string* message) {
  *code = "ERR_OBJPOOL_UNSUPPORTED";
  *message = "Process-shared pools are not available on this platform yet (Linux only)";
  return -1;
}
bool Segment::channel(uint32_t, objpool::Channel&) { return false; }
ChanGap::ChanGap(Segment*, int) {}
ChanGap::~ChanGap() {}

#endif

Segment::~Segment() {
#if defined(OBJPOOL_PROCESS_SHARED)
  if (watcher.joinable()) {
    stopping.store(true, std::memory_order_release);
    const char c = 0;
    (void)!write(stop_pipe[1], &c, 1);
    watcher.join();
  }
  if (stop_pipe[0] >= 0) close(stop_pipe[0]);
  if (stop_pipe[1] >= 0) close(stop_pipe[1]);
  if (base != nullptr) {
    // This process lets go: what it still holds (objects taken and never
    // pushed back) goes back when another process's watcher recovers the
    // entry, as for a process that died. release: after every view of ours.
    if (me != 0) at(proc_word(me - 1, seg::p_state)).store(kProcDead, std::memory_order_release);
    // Not munmap(): an ArrayBuffer over the memory can outlive every holder
    // here (a worker's arena moved to another thread by transfer(), whose
    // finalizer runs when the worker ends). Private zero pages in the same
    // range let the shared memory go and leave that ArrayBuffer readable;
    // if even that fails, the mapping stays (until the process exits).
    (void)mmap(base, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    for (ChanMap& c : chans)
      if (c.base != nullptr)
        (void)mmap(c.base, c.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  }
  if (fd >= 0) close(fd);
#endif
}

std::shared_ptr<Segment> segment_of(napi_env env, napi_value v) {
  napi_valuetype t;
  if (v == nullptr || napi_typeof(env, v, &t) != napi_ok || t != napi_external) return nullptr;
  void* data = nullptr;
  if (napi_get_value_external(env, v, &data) != napi_ok || data == nullptr) return nullptr;
  // Only this file makes Externals that reach lib/ (others are private to the binding's closures).
  return *static_cast<std::shared_ptr<Segment>*>(data);
}

#if defined(OBJPOOL_PROCESS_SHARED)

std::shared_ptr<Segment> create_segment(const objpool::Config& c, std::string* code, std::string* message) {
  const uint64_t meta_len = objpool::meta_bytes_for(c.capacity, c.slots, c.checked);
  const uint64_t align = std::max<uint64_t>(seg::kPage, c.align);
  const uint64_t meta_off = seg::header_bytes;
  const uint64_t arena_off = round_up(meta_off + meta_len, align);
  const uint64_t arena_len = uint64_t(c.capacity) * c.stride;
  const uint64_t total = round_up(arena_off + arena_len, seg::kPage);
  auto s = std::make_shared<Segment>();
  s->pid = int(getpid());
  const int fd = int(syscall(SYS_memfd_create, "objpool", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (fd < 0) {
    *code = "ERR_OBJPOOL_UNSUPPORTED";
    *message = std::string("Cannot create shared memory (memfd_create): ") + std::strerror(errno);
    return nullptr;
  }
  // The owner alone, whatever the umask; then it never shrinks (it grows by
  // a block for each channel: see create_channel()).
  if (fchmod(fd, 0600) != 0 || ftruncate(fd, off_t(total)) != 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) != 0 || !map_segment(s.get(), fd, total)) {
    *code = "ERR_OBJPOOL_NO_MEMORY";
    *message = "Cannot allocate " + std::to_string(total) + " bytes of shared memory: " + std::strerror(errno);
    close(fd);
    s->fd = -1;
    return nullptr;
  }
  if (!random_bytes(s->token, sizeof s->token)) {
    *code = "ERR_OBJPOOL_UNSUPPORTED";
    *message = "No random source for the pool's token";
    return nullptr;
  }
  s->token_hex = hex(s->token, sizeof s->token);
  s->meta_off = meta_off;
  s->meta_len = meta_len;
  s->arena_off = arena_off;
  s->arena_len = arena_len;
  // Plain stores: nobody else can see the memory before this process hands
  // its descriptor on (process.send(), argv: system calls order them).
  uint8_t* h = s->base;
  detail::store_u32(h + seg::magic, seg::kMagic);
  detail::store_u32(h + seg::version, seg::kVersion);
  std::memcpy(h + seg::token, s->token, sizeof s->token);
  detail::store_u32(h + seg::uid, uint32_t(geteuid()));
  detail::store_u64(h + seg::meta_off, meta_off);
  detail::store_u64(h + seg::meta_len, meta_len);
  detail::store_u64(h + seg::arena_off, arena_off);
  detail::store_u64(h + seg::arena_len, arena_len);
  detail::store_u64(h + seg::total, total);
  detail::store_u64(h + seg::chan_next, total);
  s->pool_bytes = total;
  objpool::Config pc = c;
  pc.process = true;
  if (objpool::Pool::format(s->meta(), size_t(meta_len), pc) != Status::ok ||
      objpool::Pool::attach(s->meta(), size_t(meta_len), s->arena(), size_t(arena_len), s->pool) != Status::ok) {
    *code = "ERR_INVALID_ARG_VALUE";
    *message = "The pool shape is invalid";
    return nullptr;
  }
  s->me = claim_proc(s.get());
  if (s->me == 0 || !start(s.get())) {
    *code = "ERR_OBJPOOL_NO_MEMORY";
    *message = "Cannot start the pool's watcher thread";
    return nullptr;
  }
  std::lock_guard<std::mutex> lock(segments_mutex());
  segments()[s->token_hex] = s;
  return s;
}

std::shared_ptr<Segment> attach_segment(double pid_d, double fd_d, const std::string& token, std::string* code,
                                        std::string* message) {
  auto bad = [&](const std::string& why) {
    *code = "ERR_OBJPOOL_BAD_DESCRIPTOR";
    *message = "Invalid process descriptor: " + why;
    return nullptr;
  };
  uint8_t tok[16];
  if (!unhex(token, tok, sizeof tok)) return bad("token must be 32 lowercase hexadecimal digits");
  if (!(pid_d >= 1 && pid_d <= 4194304 && pid_d == double(int(pid_d)))) return bad("pid must be a process ID");
  if (!(fd_d >= 0 && fd_d <= 1048576 && fd_d == double(int(fd_d)))) return bad("fd must be a file descriptor number");
  {
    std::lock_guard<std::mutex> lock(segments_mutex());
    auto it = segments().find(token);
    if (it != segments().end())
      if (auto s = it->second.lock()) return s;
  }
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/fd/%d", int(pid_d), int(fd_d));
  const int fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    const int e = errno;
    if (e == EACCES || e == EPERM) {
      *code = "ERR_OBJPOOL_ACCESS";
      *message = "No access to the pool's shared memory (" + std::string(std::strerror(e)) +
                 "): a process-shared pool is open to processes of its owner's user only";
      return nullptr;
    }
    return bad("no such pool (" + std::string(std::strerror(e)) + "): the process has let go of it, or has exited");
  }
  struct stat st;
  // The system call itself: glibc 2.33 gave fstat() a new symbol version,
  // which the portable prebuilds (glibc 2.28 and later) cannot need. The
  // kernel's struct stat is glibc's on x86-64 and arm64.
  if (syscall(SYS_fstat, fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < off_t(seg::header_bytes + seg::kPage)) {
    close(fd);
    return bad("it names no pool");
  }
  // Only a memfd sealed against shrinking, as create_segment() makes it: a
  // file that someone could shrink under the mapping would fault (SIGBUS).
  // (Growing is harmless: nothing beyond what was checked is ever touched.)
  const int seals = fcntl(fd, F_GET_SEALS);
  const int need = F_SEAL_SHRINK | F_SEAL_SEAL;
  if (seals < 0 || (seals & need) != need) {
    close(fd);
    return bad("it names memory that is not a pool's (not a sealed memfd)");
  }
  if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
    close(fd);
    *code = "ERR_OBJPOOL_ACCESS";
    *message = "The pool's shared memory belongs to another user, or others may open it";
    return nullptr;
  }
  auto s = std::make_shared<Segment>();
  s->pid = int(getpid());
  if (!map_segment(s.get(), fd, size_t(st.st_size))) {
    close(fd);
    *code = "ERR_OBJPOOL_NO_MEMORY";
    *message = std::string("Cannot map the pool's shared memory: ") + std::strerror(errno);
    return nullptr;
  }
  const uint8_t* h = s->base;
  // The token first: it is what makes this memory the descriptor's pool.
  // Constant time, although a process that can read it can read the memory.
  uint8_t diff = 0;
  for (size_t i = 0; i < sizeof tok; ++i) diff = uint8_t(diff | (h[seg::token + i] ^ tok[i]));
  if (detail::load_u32(h + seg::magic) != seg::kMagic || detail::load_u32(h + seg::version) != seg::kVersion ||
      diff != 0)
    return bad("its token does not match the pool's");
  s->meta_off = detail::load_u64(h + seg::meta_off);
  s->meta_len = detail::load_u64(h + seg::meta_len);
  s->arena_off = detail::load_u64(h + seg::arena_off);
  s->arena_len = detail::load_u64(h + seg::arena_len);
  const uint64_t size = detail::load_u64(h + seg::total);
  if (size > s->size || size % seg::kPage != 0 || s->meta_off != seg::header_bytes || s->meta_len > size ||
      s->meta_off + s->meta_len > size || s->arena_off < s->meta_off + s->meta_len || s->arena_len > size ||
      s->arena_off + s->arena_len > size || s->arena_off % seg::kPage != 0)
    return bad("the pool's header is inconsistent");
  s->pool_bytes = size;
  // The pool's own part stays mapped; the channels' blocks after it (the
  // memory grew by them) are mapped one by one, when used (channel()).
  if (s->size > size) {
    munmap(s->base + size, s->size - size);
    s->size = size_t(size);
  }
  if (objpool::Pool::attach(s->meta(), size_t(s->meta_len), s->arena(), size_t(s->arena_len), s->pool) != Status::ok ||
      !s->pool.process_shared())
    return bad("the pool metadata is invalid");
  std::memcpy(s->token, tok, sizeof tok);
  s->token_hex = token;
  s->me = claim_proc(s.get());
  if (s->me == 0) {
    *code = "ERR_OBJPOOL_NO_MEMORY";
    *message = "The pool has " + std::to_string(seg::kMaxProcs) + " processes attached: no room for another";
    return nullptr;
  }
  if (!start(s.get())) {
    *code = "ERR_OBJPOOL_NO_MEMORY";
    *message = "Cannot start the pool's watcher thread";
    return nullptr;
  }
  std::lock_guard<std::mutex> lock(segments_mutex());
  auto& slot = segments()[token];
  if (auto other = slot.lock()) return other;  // another thread attached meanwhile: use its mapping
  slot = s;
  return s;
}

namespace {

// The watcher: one thread per segment and process.
struct Peer {
  uint32_t pid = 0;
  uint64_t start = 0;  // the start time alive() compares with
  int pidfd = -1;      // -1: none (yet)
  bool dead = false;
  uint64_t entry_start = 0;  // the start time in the table entry
  bool entry_dead = false;   // the entry was seen Dead: seen Live again, it holds a new process
};

// Runs one recovery if this process can take the lock: true if it ran.
bool recover_dead(Segment* s, std::vector<Peer>& peers) {
  auto lock = at(s->word(seg::lock));
  // acquire: a previous recoverer's writes (the tables) before this one's.
  uint32_t holder = lock.load(std::memory_order_acquire);
  if (holder != 0 && holder != s->me) {
    // A recoverer that died holding the lock: take it over.
    if (holder > seg::kMaxProcs || !peers[holder - 1].dead) return false;
  }
  if (!lock.compare_exchange_strong(holder, s->me, std::memory_order_acquire)) return false;
  std::vector<bool> dead(seg::kMaxProcs, false);
  bool any = false;
  for (uint32_t i = 0; i < seg::kMaxProcs; ++i) {
    // acquire: pairs with claim_proc()'s release.
    const uint32_t st = at(s->proc_word(i, seg::p_state)).load(std::memory_order_acquire);
    if (i + 1 == s->me) continue;
    if (st == kProcDead || (st == kProcLive && peers[i].dead)) {
      uint32_t expect = kProcLive;
      if (st == kProcLive)
        at(s->proc_word(i, seg::p_state)).compare_exchange_strong(expect, kProcDead, std::memory_order_acq_rel);
      dead[i] = any = true;
    }
  }
  if (any) {
    objpool::Pool pool = s->pool;
    // Waits until no live view is inside the gap (`which`: v_gap for list
    // operations, v_cgap for channel calls) that it was in when this looked;
    // false when one stays inside it for `ms` (its thread stopped: SIGSTOP).
    const auto quiet = [&](size_t which, int ms) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
      for (uint32_t v = 0; v < seg::kMaxViews; ++v) {
        // acquire (both loads): see the states a view wrote in its gap (its gap_exit() is a release).
        const uint32_t owner = at(s->view_word(v, seg::v_owner)).load(std::memory_order_acquire);
        if (owner == 0 || owner > seg::kMaxProcs || dead[owner - 1]) continue;
        const uint32_t g = at(s->view_word(v, which)).load(std::memory_order_seq_cst);
        if ((g & 1u) == 0) continue;
        // Inside a list operation or channel call (a few hundred
        // nanoseconds, unless its thread is preempted): wait until it moves
        // on, the view goes, or its process dies (its gap is then a dead one).
        while (at(s->view_word(v, which)).load(std::memory_order_seq_cst) == g &&
               at(s->view_word(v, seg::v_owner)).load(std::memory_order_acquire) == owner) {
          // relaxed: a request to stop, nothing is published through it.
          if (s->stopping.load(std::memory_order_relaxed) || std::chrono::steady_clock::now() > deadline) return false;
          const uint32_t pid = peers[owner - 1].pid;
          if (owner != s->me && pid != 0 && !alive(int(pid), peers[owner - 1].start)) {
            dead[owner - 1] = true;
            break;
          }
          detail::pause_us(20);
        }
      }
      return true;
    };
    // The channels first: frozen (seq_cst: before the loads of the views'
    // channel gaps, the other half of ChanGap's pairing), then every live
    // channel call that began before finishes. Before the heads freeze: a
    // call that gives objects back to a closed pool pushes them.
    auto frozen = at(s->word(seg::chan_frozen));
    // First a look with nothing frozen (by this try): a view that stays in
    // one gap for 200 ms (a stopped process) makes this try give up before
    // anyone waits for it (each retry would otherwise hold every process's
    // calls for as long). Then frozen, the waits are short: only a view
    // stopped since can be slow.
    const bool calm = quiet(seg::v_cgap, 200) && quiet(seg::v_gap, 200);
    if (calm) frozen.store(1, std::memory_order_seq_cst);
    uint32_t repaired[seg::kMaxChannels] = {};
    const auto channels = [&](std::vector<uint8_t>& in_channel) {
      for (uint32_t i = 0; i < seg::kMaxChannels; ++i) {
        // acquire: pairs with create_channel()'s release. A channel being
        // made holds nothing yet.
        if (at(s->chan_word(i, seg::c_state)).load(std::memory_order_acquire) != kChanLive) continue;
        objpool::Channel ch;
        // A live channel that cannot be looked at (no memory to map it,
        // a forged entry) may hold objects: then no InFlight object comes back.
        if (!s->channel(i, ch)) return false;
        repaired[i] = ch.recover_cells(pool.capacity(), in_channel);
      }
      return true;
    };
    // Given up (here or in pool.recover()): heads and channels thaw with
    // nothing taken back, those a recoverer that died left frozen included.
    const bool go = calm && quiet(seg::v_cgap, 50);
    auto r = pool.recover([&](uint32_t owner) { return dead[owner - 1]; }, [&] { return go && quiet(seg::v_gap, 50); },
                          channels);
    // A closed pool whose close() stopped at a cell a dead send had claimed:
    // what sits behind it (now a hole) goes back here, as nobody else will
    // give it back (sends are refused). Still frozen: no call races with it.
    if (!r.aborted && pool.is_closed())
      for (uint32_t i = 0; i < seg::kMaxChannels; ++i) {
        objpool::Channel ch;
        if (repaired[i] > 0 && s->channel(i, ch) && ch.close_for_pool(pool, [](uint32_t) {}) > 0) r.drain = true;
      }
    if (!r.aborted) {
      uint64_t cells = 0;
      for (uint32_t n : repaired) cells += n;
      // relaxed: counts, read by stats().
      atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(s->base + seg::chan_repaired))
          .fetch_add(cells, std::memory_order_relaxed);
      atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(s->base + seg::chan_recovered))
          .fetch_add(r.in_flight, std::memory_order_relaxed);
    }
    // release: the thaw publishes the repaired cells (a call acquires it).
    frozen.store(0, std::memory_order_release);
    for (uint32_t i = 0; i < seg::kMaxChannels; ++i) {
      objpool::Channel ch;
      // Receivers that waited behind a cell that is a hole now look again;
      // every channel with waiters, not only those repaired here: a
      // recoverer that died between its thaw and its wakes left them asleep.
      if (at(s->chan_word(i, seg::c_state)).load(std::memory_order_acquire) == kChanLive && s->channel(i, ch) &&
          (repaired[i] > 0 || ch.waiters() > 0))
        ch.wake_waiters();
    }
    // Given up: the entries stay as they are, for the next try (this
    // watcher's, or another's once the lock is free).
    for (uint32_t i = 0; i < seg::kMaxProcs && !r.aborted; ++i) {
      if (!dead[i]) continue;
      // The dead process's share of the cache budget, and its view records.
      // relaxed: counters and records nobody else writes any more.
      pool.release_cache(at(s->proc_word(i, seg::p_budget)).exchange(0, std::memory_order_relaxed));
      for (uint32_t v = 0; v < seg::kMaxViews; ++v) {
        uint32_t expect = i + 1;
        at(s->view_word(v, seg::v_owner)).compare_exchange_strong(expect, 0, std::memory_order_relaxed);
      }
      if (peers[i].pidfd >= 0) close(peers[i].pidfd);
      peers[i] = Peer{};
      // release: the entry is free for a new process after this recovery's writes.
      at(s->proc_word(i, seg::p_state)).store(kProcFree, std::memory_order_release);
    }
    if (r.drain) request_drain(nullptr, s->meta());
  }
  // release: the next recoverer sees what this one did.
  lock.store(0, std::memory_order_release);
  return any;
}

void watch(Segment* s) {
  std::vector<Peer> peers(seg::kMaxProcs);
  bool saw_closed = false;
  while (!s->stopping.load(std::memory_order_acquire)) {
    std::vector<pollfd> fds;
    std::vector<uint32_t> which;
    fds.push_back({s->stop_pipe[0], POLLIN, 0});
    which.push_back(0);
    bool dead_seen = false;
    for (uint32_t i = 0; i < seg::kMaxProcs; ++i) {
      if (i + 1 == s->me) continue;
      // acquire: pairs with claim_proc()'s release (the PID and start time).
      const uint32_t st = at(s->proc_word(i, seg::p_state)).load(std::memory_order_acquire);
      Peer& p = peers[i];
      if (st == kProcDead) dead_seen = p.dead = p.entry_dead = true;
      if (st != kProcLive) {
        // Free (recovered by another watcher) or being claimed: forget the
        // process that had it, so that one attaching there (the same PID
        // and start time included, a process that let go and came back) is
        // a new peer, not a dead one.
        if (st != kProcDead && p.pid != 0) {
          if (p.pidfd >= 0) close(p.pidfd);
          p = Peer{};
        }
        continue;
      }
      const uint32_t pid = at(s->proc_word(i, seg::p_pid)).load(std::memory_order_relaxed);
      const uint64_t start = atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(s->proc_word(i, seg::p_start)))
                                 .load(std::memory_order_relaxed);
      if (p.pid != pid || p.entry_start != start || p.entry_dead) {  // a new process in this entry
        if (p.pidfd >= 0) close(p.pidfd);
        p = Peer{pid, start, -1, false, start};
        // A start time of 0: the process could not read its own. Then the start time this
        // watcher reads first stands for it (a PID reused within the first
        // look, 100 ms at most, would go unseen).
        uint64_t seen = 0;
        char st_letter;
        if (start == 0 && proc_stat(int(pid), &seen, &st_letter)) p.start = seen;
        // A pidfd, then the start time again: the pidfd then names the very
        // process of the entry, not a later one that got its PID.
        p.pidfd = int(syscall(SYS_pidfd_open, pid_t(pid), 0));
        if (!alive(int(pid), p.start)) p.dead = true;
      }
      if (p.dead) {
        dead_seen = true;
        continue;
      }
      if (p.pidfd >= 0) {
        fds.push_back({p.pidfd, POLLIN, 0});
        which.push_back(i + 1);
      }
    }
    if (dead_seen) recover_dead(s, peers);
    // Without pidfds (Linux before 5.3), and for what pidfds do not tell
    // (a new process, a close), the table is looked at every 100 ms.
    const int ready = poll(fds.data(), nfds_t(fds.size()), 100);
    const bool closed = s->pool.is_closed();
    if (ready > 0) {
      for (size_t k = 1; k < fds.size(); ++k)
        if (fds[k].revents != 0) peers[which[k] - 1].dead = true;
    }
    for (uint32_t i = 0; i < seg::kMaxProcs; ++i) {
      Peer& p = peers[i];
      // Every tick, pidfd or not: a pidfd that never turns readable (as
      // under qemu-user) must not hide a death for good.
      if (p.pid != 0 && !p.dead && !alive(int(p.pid), p.start)) p.dead = true;
    }
    // A close by another process: this process's views give back what
    // they cache (the closer's close() finds what comes back by its poll).
    if (closed && !saw_closed) {
      saw_closed = true;
      flush_all(s->meta());
    }
  }
  for (Peer& p : peers)
    if (p.pidfd >= 0) close(p.pidfd);
}

}  // namespace

#else  // !OBJPOOL_PROCESS_SHARED

std::shared_ptr<Segment> create_segment(const objpool::Config&, std::string* code, std::string* message) {
  *code = "ERR_OBJPOOL_UNSUPPORTED";
  *message = "Process-shared pools are not available on this platform yet (Linux only)";
  return nullptr;
}
std::shared_ptr<Segment> attach_segment(double, double, const std::string&, std::string* code, std::string* message) {
  *code = "ERR_OBJPOOL_UNSUPPORTED";
  *message = "Process-shared pools are not available on this platform yet (Linux only)";
  return nullptr;
}

#endif

// processCreate(capacity, slots, objectSize, stride, align, zero): a new
// process-shared pool's segment, formatted: { segment, meta, arena, pid, fd, token }.
Napi::Value ProcessCreate(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  objpool::Config c;
  if (!get_shape_args(env, info, 0, c)) return Napi::Value();
  c.checked = true;
  c.zero = info[5].ToBoolean();
  c.process = true;
  if (!objpool::valid_config(c)) {
    napi_throw_range_error(env, "ERR_INVALID_ARG_VALUE", "The pool shape is invalid");
    return Napi::Value();
  }
  std::string code, message;
  auto s = create_segment(c, &code, &message);
  if (s == nullptr) {
    napi_throw_error(env, code.c_str(), message.c_str());
    return Napi::Value();
  }
  return describe(env, s);
}

// processAttach(pid, fd, token): the segment of a process descriptor, mapped.
Napi::Value ProcessAttach(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  double pid = 0, fd = -1;
  if (napi_get_value_double(env, info[0], &pid) != napi_ok || napi_get_value_double(env, info[1], &fd) != napi_ok ||
      !info[2].IsString()) {
    napi_throw_error(env, "ERR_OBJPOOL_BAD_DESCRIPTOR", "Invalid process descriptor: pid, fd or token missing");
    return Napi::Value();
  }
  std::string code, message;
  auto s = attach_segment(pid, fd, info[2].As<Napi::String>().Utf8Value(), &code, &message);
  if (s == nullptr) {
    napi_throw_error(env, code.c_str(), message.c_str());
    return Napi::Value();
  }
  return describe(env, s);
}

Napi::Value ProcessSupported(const Napi::CallbackInfo& info) {
#if defined(OBJPOOL_PROCESS_SHARED)
  return Napi::Boolean::New(info.Env(), true);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

}  // namespace objpool::binding
