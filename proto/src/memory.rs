//! Allocator settings shared by the daemon and the shim: one malloc arena
//! for the few threads of a stdio session, and the pages freed after a
//! big answer given back to the kernel (docs/benchmarks.md, "The stdio
//! shim's memory" and the fleet section). glibc only; elsewhere these do
//! nothing.

/// Makes every thread allocate from the main arena. Call first in `main`,
/// before any thread starts: a thread arena keeps ~1 MiB resident after a
/// burst of work on that thread.
pub fn one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code, reason = "glibc's mallopt has no safe wrapper")]
    // SAFETY: mallopt only sets an allocator parameter; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Gives the pages `free` kept back to the kernel.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code, reason = "glibc's malloc_trim has no safe wrapper")]
    // SAFETY: malloc_trim takes a byte count, touches only the allocator's
    // free lists and is thread-safe; it cannot invalidate a live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}
