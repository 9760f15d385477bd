//! Recurring groups: a cron expression (UTC) on which a group resets itself
//! (seed semantics), so nightly jobs need no external scheduler.

use crate::error::RuleError;
use crate::time::Timestamp;
use chrono::Utc;
use croner::Cron;
use std::str::FromStr;

/// Parses a cron expression (5 fields, or 6 with seconds first), refusing
/// a bad one with a readable error.
pub fn parse(expr: &str) -> Result<Cron, RuleError> {
    if expr.len() > 256 {
        return Err(RuleError::Invalid("schedule is too long".into()));
    }
    Cron::from_str(expr.trim())
        .map_err(|e| RuleError::Invalid(format!("schedule {expr:?} is not a cron expression: {e}")))
}

/// Checks a schedule given by a client: a cron expression that comes due
/// at least once. One that never does (`0 0 30 2 *`, the 30th of
/// February) would be accepted and do nothing, silently.
pub fn check(expr: &str) -> Result<(), RuleError> {
    let cron = parse(expr)?;
    let start = chrono::DateTime::<Utc>::UNIX_EPOCH;
    if cron.find_next_occurrence(&start, false).is_err() {
        return Err(RuleError::Invalid(format!(
            "schedule {expr:?} never comes due"
        )));
    }
    Ok(())
}

/// The first time the schedule fires strictly after `after` (`None` when it
/// never fires again).
pub fn next_after(expr: &str, after: Timestamp) -> Result<Option<Timestamp>, RuleError> {
    let cron = parse(expr)?;
    let start = chrono::DateTime::<Utc>::from_timestamp_millis(after.unix_millis())
        .ok_or_else(|| RuleError::Invalid("time out of range".into()))?;
    Ok(cron
        .find_next_occurrence(&start, false)
        .ok()
        .map(|t| Timestamp::from_unix_millis(t.timestamp_millis())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_occurrences() {
        let t = Timestamp::parse("2026-01-01T10:30:00Z").unwrap();
        let next = next_after("0 2 * * *", t).unwrap().unwrap();
        assert_eq!(next.to_string(), "2026-01-02T02:00:00Z");
        let next = next_after("*/10 * * * * *", t).unwrap().unwrap();
        assert_eq!(next.to_string(), "2026-01-01T10:30:10Z");
        assert!(parse("every day").is_err());
        assert!(parse("61 * * * *").is_err());
    }

    #[test]
    fn a_schedule_that_never_comes_due_is_refused() {
        check("0 2 * * *").unwrap();
        check("0 0 29 2 *").unwrap();
        let e = check("0 0 30 2 *").unwrap_err();
        assert!(e.to_string().contains("never comes due"), "{e}");
        assert!(check("every day").is_err());
    }
}
