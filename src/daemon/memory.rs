//! Keeping the daemon's resident memory near what it uses.
//!
//! glibc's malloc gives each thread that allocates concurrently an arena of
//! its own (up to 8 per core) and keeps freed memory in them. With tokio's
//! workers, its blocking pool and sled's eight IO threads, a 100,000
//! recipient send left about 40 MB freed but resident (BENCHMARKS.md). Two
//! arenas and a periodic `malloc_trim` hand it back. Other platforms and
//! allocators are left alone.

use std::time::Duration;

/// How often the daemon returns freed memory to the kernel.
pub const TRIM_EVERY: Duration = Duration::from_millis(250);

/// Caps glibc's malloc arenas at two. Call before any thread is started.
pub fn bound_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called first thing
    // in main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns freed heap memory to the kernel.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the arena locks itself; it has no
    // preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Trims every `every` until `shutdown` turns true.
pub async fn trim_every(every: Duration, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => trim(),
            _ = shutdown.changed() => return,
        }
    }
}
