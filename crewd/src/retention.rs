//! Retention: finished groups (every task complete) are deleted once they
//! have been finished for a configured time, or beyond a configured count
//! (the newest are kept). Old events are trimmed by the store itself, in the transaction
//! that appends new ones.
//!
//! A sweep reads the finished groups from their index (not every group,
//! nor any task) and deletes through the engine, so each deletion is an
//! ordinary command: one transaction, events, counts.

use crate::engine::{Actor, EngineError, EngineHandle, Op};
use crate::storage::Store;
use crew_core::Timestamp;
use std::time::Duration;

/// What to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Delete groups finished longer ago than this.
    pub max_age: Option<Duration>,
    /// Keep at most this many finished groups.
    pub max_finished_groups: Option<usize>,
    /// Time between sweeps.
    pub every: Duration,
}

impl RetentionPolicy {
    /// Whether the policy deletes anything at all.
    pub fn is_active(&self) -> bool {
        self.max_age.is_some() || self.max_finished_groups.is_some()
    }
}

/// Ids of the finished groups the policy deletes at `now`.
pub fn doomed_groups(
    store: &Store,
    policy: &RetentionPolicy,
    now: Timestamp,
) -> Result<Vec<String>, crate::storage::StorageError> {
    let read = store.read()?;
    // Newest first, as the store lists them. A group with a schedule is
    // finished only until its next run: it is never pruned, nor counted.
    let mut finished = read.finished_groups()?;
    finished.retain(|g| g.schedule.is_none());
    let mut doomed = Vec::new();
    for (i, g) in finished.into_iter().enumerate() {
        let too_many = policy.max_finished_groups.is_some_and(|max| i >= max);
        let too_old = match policy.max_age {
            // Counted from when it finished (from its creation if that is
            // not known).
            Some(age) => {
                let since = read.group_finished_at(&g.id)?.unwrap_or(g.created_at);
                since.seconds_until(&now) > age.as_secs_f64()
            }
            None => false,
        };
        if too_many || too_old {
            doomed.push(g.id);
        }
    }
    Ok(doomed)
}

/// Sweeps every `policy.every` until the engine stops.
pub async fn run_retention(engine: EngineHandle, store: Store, policy: RetentionPolicy) {
    let actor = Actor::new("retention");
    let mut tick = tokio::time::interval(policy.every);
    loop {
        tick.tick().await;
        let s = store.clone();
        let doomed =
            tokio::task::spawn_blocking(move || doomed_groups(&s, &policy, Timestamp::now())).await;
        let doomed = match doomed {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => {
                tracing::warn!("retention sweep skipped: {e}");
                continue;
            }
            Err(_) => continue,
        };
        for id in doomed {
            match engine
                .execute(&actor, Op::PruneGroup { id: id.clone() })
                .await
            {
                // Given new work (or a schedule) since it was chosen.
                Ok(out) if out.deleted == 0 => {}
                Ok(out) => {
                    engine.metrics().pruned(out.deleted);
                    tracing::info!(group = %id, tasks = out.deleted, "retention deleted a finished group")
                }
                Err(EngineError::ShuttingDown) => return,
                Err(e) => tracing::debug!(group = %id, "retention could not delete: {e}"),
            }
        }
    }
}
