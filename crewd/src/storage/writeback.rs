//! Background writeback of the store file.
//!
//! Between checkpoints, commits made durable by the journal leave redb's
//! pages in the operating system's cache, unwritten. The checkpoint (a
//! durable redb commit, on the engine's thread) writes all of them back
//! before it returns: tens of milliseconds under load, during which no
//! result is applied and no call leaves. When asked for
//! ([`super::StoreConfig::writeback_every`]), a thread of its own syncs the
//! file that often while commits arrive, so the checkpoint finds little
//! left to write. The price: the journal's syncs share the disk with it,
//! and are slower meanwhile.
//!
//! It is safe at any instant: the kernel may write any dirty page back at
//! any time, and redb's commits are built to survive that. An error seen
//! here is not lost to redb either: every open file sees a write error
//! that happened after it was opened, so redb's own sync reports it too.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The writeback thread; dropping this stops it.
pub(super) struct Writeback {
    /// Set by every write transaction; the thread syncs only when set, so
    /// an idle daemon does not touch the disk.
    written: Arc<AtomicBool>,
    /// Dropped to stop the thread.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Writeback {
    /// Starts syncing the file at `path` every `every` while
    /// [`Writeback::note_write`] is called. `None` (logged) when the file
    /// cannot be opened or the thread cannot start: checkpoints then write
    /// everything back themselves, as they always may.
    pub(super) fn start(path: &Path, every: Duration) -> Option<Writeback> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(path = %path.display(), "no background writeback: {e}");
                return None;
            }
        };
        let written = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = mpsc::channel::<()>();
        let flag = written.clone();
        let spawned = std::thread::Builder::new()
            .name("crew-writeback".into())
            .spawn(move || {
                // Ends when the sender is dropped.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    if flag.swap(false, Ordering::Relaxed) {
                        if let Err(e) = file.sync_data() {
                            tracing::debug!("background writeback failed: {e}");
                        }
                    }
                }
            });
        match spawned {
            Ok(thread) => Some(Writeback {
                written,
                stop: Some(stop),
                thread: Some(thread),
            }),
            Err(e) => {
                tracing::warn!("no background writeback: {e}");
                None
            }
        }
    }

    /// Records that a write transaction began: its pages may need writing.
    pub(super) fn note_write(&self) {
        self.written.store(true, Ordering::Relaxed);
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The thread takes a noted write (and syncs), and stops when dropped,
    /// promptly, even with a long interval.
    #[test]
    fn takes_noted_writes_and_stops_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        std::fs::write(&path, b"pages").unwrap();
        let wb = Writeback::start(&path, Duration::from_millis(5)).unwrap();
        wb.note_write();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while wb.written.load(Ordering::Relaxed) {
            assert!(std::time::Instant::now() < deadline, "never synced");
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(wb);

        let slow = Writeback::start(&path, Duration::from_secs(3600)).unwrap();
        let t0 = std::time::Instant::now();
        drop(slow);
        assert!(t0.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_missing_file_means_no_writeback() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Writeback::start(&dir.path().join("missing"), Duration::from_millis(1)).is_none());
    }
}
