// Compiled into the portable build only (npm run build:prebuild), which links
// libstdc++ statically. Debian 12's libstdc++.a reads glibc's
// __libc_single_threaded (GLIBC_2.32) to skip atomic reference counts in
// single-threaded processes; that one import would make the prebuilt addon
// refuse to load on older glibc. This private copy binds those reads inside
// the addon instead. Its value, 0 ("other threads may exist"), keeps every
// atomic operation, which is always correct.
extern "C" {
__attribute__((visibility("hidden"))) char __libc_single_threaded = 0;
}
