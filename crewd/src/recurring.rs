//! Recurring groups: a group with a `schedule` (cron, UTC) resets itself
//! (seed semantics) each time the schedule comes due, so nightly jobs need
//! no external scheduler. A group whose tasks are still running resets as
//! soon as it is idle.

use crate::engine::{Actor, EngineError, EngineHandle, Op};
use crate::storage::Store;
use crew_core::Timestamp;
use std::time::Duration;

/// How often schedules are checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Ids of the groups whose schedule is due at `now`: the groups with a
/// schedule only, read from their index (every second, so not a pass over
/// every group).
pub fn due_groups(
    store: &Store,
    now: Timestamp,
) -> Result<Vec<String>, crate::storage::StorageError> {
    let mut due = Vec::new();
    for g in store.read()?.scheduled_groups()? {
        let Some(expr) = &g.schedule else {
            continue;
        };
        let since = g.last_scheduled_reset.unwrap_or(g.created_at);
        if let Ok(Some(next)) = crew_core::schedule::next_after(expr, since) {
            if next <= now {
                due.push(g.id);
            }
        }
    }
    Ok(due)
}

/// Checks schedules every [`CHECK_EVERY`] until the engine stops.
pub async fn run_schedules(engine: EngineHandle, store: Store) {
    let actor = Actor::new("schedule");
    let mut tick = tokio::time::interval(CHECK_EVERY);
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
        for id in due {
            match engine
                .execute(&actor, Op::ScheduledReset { id: id.clone() })
                .await
            {
                Ok(out) if out.updated + out.deleted > 0 => {
                    tracing::info!(group = %id, "scheduled reset")
                }
                Ok(_) => {}
                Err(EngineError::ShuttingDown) => return,
                Err(e) => tracing::debug!(group = %id, "scheduled reset refused: {e}"),
            }
        }
    }
}
