//! Background writeback of the store file.
//!
//! Between checkpoints, commits made durable by the journal leave redb's
//! pages in the operating system's cache, unwritten. The checkpoint (a
//! durable redb commit, on the engine's thread) writes all of them back
//! before it returns: tens of milliseconds under load, during which no
//! result is applied and no call leaves. Unless turned off
//! ([`super::StoreConfig::writeback_every`]), a thread of its own looks
//! that often at how much the journal grew, and syncs the file once
//! [`WRITEBACK_AFTER`] more were journaled since it last did: under load the
//! checkpoint finds little left to write. Small commits (a chain, a short
//! DAG) do not get there, so their journal syncs, which share the disk with
//! the writeback, are not slowed.
//!
//! It is safe at any instant: the kernel may write any dirty page back at
//! any time, and redb's commits are built to survive that. An error seen
//! here is not lost to redb either: every open file sees a write error
//! that happened after it was opened, so redb's own sync reports it too.

use std::fs::File;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Journal bytes written since the last writeback that call for the next
/// one: a burst's worth, not a short DAG's.
pub const WRITEBACK_AFTER: u64 = 4 * 1024 * 1024;

/// The writeback thread; dropping this stops it.
pub(super) struct Writeback {
    /// Dropped to stop the thread.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Writeback {
    /// Starts looking, every `every`, at `journaled()` (the bytes appended
    /// to the journal since it was opened), and syncing the file at `path`
    /// when they grew by [`WRITEBACK_AFTER`]. `None` (logged) when the file cannot be
    /// opened or the thread cannot start: checkpoints then write everything
    /// back themselves, as they always may.
    pub(super) fn start(
        path: &Path,
        every: Duration,
        journaled: impl Fn() -> u64 + Send + 'static,
    ) -> Option<Writeback> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(path = %path.display(), "no background writeback: {e}");
                return None;
            }
        };
        let (stop, stopped) = mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("crew-writeback".into())
            .spawn(move || {
                let mut synced_at = 0;
                // Ends when the sender is dropped.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    if due(journaled(), &mut synced_at) {
                        if let Err(e) = file.sync_data() {
                            tracing::debug!("background writeback failed: {e}");
                        }
                    }
                }
            });
        match spawned {
            Ok(thread) => Some(Writeback {
                stop: Some(stop),
                thread: Some(thread),
            }),
            Err(e) => {
                tracing::warn!("no background writeback: {e}");
                None
            }
        }
    }
}

/// Whether the journal, `appended` bytes since it was opened, grew by
/// [`WRITEBACK_AFTER`] since the last writeback (at `synced_at`, which
/// this moves). Fewer bytes mean the journal was opened again (the store
/// reopened after a failure): counting starts over.
fn due(appended: u64, synced_at: &mut u64) -> bool {
    if appended < *synced_at {
        *synced_at = 0;
    }
    if appended - *synced_at >= WRITEBACK_AFTER {
        *synced_at = appended;
        return true;
    }
    false
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
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn syncs_each_time_the_journal_grew_enough() {
        let mut at = 0;
        assert!(!due(0, &mut at));
        assert!(!due(WRITEBACK_AFTER - 1, &mut at));
        assert!(due(WRITEBACK_AFTER, &mut at));
        assert!(!due(WRITEBACK_AFTER + 10, &mut at), "just synced");
        assert!(due(2 * WRITEBACK_AFTER + 10, &mut at));
        // The journal opened again: counting starts over.
        assert!(!due(1, &mut at));
        assert!(due(WRITEBACK_AFTER, &mut at));
    }

    /// The thread looks at the journal while it runs, and stops when
    /// dropped, promptly, even with a long interval.
    #[test]
    fn looks_at_the_journal_and_stops_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        std::fs::write(&path, b"pages").unwrap();
        let looks = Arc::new(AtomicU64::new(0));
        let counted = looks.clone();
        let wb = Writeback::start(&path, Duration::from_millis(1), move || {
            counted.fetch_add(1, Ordering::Relaxed);
            WRITEBACK_AFTER
        })
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while looks.load(Ordering::Relaxed) < 3 {
            assert!(Instant::now() < deadline, "the thread never looked");
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(wb);
        let after = looks.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(looks.load(Ordering::Relaxed), after, "stopped");

        let slow = Writeback::start(&path, Duration::from_secs(3600), || 0).unwrap();
        let t0 = Instant::now();
        drop(slow);
        assert!(t0.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_missing_file_means_no_writeback() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        assert!(Writeback::start(&missing, Duration::from_millis(1), || 0).is_none());
    }
}
