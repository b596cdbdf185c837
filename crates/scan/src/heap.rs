//! How the C allocator returns a scan's large buffers.
//!
//! glibc serves an allocation of at least its *mmap threshold* with a mapping
//! of its own, unmapped on free. The threshold starts at 128 KiB but rises to
//! the size of the largest such block freed (up to 32 MiB): after one 16 MiB
//! archive member, every buffer below 16 MiB comes from the heap arenas, and
//! what a scan frees there mostly stays resident, fragmented across the
//! threads' arenas. On aetherd scanning 1.2 GB of mixed files on two
//! threads, a fixed threshold took the peak resident memory from 180 to
//! 140 MiB, and what stayed resident after the scans from 150 to 100 MiB.

/// The threshold set: large enough that per-file buffers the scanner keeps
/// (its 1 MiB window lives as long as the thread) are not affected, and that
/// the many small-to-medium buffers of a file are not each a system call.
pub const MMAP_THRESHOLD: usize = 256 << 10;

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD`], unless the
/// environment sets it (`MALLOC_MMAP_THRESHOLD_`). Call once, at the start of
/// a program that scans; elsewhere (another C library) it does nothing.
pub fn return_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only sets a tunable of the allocator; it is called
        // before the program's threads start.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
        }
    }
}
