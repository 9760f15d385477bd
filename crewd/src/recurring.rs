//! Recurring groups: a group with a `schedule` (cron, UTC) resets itself
//! (seed semantics) each time the schedule comes due, so nightly jobs need
//! no external scheduler. A group whose tasks are still running resets as
//! soon as it is idle.

use crate::engine::{Actor, EngineError, EngineHandle, Op};
use crate::storage::Store;
use crew_core::Timestamp;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often schedules are checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// How long a group whose scheduled reset was refused is left alone (its
/// shape must change first: an operator's doing). The group itself records
/// the refusal (`scheduleRefused`), so the console shows it.
pub const REFUSED_BACKOFF: Duration = Duration::from_secs(60);

/// A group whose schedule is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    /// The group's id.
    pub id: String,
    /// Whether the group records a refusal of this reset (cleared by a new
    /// schedule, which is then tried at once).
    pub refused: bool,
}

/// The groups whose schedule is due at `now`: the groups with a
/// schedule only, read from their index (every second, so not a pass over
/// every group). A group with a task running waits, from its counters:
/// the reset would be refused after reading every task.
pub fn due_groups(store: &Store, now: Timestamp) -> Result<Vec<Due>, crate::storage::StorageError> {
    let read = store.read()?;
    let mut due = Vec::new();
    for g in read.scheduled_groups()? {
        let Some(expr) = &g.schedule else {
            continue;
        };
        if read.running_tasks(&g.id)? > 0 {
            continue;
        }
        let since = g.schedule_counts_from();
        if let Ok(Some(next)) = crew_core::schedule::next_after(expr, since) {
            if next <= now {
                due.push(Due {
                    refused: g.schedule_refused.is_some(),
                    id: g.id,
                });
            }
        }
    }
    Ok(due)
}

/// Checks schedules every [`CHECK_EVERY`] until the engine stops.
pub async fn run_schedules(engine: EngineHandle, store: Store) {
    let actor = Actor::new("schedule");
    let mut tick = tokio::time::interval(CHECK_EVERY);
    // Groups whose reset was refused, and when: tried again after
    // [`REFUSED_BACKOFF`], or at once when the group no longer records the
    // refusal (an operator gave it a new schedule).
    let mut refused: HashMap<String, Instant> = HashMap::new();
    loop {
        tick.tick().await;
        let s = store.clone();
        let due = match tokio::task::spawn_blocking(move || due_groups(&s, Timestamp::now())).await
        {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => {
                tracing::warn!("schedule check skipped: {e}");
                continue;
            }
            Err(_) => continue,
        };
        refused.retain(|_, at| at.elapsed() < REFUSED_BACKOFF);
        for Due {
            id,
            refused: recorded,
        } in due
        {
            if !recorded {
                refused.remove(&id);
            } else if refused.contains_key(&id) {
                continue;
            }
            match engine
                .execute(&actor, Op::ScheduledReset { id: id.clone() })
                .await
            {
                Ok(out) => {
                    if let Some(reason) = out.schedule_refused {
                        tracing::warn!(group = %id, "scheduled reset refused, trying again in a minute: {reason}");
                        refused.insert(id, Instant::now());
                    } else if out.updated + out.deleted > 0 {
                        tracing::info!(group = %id, "scheduled reset");
                    }
                }
                Err(EngineError::ShuttingDown) => return,
                Err(e) => {
                    tracing::warn!(group = %id, "scheduled reset failed, trying again in a minute: {e}");
                    refused.insert(id, Instant::now());
                }
            }
        }
    }
}
