//! The store's group commit, and the half of it that speaks to the file
//! system: what sled flushed is made to survive a power cut.
//!
//! Part of `store` (which alone names sled and alone uses this module): the
//! store hands in sled's flush as a closure.
//!
//! sled 0.34.7's `Db::flush` writes its log to `db` with `pwrite` and ends
//! in `sync_file_range(WAIT_BEFORE|WRITE|WAIT_AFTER)`: the pages go to the
//! device, but not the file's metadata (its new length) and not the
//! device's volatile write cache. A real `fsync` comes only from sled's
//! flusher thread, every 500 ms. Blob files (`blobs/<lsn>`, values and tree
//! nodes too big for a log slot) get no sync at all, and no directory is
//! ever synced after sled creates a file in it (`conf`, `db`, a blob, a
//! snapshot `snap.<lsn>` renamed into place). So after each flush,
//! [`Durable`] does, in this order:
//!
//! 1. every file in `blobs/` that is new or has grown since the last
//!    commit: `open` + `fdatasync` (a blob is written once; its handle is
//!    not kept), then, if one was new, `fsync` of `blobs/`;
//! 2. `fdatasync` of `db`, on a handle kept open from the start.
//!
//! Blobs go first so that no log record on disk points to a blob that is
//! not. Step 1 lists `blobs/` only when something happened in it since
//! the last listing: an inotify watch on it (set up before the first
//! listing) reports every file created, written, renamed or removed
//! there, and its events are read before each listing, so one that comes
//! during a listing makes the next commit list again. A watch that could
//! not be set up, or that the kernel dropped or let overflow, means a
//! listing at every commit, as without it. Most commits make no blob:
//! sled writes one only for a value or node too big for a log slot. Opening (after sled's open) syncs `conf`, `db`, every blob,
//! `blobs/`, the store directory and its parent, since sled syncs none of
//! them when it creates them. sled 0.34.7 writes a snapshot only while it
//! opens (`read_snapshot_or_default` in `PageCache::start`), so the store
//! directory gains no name after that and is not read at each commit.
//!
//! A failed sync is kept: after a failed `fsync` the kernel may have dropped
//! the dirty pages, and a later `fsync` would succeed without them. So every
//! later commit fails too, and only a fresh open (a restart) recovers.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::store::error::{Result, StoreError};

/// Counters for `/metrics` and the benchmarks: what the group commits cost
/// and how many callers each one served.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CommitStats {
    /// Group commits run (one sled flush plus the syncs above each).
    pub commits: u64,
    /// Calls to `Store::sync` that had an unsynced write to wait for; each
    /// was answered by one of the commits.
    pub callers: u64,
    /// Store writes the commits covered.
    pub writes: u64,
    /// Time in sled's flush, and in the syncs after it, summed.
    pub flush_seconds: f64,
    pub fsync_seconds: f64,
}

/// Group commit over a flush that ends in `fdatasync`: writers that arrive
/// while one commit runs share the next.
pub(crate) struct Durable {
    files: Files,
    /// Writes applied so far (counted under the store's writer lock).
    written: AtomicU64,
    /// Writes covered by the last commit that succeeded; held while one runs.
    flushed: tokio::sync::Mutex<u64>,
    /// The same number, readable without waiting for a commit.
    flushed_now: AtomicU64,
    commits: AtomicU64,
    callers: AtomicU64,
    covered: AtomicU64,
    flush_ns: AtomicU64,
    fsync_ns: AtomicU64,
}

impl Durable {
    /// Opens the handles it keeps and makes what sled created at open
    /// durable. Call after sled opened `dir`.
    pub(crate) fn open(dir: &Path) -> Result<Arc<Durable>> {
        let files = Files::open(dir).map_err(|e| StoreError::Open {
            path: dir.display().to_string(),
            source: Box::new(StoreError::io(e)),
        })?;
        Ok(Arc::new(Durable {
            files,
            written: AtomicU64::new(0),
            flushed: tokio::sync::Mutex::new(0),
            flushed_now: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            callers: AtomicU64::new(0),
            covered: AtomicU64::new(0),
            flush_ns: AtomicU64::new(0),
            fsync_ns: AtomicU64::new(0),
        }))
    }

    /// Counts one applied write. Call under the store's writer lock, after
    /// the write is visible, so a reader that saw it gets a later ticket.
    pub(crate) fn wrote(&self) {
        self.written.fetch_add(1, Ordering::SeqCst);
    }

    /// The ticket for a sync: read it under the store's writer lock.
    pub(crate) fn ticket(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    /// Returns once every write counted up to `ticket` is on the disk: it
    /// waits for the commit in progress, and if that did not cover `ticket`,
    /// runs the next one (`flush`, then the syncs) for every write counted
    /// by then. So concurrent callers share one flush and one `fdatasync`.
    pub(crate) async fn sync(
        self: &Arc<Self>,
        ticket: u64,
        flush: impl FnOnce() -> Result<()> + Send + 'static,
    ) -> Result<()> {
        if ticket <= self.flushed_now.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.callers.fetch_add(1, Ordering::Relaxed);
        let mut flushed = self.flushed.lock().await;
        if *flushed >= ticket {
            return Ok(());
        }
        let upto = self.written.load(Ordering::SeqCst);
        let me = self.clone();
        let (flush_us, fsync_us) = tokio::task::spawn_blocking(move || me.run(flush))
            .await
            .map_err(|e| StoreError::Failed(format!("the flush task failed: {e}")))??;
        self.covered.fetch_add(upto - *flushed, Ordering::Relaxed);
        tracing::debug!(writes = upto - *flushed, flush_us, fsync_us, "group commit");
        *flushed = upto;
        self.flushed_now.store(upto, Ordering::SeqCst);
        Ok(())
    }

    /// One flush and the syncs after it, on this thread: for callers outside
    /// the runtime, and for the store's own bulk work (restore, recount).
    pub(crate) fn commit(&self, flush: impl FnOnce() -> Result<()>) -> Result<()> {
        self.run(flush).map(drop)
    }

    /// A commit; returns the microseconds in the flush and in the syncs.
    fn run(&self, flush: impl FnOnce() -> Result<()>) -> Result<(u64, u64)> {
        let t0 = Instant::now();
        flush()?;
        let t1 = Instant::now();
        self.files.sync().map_err(StoreError::io)?;
        let t2 = Instant::now();
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.flush_ns.fetch_add(nanos(t1 - t0), Ordering::Relaxed);
        self.fsync_ns.fetch_add(nanos(t2 - t1), Ordering::Relaxed);
        Ok((nanos(t1 - t0) / 1000, nanos(t2 - t1) / 1000))
    }

    pub(crate) fn stats(&self) -> CommitStats {
        CommitStats {
            commits: self.commits.load(Ordering::Relaxed),
            callers: self.callers.load(Ordering::Relaxed),
            writes: self.covered.load(Ordering::Relaxed),
            flush_seconds: self.flush_ns.load(Ordering::Relaxed) as f64 / 1e9,
            fsync_seconds: self.fsync_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The files sled writes, and what of them is known to be on the disk.
struct Files {
    /// `db`, sled's log, opened read-only (`fdatasync` needs no more).
    db: File,
    /// `blobs/`, by path (to list it) and open (to sync it).
    blobs: PathBuf,
    blobs_handle: File,
    seen: Mutex<Seen>,
}

struct Seen {
    /// Blob name → the length that was synced.
    blobs: HashMap<OsString, u64>,
    /// Changes in `blobs/` since the last listing; None: list every time.
    watch: Option<Watch>,
    /// No listing yet (the first commit lists whatever the watch says).
    unlisted: bool,
    /// Listings of `blobs/` so far (for the tests).
    listings: u64,
    /// The first sync error; every later sync returns it.
    failed: Option<String>,
}

impl Files {
    fn open(dir: &Path) -> std::io::Result<Files> {
        let db = File::open(dir.join("db"))?;
        let blobs = dir.join("blobs");
        let blobs_handle = File::open(&blobs)?;
        let files = Files {
            db,
            blobs: blobs.clone(),
            blobs_handle,
            seen: Mutex::new(Seen {
                blobs: HashMap::new(),
                watch: Watch::new(&blobs),
                unlisted: true,
                listings: 0,
                failed: None,
            }),
        };
        File::open(dir.join("conf"))?.sync_data()?;
        files.sync()?;
        // What sled created at open, and the store directory itself.
        files.blobs_handle.sync_all()?;
        File::open(dir)?.sync_all()?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent)?.sync_all()?;
        }
        Ok(files)
    }

    fn sync(&self) -> std::io::Result<()> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = &seen.failed {
            return Err(std::io::Error::other(format!(
                "an earlier sync failed ({e}); reopen the store"
            )));
        }
        let result = self.sync_all(&mut seen);
        if let Err(e) = &result {
            seen.failed = Some(e.to_string());
        }
        result
    }

    fn sync_all(&self, seen: &mut Seen) -> std::io::Result<()> {
        // 1. Blobs: new or grown ones (one still being written is synced
        //    again at the next commit, when it has grown), if anything
        //    happened in `blobs/` since the last listing.
        let quiet = match seen.watch.as_ref().map(Watch::drain) {
            Some(Drained::Quiet) => true,
            Some(Drained::Events) => false,
            Some(Drained::Lost) | None => {
                seen.watch = None;
                false
            }
        };
        if quiet && !seen.unlisted {
            return self.db.sync_data();
        }
        seen.unlisted = false;
        seen.listings += 1;
        let mut present = HashSet::new();
        let mut new_name = false;
        for entry in std::fs::read_dir(&self.blobs)? {
            let entry = entry?;
            let name = entry.file_name();
            let len = match entry.metadata() {
                Ok(m) => m.len(),
                // sled removed it meanwhile (blob GC).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            present.insert(name.clone());
            let synced = seen.blobs.get(&name).copied();
            if synced == Some(len) {
                continue;
            }
            match File::open(entry.path()) {
                Ok(f) => f.sync_data()?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
            new_name |= synced.is_none();
            seen.blobs.insert(name, len);
        }
        seen.blobs.retain(|name, _| present.contains(name));
        if new_name {
            self.blobs_handle.sync_all()?;
        }
        // 2. The log.
        self.db.sync_data()
    }
}

/// An inotify watch on `blobs/`: whether anything happened there.
struct Watch {
    fd: std::os::fd::OwnedFd,
}

/// What reading a watch's events found.
enum Drained {
    /// Nothing since the last read.
    Quiet,
    /// Something happened (or may have: the queue overflowed).
    Events,
    /// The watch is gone (its directory removed or moved, or a read
    /// failed): list every time from now on.
    Lost,
}

impl Watch {
    /// Every change to a file in `dir`, or to `dir` itself.
    const MASK: u32 = libc::IN_CREATE
        | libc::IN_MODIFY
        | libc::IN_CLOSE_WRITE
        | libc::IN_ATTRIB
        | libc::IN_DELETE
        | libc::IN_MOVED_FROM
        | libc::IN_MOVED_TO
        | libc::IN_DELETE_SELF
        | libc::IN_MOVE_SELF;

    /// None when the kernel refuses one (`max_user_watches`, say).
    fn new(dir: &Path) -> Option<Watch> {
        use std::os::fd::{FromRawFd, OwnedFd};
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        // SAFETY: plain system calls; the descriptor is owned from here on.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` is open and ours.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        use std::os::fd::AsRawFd;
        // SAFETY: `path` is a NUL-terminated string that outlives the call.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), Self::MASK) };
        (wd >= 0).then_some(Watch { fd })
    }

    /// Reads every event queued so far.
    fn drain(&self) -> Drained {
        use std::os::fd::AsRawFd;
        /// Room for many events at once (each is 16 bytes and a name).
        const BUF: usize = 4096;
        let mut buf = [0u8; BUF];
        let mut found = Drained::Quiet;
        loop {
            // SAFETY: `buf` is writable for `BUF` bytes.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), BUF) };
            if n < 0 {
                return match std::io::Error::last_os_error().kind() {
                    std::io::ErrorKind::WouldBlock => found,
                    std::io::ErrorKind::Interrupted => continue,
                    _ => Drained::Lost,
                };
            }
            let n = n as usize;
            if n == 0 {
                return Drained::Lost;
            }
            // struct inotify_event: wd, mask, cookie, len, then `len`
            // bytes of name.
            let mut at = 0;
            while at + 16 <= n {
                let word = |i: usize| {
                    u32::from_ne_bytes(buf[at + i..at + i + 4].try_into().unwrap_or_default())
                };
                let (mask, len) = (word(4), word(12) as usize);
                if mask & (libc::IN_IGNORED | libc::IN_DELETE_SELF | libc::IN_MOVE_SELF) != 0 {
                    return Drained::Lost;
                }
                at += 16 + len;
            }
            found = Drained::Events;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("blobs")).unwrap();
        std::fs::write(dir.path().join("db"), b"log").unwrap();
        std::fs::write(dir.path().join("conf"), b"conf").unwrap();
        dir
    }

    #[test]
    fn new_and_grown_blobs_are_synced_and_removed_ones_forgotten() {
        let dir = store_dir();
        let files = Files::open(dir.path()).unwrap();
        let blob = dir.path().join("blobs").join("7");
        std::fs::write(&blob, b"half").unwrap();
        files.sync().unwrap();
        assert_eq!(files.seen.lock().unwrap().blobs[&OsString::from("7")], 4);
        std::fs::write(&blob, b"the whole").unwrap();
        files.sync().unwrap();
        assert_eq!(files.seen.lock().unwrap().blobs[&OsString::from("7")], 9);
        std::fs::remove_file(&blob).unwrap();
        files.sync().unwrap();
        assert!(files.seen.lock().unwrap().blobs.is_empty());
    }

    #[test]
    fn blobs_are_listed_only_after_something_happened_there() {
        let dir = store_dir();
        let files = Files::open(dir.path()).unwrap();
        let listings = || files.seen.lock().unwrap().listings;
        assert!(files.seen.lock().unwrap().watch.is_some());
        let first = listings();
        assert_eq!(first, 1, "opening lists once");
        files.sync().unwrap();
        files.sync().unwrap();
        assert_eq!(listings(), first, "nothing happened in blobs/");
        // A blob made between commits is found by the next one.
        let blob = dir.path().join("blobs").join("9");
        std::fs::write(&blob, b"new").unwrap();
        files.sync().unwrap();
        assert_eq!(listings(), first + 1);
        assert_eq!(files.seen.lock().unwrap().blobs[&OsString::from("9")], 3);
        // Written to in place, it is synced again at its new length.
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&blob)
            .unwrap()
            .write_all(b"er")
            .unwrap();
        files.sync().unwrap();
        assert_eq!(files.seen.lock().unwrap().blobs[&OsString::from("9")], 5);
        files.sync().unwrap();
        assert_eq!(listings(), first + 2);
        // A lost watch means a listing at every commit.
        files.seen.lock().unwrap().watch = None;
        files.sync().unwrap();
        files.sync().unwrap();
        assert_eq!(listings(), first + 4);
    }

    #[tokio::test]
    async fn concurrent_callers_share_a_commit_and_a_failure_sticks() {
        let dir = store_dir();
        let durable = Durable::open(dir.path()).unwrap();
        for _ in 0..3 {
            durable.wrote();
        }
        let ticket = durable.ticket();
        let (a, b) = tokio::join!(
            durable.sync(ticket, || Ok(())),
            durable.sync(ticket, || Ok(()))
        );
        a.unwrap();
        b.unwrap();
        let s = durable.stats();
        assert_eq!((s.commits, s.writes), (1, 3));
        // Nothing new written: no commit at all.
        durable.sync(durable.ticket(), || Ok(())).await.unwrap();
        assert_eq!(durable.stats().commits, 1);
        // A failed sync fails every later one.
        durable.files.seen.lock().unwrap().failed = Some("EIO".into());
        durable.wrote();
        assert!(durable.sync(durable.ticket(), || Ok(())).await.is_err());
        durable.wrote();
        assert!(durable.sync(durable.ticket(), || Ok(())).await.is_err());
    }
}
