//! Upgrading a store written with an earlier schema version, inside the
//! transaction that opens it: all of it or none of it is written.

use super::tables;
use super::StorageError;
use crew_core::{TaskGroup, Timestamp};
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};
use serde::Deserialize;
use std::time::Instant;

/// Where the per-group creation-time indexes are rebuilt before they take
/// the names of the ones they replace.
const REBUILT_GROUP_TASKS: TableDefinition<(&str, i64, &str), ()> =
    TableDefinition::new("group_tasks.rebuilt");
const REBUILT_GROUP_BUCKET: TableDefinition<(&str, u8, i64, &str), ()> =
    TableDefinition::new("group_bucket.rebuilt");

/// Brings a store of schema version `found` up to
/// [`super::SCHEMA_VERSION`] (the tables are created already).
pub(super) fn upgrade(txn: &WriteTransaction, found: u64) -> Result<(), StorageError> {
    if found < 3 {
        txn.delete_table(tables::RETIRED_GROUP_INCOMPLETE)?;
    }
    if found < 4 {
        rebuild_creation_indexes(txn)?;
    }
    if found < 5 {
        build_group_indexes(txn)?;
    }
    Ok(())
}

/// Schema 5 lists groups by name, progress and failures from indexes of
/// their own, and finds the groups with a schedule in one: built from
/// every group and its counters, one pass, into empty tables.
fn build_group_indexes(txn: &WriteTransaction) -> Result<(), StorageError> {
    let started = Instant::now();
    txn.delete_table(tables::GROUPS_BY_NAME)?;
    txn.delete_table(tables::GROUPS_BY_PROGRESS)?;
    txn.delete_table(tables::GROUPS_BY_FAILED)?;
    txn.delete_table(tables::SCHEDULED_GROUPS)?;
    let groups = txn.open_table(tables::GROUPS)?;
    let counts = txn.open_table(tables::GROUP_COUNTS)?;
    let mut by_name = txn.open_table(tables::GROUPS_BY_NAME)?;
    let mut by_progress = txn.open_table(tables::GROUPS_BY_PROGRESS)?;
    let mut by_failed = txn.open_table(tables::GROUPS_BY_FAILED)?;
    let mut scheduled = txn.open_table(tables::SCHEDULED_GROUPS)?;
    for row in groups.iter()? {
        let (id, bytes) = row?;
        let id = id.value();
        let g: TaskGroup = tables::decode_json("groups", id, bytes.value())?;
        let c = counts.get(id)?.map_or([0; tables::BUCKETS], |c| c.value());
        by_name.insert((g.name.as_str(), id), ())?;
        by_progress.insert((tables::progress_rank(&c), id), ())?;
        by_failed.insert((tables::failed_rank(&c), id), ())?;
        if g.schedule.is_some() {
            scheduled.insert(id, ())?;
        }
    }
    tracing::info!(
        groups = groups.len()?,
        took_ms = started.elapsed().as_millis() as u64,
        "upgraded the store to schema 5: groups are indexed by name, progress, failures and schedule"
    );
    Ok(())
}

/// The two fields of a stored task the creation-time indexes need.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Placement {
    task_group_id: String,
    created_at: Timestamp,
}

/// Schema 4 keys `group_tasks` and `group_bucket` by the nanosecond of
/// `createdAt`, where earlier versions kept its millisecond: tasks created
/// in one request shared it and came back ordered by id. Both are rebuilt
/// from the tasks and their states, one pass, then take the old names.
fn rebuild_creation_indexes(txn: &WriteTransaction) -> Result<(), StorageError> {
    let started = Instant::now();
    let tasks = txn.open_table(tables::TASKS)?;
    let states = txn.open_table(tables::TASK_STATE)?;
    let mut by_time = txn.open_table(REBUILT_GROUP_TASKS)?;
    let mut by_bucket = txn.open_table(REBUILT_GROUP_BUCKET)?;
    // Seconds for a large store, while only `/livez` answers: say so.
    tracing::info!(
        tasks = tasks.len()?,
        "upgrading the store to schema 4: rebuilding its creation-time indexes"
    );
    for row in tasks.iter()? {
        let (id, bytes) = row?;
        let id = id.value();
        let p: Placement = tables::decode_json("tasks", id, bytes.value())?;
        let state = tables::get_state(&states, id)?.ok_or_else(|| StorageError::Corrupt {
            table: "task_state",
            key: id.to_string(),
            detail: "a stored task has no state".into(),
        })?;
        let created = p.created_at.unix_nanos();
        by_time.insert((p.task_group_id.as_str(), created, id), ())?;
        by_bucket.insert(
            (p.task_group_id.as_str(), state.bucket as u8, created, id),
            (),
        )?;
    }
    let rebuilt = tasks.len()?;
    drop((tasks, states, by_time, by_bucket));
    txn.delete_table(tables::GROUP_TASKS)?;
    txn.rename_table(REBUILT_GROUP_TASKS, tables::GROUP_TASKS)?;
    txn.delete_table(tables::GROUP_BUCKET)?;
    txn.rename_table(REBUILT_GROUP_BUCKET, tables::GROUP_BUCKET)?;
    tracing::info!(
        tasks = rebuilt,
        took_ms = started.elapsed().as_millis() as u64,
        "upgraded the store to schema 4: tasks list in the order they were created"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_row_gives_its_group_and_creation_nanosecond() {
        let row = br#"{"id":"t","taskGroupId":"g","name":"n","input":{"createdAt":"x"},
            "createdAt":"2026-01-02T03:04:05.000000007Z","parentIds":[]}"#;
        let p: Placement = tables::decode_json("tasks", "t", row).unwrap();
        assert_eq!(p.task_group_id, "g");
        assert_eq!(p.created_at.unix_nanos() % 1_000_000_000, 7);
    }
}
