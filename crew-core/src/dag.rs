//! Validation of a batch of new tasks against an existing group.
//!
//! A batch is refused whole: one bad task and nothing is created. Errors
//! name the offending ids so the client can fix its request.

use crate::error::RuleError;
use crate::graph::GraphRead;
use std::collections::HashMap;

/// Longest id, group id, worker or workgroup name.
pub const MAX_ID_LEN: usize = 128;
/// Longest task or group name, and longest key.
pub const MAX_NAME_LEN: usize = 1024;
/// Most attempts a task may be given.
pub const MAX_ATTEMPTS: u32 = 1000;
/// Longest error delay (30 days).
pub const MAX_ERROR_DELAY_SECS: u64 = 30 * 24 * 3600;
/// How many ids an error message lists before it says "and N more".
const NAMED_IN_ERRORS: usize = 10;

/// Whether `s` may be used as an id or a worker/workgroup name: they appear
/// in URLs, so 1 to 128 characters of `A-Z a-z 0-9 . _ : -`, not starting
/// with a dot (so a worker name can never be `..`).
pub fn is_safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Checks one safe name, saying which field was wrong.
pub fn check_safe_name(field: &str, s: &str) -> Result<(), RuleError> {
    if is_safe_name(s) {
        Ok(())
    } else {
        Err(RuleError::Invalid(format!(
            "{field} {:?} is not valid: use 1 to {MAX_ID_LEN} characters of A-Z a-z 0-9 . _ : - (not starting with a dot)",
            truncate(s, 80)
        )))
    }
}

/// Checks a free-text field's length.
pub fn check_text(field: &str, s: &str) -> Result<(), RuleError> {
    if s.len() > MAX_NAME_LEN {
        Err(RuleError::Invalid(format!(
            "{field} is {} bytes long; the limit is {MAX_NAME_LEN}",
            s.len()
        )))
    } else {
        Ok(())
    }
}

/// Checks an attempt budget.
pub fn check_attempts(n: u32) -> Result<(), RuleError> {
    if n > MAX_ATTEMPTS {
        Err(RuleError::Invalid(format!(
            "remainingAttempts {n} is over the limit of {MAX_ATTEMPTS}"
        )))
    } else {
        Ok(())
    }
}

/// Longest per-task worker timeout (one day).
pub const MAX_TIMEOUT_SECS: u64 = 86_400;

/// Checks a per-task worker timeout.
pub fn check_timeout(n: u64) -> Result<(), RuleError> {
    if n == 0 || n > MAX_TIMEOUT_SECS {
        Err(RuleError::Invalid(format!(
            "timeoutInSeconds {n} is out of range: use 1 to {MAX_TIMEOUT_SECS}"
        )))
    } else {
        Ok(())
    }
}

/// Checks an error delay.
pub fn check_error_delay(n: u64) -> Result<(), RuleError> {
    if n > MAX_ERROR_DELAY_SECS {
        Err(RuleError::Invalid(format!(
            "errorDelayInSeconds {n} is over the limit of {MAX_ERROR_DELAY_SECS}"
        )))
    } else {
        Ok(())
    }
}

/// The shape of one new task that validation looks at.
#[derive(Clone, Debug)]
pub struct NewNode<'a> {
    /// Its (resolved) id.
    pub id: &'a str,
    /// Its parents, in the batch or already in the group.
    pub parent_ids: &'a [String],
}

/// Validates the edges of a batch of new tasks for `group`: unique ids not
/// already in use, parents that exist (in the batch or in the group), no
/// self-parent, no cycle. Field checks are the caller's.
///
/// Cost: O(batch size + edges), plus one lookup per id and per parent
/// outside the batch.
pub fn validate_batch<G: GraphRead + ?Sized>(
    g: &G,
    group: &str,
    nodes: &[NewNode<'_>],
) -> Result<(), RuleError> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(nodes.len());
    let mut duplicates = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        check_safe_name("task id", n.id)?;
        if index.insert(n.id, i).is_some() {
            duplicates.push(n.id);
        }
    }
    if !duplicates.is_empty() {
        return Err(RuleError::Invalid(format!(
            "duplicate task ids in the request: {}",
            name_ids(&duplicates)
        )));
    }

    let mut taken = Vec::new();
    for n in nodes {
        if g.is_complete(n.id)?.is_some() {
            taken.push(n.id);
        }
    }
    if !taken.is_empty() {
        return Err(RuleError::Conflict(format!(
            "task ids already exist: {}",
            name_ids(&taken)
        )));
    }

    let mut self_parents: Vec<String> = Vec::new();
    let mut unknown = Vec::new();
    let mut foreign = Vec::new();
    // In-batch edges as (parent index, child index), and in-degrees.
    let mut edges: Vec<(usize, usize)> = Vec::with_capacity(nodes.len());
    let mut indegree = vec![0usize; nodes.len()];
    // Parents outside the batch already found in this group.
    let mut known_outside: std::collections::HashSet<&str> = Default::default();
    for (i, n) in nodes.iter().enumerate() {
        for p in n.parent_ids {
            if p == n.id {
                self_parents.push(n.id.to_string());
            } else if let Some(&pi) = index.get(p.as_str()) {
                edges.push((pi, i));
                indegree[i] += 1;
            } else if !known_outside.contains(p.as_str()) {
                match g.task(p)? {
                    None => unknown.push(format!("{} (parent of {})", p, n.id)),
                    Some(t) if t.task_group_id != group => foreign.push(format!(
                        "{} (parent of {}, in group {})",
                        p, n.id, t.task_group_id
                    )),
                    Some(_) => {
                        known_outside.insert(p.as_str());
                    }
                }
            }
        }
    }
    if !self_parents.is_empty() {
        return Err(RuleError::Invalid(format!(
            "tasks name themselves as parent: {}",
            name_ids(&self_parents)
        )));
    }
    if !unknown.is_empty() {
        return Err(RuleError::Invalid(format!(
            "unknown parent ids: {}",
            name_ids(&unknown)
        )));
    }
    if !foreign.is_empty() {
        return Err(RuleError::Invalid(format!(
            "parents must be in the same group: {}",
            name_ids(&foreign)
        )));
    }

    // Children lists in one array (compressed rows): `children[start[p]..
    // start[p + 1]]` are the batch children of node `p`.
    let mut start = vec![0usize; nodes.len() + 1];
    for &(p, _) in &edges {
        start[p + 1] += 1;
    }
    for i in 0..nodes.len() {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut children = vec![0usize; edges.len()];
    for &(p, c) in &edges {
        children[fill[p]] = c;
        fill[p] += 1;
    }
    drop(edges);

    // Kahn's algorithm: whatever cannot be ordered lies on (or behind) a cycle.
    let mut queue: Vec<usize> = (0..nodes.len()).filter(|&i| indegree[i] == 0).collect();
    let mut ordered = 0;
    while let Some(i) = queue.pop() {
        ordered += 1;
        for &c in &children[start[i]..start[i + 1]] {
            indegree[c] -= 1;
            if indegree[c] == 0 {
                queue.push(c);
            }
        }
    }
    if ordered < nodes.len() {
        let stuck: Vec<&str> = nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| indegree[*i] > 0)
            .map(|(_, n)| n.id)
            .collect();
        return Err(RuleError::Invalid(format!(
            "the tasks form a cycle: {}",
            name_ids(&stuck)
        )));
    }
    Ok(())
}

fn name_ids<S: AsRef<str>>(ids: &[S]) -> String {
    let mut s: Vec<String> = ids
        .iter()
        .take(NAMED_IN_ERRORS)
        .map(|i| truncate(i.as_ref(), 160))
        .collect();
    if ids.len() > NAMED_IN_ERRORS {
        s.push(format!("and {} more", ids.len() - NAMED_IN_ERRORS));
    }
    s.join(", ")
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
