// Compiled into the portable build only (npm run build:prebuild), which links
// libstdc++ statically so that the prebuilt addon needs no particular
// libstdc++. What that build must not do instead is import a glibc symbol at
// a version newer than the baseline (GLIBC 2.28, checked by
// test/package/symbols.js). Linking against a new glibc (Debian 12: 2.36)
// picks each symbol's newest version; this file steers the few that
// libstdc++.a needs back to versions every glibc has. When the check names
// another symbol, it goes here too.
#include <pthread.h>

extern "C" {

// libstdc++.a reads __libc_single_threaded (GLIBC_2.32) to skip atomic
// reference counts in single-threaded processes. This private copy binds
// those reads inside the addon; 0 ("other threads may exist") keeps every
// atomic operation, which is always correct.
__attribute__((visibility("hidden"))) char __libc_single_threaded = 0;

// std::thread (libstdc++.a's thread.o) calls pthread_create and pthread_join,
// whose default versions are GLIBC_2.34 (when libpthread moved into libc).
// The link wraps them (-Wl,--wrap=...) and these wrappers call the versions
// every glibc of the architecture exports (libpthread.so.0 before 2.34,
// libc.so.6 after): the architecture's first glibc symbol version, 2.2.5 on
// x86-64 and 2.17 on aarch64.
#if defined(__GLIBC__) && (defined(__x86_64__) || defined(__aarch64__))
#if defined(__x86_64__)
#define OBJPOOL_GLIBC_BASE "GLIBC_2.2.5"
#else
#define OBJPOOL_GLIBC_BASE "GLIBC_2.17"
#endif
int objpool_pthread_create_v1(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
int objpool_pthread_join_v1(pthread_t, void**);
__asm__(".symver objpool_pthread_create_v1, pthread_create@" OBJPOOL_GLIBC_BASE);
__asm__(".symver objpool_pthread_join_v1, pthread_join@" OBJPOOL_GLIBC_BASE);
#define OBJPOOL_PTHREAD_CREATE objpool_pthread_create_v1
#define OBJPOOL_PTHREAD_JOIN objpool_pthread_join_v1
#else
int __real_pthread_create(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
int __real_pthread_join(pthread_t, void**);
#define OBJPOOL_PTHREAD_CREATE __real_pthread_create
#define OBJPOOL_PTHREAD_JOIN __real_pthread_join
#endif

__attribute__((visibility("hidden"))) int __wrap_pthread_create(pthread_t* thread, const pthread_attr_t* attr,
                                                                void* (*start)(void*), void* arg) {
  return OBJPOOL_PTHREAD_CREATE(thread, attr, start, arg);
}

__attribute__((visibility("hidden"))) int __wrap_pthread_join(pthread_t thread, void** result) {
  return OBJPOOL_PTHREAD_JOIN(thread, result);
}

}  // extern "C"
