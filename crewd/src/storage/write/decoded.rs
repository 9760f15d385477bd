//! Records decoded by one write transaction, handed to the next, so that
//! the tasks a burst touches again are not decoded again.

use super::super::StorageError;
use crew_core::{Task, TaskGroup};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Tasks and groups as last read or written, so that the rules, the index
/// upkeep and the events decode each record once, and a task decoded when
/// its call started is not decoded again when its result comes back.
///
/// It lives across write transactions but only through commits: a
/// transaction takes it from its [`DecodedSlot`] and puts it back when its
/// commit succeeds, so an aborted or failed transaction's writes are never
/// remembered. Two generations bound it: when the newer one is full it
/// replaces the older one.
#[derive(Default)]
pub(crate) struct Decoded {
    /// `None`: known to be absent.
    pub(super) tasks: Generations<Task>,
    pub(super) groups: Generations<TaskGroup>,
}

/// A bounded map of recent records: lookups try the newer generation
/// first, so an older entry never shadows a newer write.
pub(super) struct Generations<T> {
    newer: RefCell<HashMap<String, Option<T>>>,
    older: RefCell<HashMap<String, Option<T>>>,
}

impl<T> Default for Generations<T> {
    fn default() -> Self {
        Generations {
            newer: RefCell::new(HashMap::new()),
            older: RefCell::new(HashMap::new()),
        }
    }
}

impl<T: Clone> Generations<T> {
    fn get(&self, id: &str) -> Option<Option<T>> {
        if let Some(v) = self.newer.borrow().get(id) {
            return Some(v.clone());
        }
        self.older.borrow().get(id).cloned()
    }

    /// The remembered record, or `load`'s answer, remembered if
    /// `remember` and the newer generation has room (only writes rotate).
    pub(super) fn get_or_load(
        &self,
        id: &str,
        remember: bool,
        load: impl FnOnce() -> Result<Option<T>, StorageError>,
    ) -> Result<Option<T>, StorageError> {
        if let Some(v) = self.get(id) {
            return Ok(v);
        }
        let v = load()?;
        // A read fills free room only: a scan over many records (a large
        // creation's evaluation) must not push out what was just written.
        if remember && self.newer.borrow().len() < DECODED_MAX {
            self.put(id, v.clone());
        }
        Ok(v)
    }

    fn put(&self, id: &str, v: Option<T>) {
        let mut newer = self.newer.borrow_mut();
        if newer.len() >= DECODED_MAX && !newer.contains_key(id) {
            // Sized up front: growing it again would rehash it every time.
            let full = std::mem::replace(&mut *newer, HashMap::with_capacity(DECODED_MAX));
            *self.older.borrow_mut() = full;
        }
        newer.insert(id.to_string(), v);
    }
}

/// The store's slot for [`Decoded`] between write transactions.
#[derive(Clone, Default)]
pub(crate) struct DecodedSlot(Arc<Mutex<Option<Decoded>>>);

impl DecodedSlot {
    pub(super) fn take(&self) -> Decoded {
        match self.0.lock() {
            Ok(mut g) => g.take().unwrap_or_default(),
            Err(_) => Decoded::default(),
        }
    }

    /// Forgets every remembered record.
    pub(crate) fn clear(&self) {
        match self.0.lock() {
            Ok(mut g) => *g = None,
            Err(p) => *p.into_inner() = None,
        }
    }

    /// Runs `commit` and, when it succeeds, keeps `d` for the next
    /// transaction. The slot stays locked throughout, so that the next
    /// transaction (which may begin as soon as redb's commit returns) waits
    /// for these records rather than starting without them and then
    /// having them put back over its own newer ones.
    pub(super) fn commit<E>(
        &self,
        d: Decoded,
        commit: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        let mut slot = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        commit()?;
        *slot = Some(d);
        Ok(())
    }
}

/// Records one generation of [`Decoded`] holds: enough for the tasks of
/// every call in flight to be found again when their results come back
/// (a few batches of starts and results), at the default in-flight limit
/// and well above it. Two generations of tasks are a few MiB at most;
/// recovery's pass over every incomplete task does not fill them
/// ([`WriteTx::forget_reads`](super::WriteTx::forget_reads)).
const DECODED_MAX: usize = 4096;

impl Decoded {
    pub(super) fn put_task(&self, id: &str, t: Option<&Task>) {
        let t = t.map(|t| {
            let mut t = t.clone();
            // As stored: the derived status is never part of a record.
            t.status = None;
            t
        });
        self.tasks.put(id, t);
    }

    pub(super) fn put_group(&self, id: &str, g: Option<&TaskGroup>) {
        self.groups.put(id, g.cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::{Generations, DECODED_MAX};

    fn load(v: u32) -> impl FnOnce() -> Result<Option<u32>, super::StorageError> {
        move || Ok(Some(v))
    }

    #[test]
    fn writes_rotate_generations_and_reads_only_fill_free_room() {
        let g: Generations<u32> = Generations::default();
        for i in 0..DECODED_MAX as u32 {
            g.put(&format!("w{i}"), Some(i));
        }
        // The newer generation is full: a read is answered, not remembered,
        // and nothing written is pushed out by it.
        assert_eq!(g.get_or_load("r0", true, load(7)).ok(), Some(Some(7)));
        assert_eq!(g.get("r0"), None);
        assert_eq!(g.get("w0"), Some(Some(0)));
        // A write rotates: the older generation still answers.
        g.put("w-next", Some(1));
        assert_eq!(g.get("w0"), Some(Some(0)));
        assert_eq!(g.get("w-next"), Some(Some(1)));
        // With room again, a read is remembered (unless told not to).
        assert_eq!(g.get_or_load("r1", true, load(8)).ok(), Some(Some(8)));
        assert_eq!(g.get("r1"), Some(Some(8)));
        assert_eq!(g.get_or_load("r2", false, load(9)).ok(), Some(Some(9)));
        assert_eq!(g.get("r2"), None);
    }
}
