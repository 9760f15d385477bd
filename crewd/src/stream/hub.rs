//! Fan-out of committed events to stream clients.
//!
//! The engine publishes after each commit and never waits: every client has
//! a bounded queue fed with `try_send`. A client whose queue is full is cut
//! off (its queue closes with the `lagged` flag set); its connection tells it
//! to resync and it resumes from the store's event log.

use crate::storage::CommittedEvent;
use axum::extract::ws::Utf8Bytes;
use crew_core::wire::StreamMessage;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

struct Subscriber {
    group: Option<String>,
    tx: mpsc::Sender<Arc<Published>>,
    lagged: Arc<AtomicBool>,
}

/// The engine's side of the stream. Cheap to clone.
#[derive(Clone, Default)]
pub struct EventHub {
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
    count: Arc<AtomicUsize>,
}

/// A client's side: live events, and whether it was cut off for lagging.
pub struct Subscription {
    /// Live events, in commit order.
    pub rx: mpsc::Receiver<Arc<Published>>,
    /// Set when the hub dropped this client because its queue was full.
    pub lagged: Arc<AtomicBool>,
}

impl EventHub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    /// Subscribes to every event, or to one group's (plus workgroup and
    /// worker events, which concern every group).
    pub fn subscribe(&self, group: Option<String>, capacity: usize) -> Subscription {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let lagged = Arc::new(AtomicBool::new(false));
        let mut subs = self.lock();
        subs.push(Subscriber {
            group,
            tx,
            lagged: lagged.clone(),
        });
        self.count.store(subs.len(), Ordering::Relaxed);
        Subscription { rx, lagged }
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
        let shared: Vec<Arc<Published>> = messages
            .into_iter()
            .map(|m| Arc::new(Published::committed(m)))
            .collect();
        subs.retain(|s| {
            for m in &shared {
                let wanted = match (&s.group, m.message.event.group_id()) {
                    (None, _) => true,
                    (Some(g), Some(mg)) => g == mg,
                    (Some(_), None) => true,
                };
                if !wanted {
                    continue;
                }
                match s.tx.try_send(m.clone()) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        s.lagged.store(true, Ordering::Release);
                        return false;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return false,
                }
            }
            true
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
