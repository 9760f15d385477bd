//! Fan-out of committed events to stream clients.
//!
//! The engine publishes after each commit and never waits: every client
//! gets the commit's events as one shared batch (one send per client, not
//! one per event), and counts the events it has queued. A client whose
//! queue would pass its capacity is cut off (its queue closes with the
//! `lagged` flag set); its connection tells it to resync and it resumes
//! from the store's event log.

use crate::storage::CommittedEvent;
use axum::extract::ws::Utf8Bytes;
use crew_core::wire::StreamMessage;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// A committed event, encoded once for every client.
#[derive(Debug)]
pub struct Published {
    /// The event.
    pub message: StreamMessage,
    /// Its JSON text, shared by every connection that sends it.
    pub json: Utf8Bytes,
}

impl Published {
    /// A committed event, with the JSON text the store already encoded
    /// (encoded here when the store did not keep it).
    pub fn committed(e: CommittedEvent) -> Self {
        let json = match e.json {
            Some(json) => json,
            None => serde_json::to_string(&e.message).unwrap_or_default(),
        };
        Published {
            message: e.message,
            json: Utf8Bytes::from(json),
        }
    }
}

/// One commit's events, shared by every client; each takes those that
/// concern it ([`concerns`]).
pub type Batch = Arc<[Arc<Published>]>;

/// Whether an event goes to a client following `group` (`None`: every
/// group). Workgroup and worker events concern every group.
pub fn concerns(group: &Option<String>, m: &StreamMessage) -> bool {
    match (group, m.event.group_id()) {
        (None, _) | (Some(_), None) => true,
        (Some(g), Some(mg)) => g == mg,
    }
}

struct Subscriber {
    group: Option<String>,
    /// Each batch, with how many of its events concern this client.
    tx: mpsc::UnboundedSender<(Batch, usize)>,
    /// Events sent and not yet received.
    queued: Arc<AtomicUsize>,
    capacity: usize,
    lagged: Arc<AtomicBool>,
    /// Tells it from the others, for its [`Subscription`] to leave.
    id: u64,
}

/// The engine's side of the stream. Cheap to clone.
#[derive(Clone, Default)]
pub struct EventHub {
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
    count: Arc<AtomicUsize>,
    /// Numbers subscribers.
    next_id: Arc<AtomicU64>,
}

/// A client's side: live events, and whether it was cut off for lagging.
pub struct Subscription {
    rx: mpsc::UnboundedReceiver<(Batch, usize)>,
    queued: Arc<AtomicUsize>,
    /// Set when the hub dropped this client because its queue was full.
    pub lagged: Arc<AtomicBool>,
    /// The hub, left when the client goes: counted until then, a client
    /// gone while nothing was published stayed counted (in `/metrics`,
    /// and as a reason for the engine to keep every event's JSON).
    hub: EventHub,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut subs = self.hub.lock();
        subs.retain(|s| s.id != self.id);
        self.hub.count.store(subs.len(), Ordering::Relaxed);
    }
}

impl Subscription {
    /// The next commit's events, in commit order (some may not concern
    /// this client: see [`concerns`]); `None` once the hub dropped it.
    pub async fn recv(&mut self) -> Option<Batch> {
        let (batch, n) = self.rx.recv().await?;
        self.queued.fetch_sub(n, Ordering::AcqRel);
        Some(batch)
    }

    /// [`Subscription::recv`] without waiting: `None` when nothing is queued.
    pub fn try_recv(&mut self) -> Option<Batch> {
        let (batch, n) = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(n, Ordering::AcqRel);
        Some(batch)
    }
}

impl EventHub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    /// Subscribes to every event, or to one group's (plus workgroup and
    /// worker events, which concern every group).
    ///
    /// `capacity` is how many events may wait for the client before it is
    /// cut off; a batch that reaches an empty queue is always taken, however
    /// large (a large group's creation).
    pub fn subscribe(&self, group: Option<String>, capacity: usize) -> Subscription {
        let (tx, rx) = mpsc::unbounded_channel();
        let lagged = Arc::new(AtomicBool::new(false));
        let queued = Arc::new(AtomicUsize::new(0));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut subs = self.lock();
        subs.push(Subscriber {
            group,
            tx,
            queued: queued.clone(),
            capacity,
            lagged: lagged.clone(),
            id,
        });
        self.count.store(subs.len(), Ordering::Relaxed);
        Subscription {
            rx,
            queued,
            lagged,
            hub: self.clone(),
            id,
        }
    }

    /// Clients subscribed now.
    pub fn client_count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Delivers committed events without ever blocking.
    pub fn publish(&self, messages: Vec<CommittedEvent>) {
        if messages.is_empty() {
            return;
        }
        let mut subs = self.lock();
        if subs.is_empty() {
            return;
        }
        // Encoded once (by the store), not once per client.
        let shared: Batch = messages
            .into_iter()
            .map(|m| Arc::new(Published::committed(m)))
            .collect();
        subs.retain(|s| {
            let n = shared
                .iter()
                .filter(|m| concerns(&s.group, &m.message))
                .count();
            if n == 0 {
                return !s.tx.is_closed();
            }
            let queued = s.queued.load(Ordering::Acquire);
            if queued > 0 && queued + n > s.capacity {
                s.lagged.store(true, Ordering::Release);
                return false;
            }
            s.queued.fetch_add(n, Ordering::AcqRel);
            s.tx.send((shared.clone(), n)).is_ok()
        });
        self.count.store(subs.len(), Ordering::Relaxed);
    }

    /// Ends every subscription (the daemon is stopping): connections see
    /// their queue close without the lagged flag and close cleanly.
    pub fn close_all(&self) {
        let mut subs = self.lock();
        subs.clear();
        self.count.store(0, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        match self.subscribers.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crew_core::wire::Event;

    /// `n` events numbered from `first`.
    fn events(first: u64, n: u64) -> Vec<CommittedEvent> {
        (first..first + n)
            .map(|seq| CommittedEvent {
                message: StreamMessage {
                    seq,
                    at: None,
                    event: Event::Resync {
                        reason: String::new(),
                    },
                },
                json: None,
            })
            .collect()
    }

    fn seqs(batch: &Batch) -> Vec<u64> {
        batch.iter().map(|m| m.message.seq).collect()
    }

    #[tokio::test]
    async fn a_batch_reaching_an_empty_queue_is_taken_and_a_full_queue_cuts_off() {
        let hub = EventHub::new();
        let mut sub = hub.subscribe(None, 3);
        // Larger than the capacity, but nothing is queued: taken whole.
        hub.publish(events(1, 5));
        assert_eq!(
            sub.recv().await.as_ref().map(seqs),
            Some(vec![1, 2, 3, 4, 5])
        );
        // Received: the queue is empty again.
        hub.publish(events(6, 2));
        hub.publish(events(8, 1));
        assert_eq!(hub.client_count(), 1);
        // Three queued: one more would pass the capacity.
        hub.publish(events(9, 1));
        assert_eq!(hub.client_count(), 0);
        assert!(sub.lagged.load(Ordering::Acquire));
        // What was queued before the cut still arrives, then the end.
        assert_eq!(sub.try_recv().as_ref().map(seqs), Some(vec![6, 7]));
        assert_eq!(sub.recv().await.as_ref().map(seqs), Some(vec![8]));
        assert!(sub.recv().await.is_none());
    }

    /// A client that goes while nothing is published stops counting at
    /// once: it counted until the next event.
    #[test]
    fn a_client_gone_stops_counting_at_once() {
        let hub = EventHub::new();
        let a = hub.subscribe(None, 3);
        let b = hub.subscribe(Some("g".into()), 3);
        assert_eq!(hub.client_count(), 2);
        drop(a);
        assert_eq!(hub.client_count(), 1);
        drop(b);
        assert_eq!(hub.client_count(), 0);
    }
}
