//! Validation of a batch of new tasks against an existing group.
//!
//! A batch is refused whole: one bad task and nothing is created. Errors
//! name the offending ids so the client can fix its request.

use crate::error::RuleError;
use crate::graph::GraphRead;
use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::BuildHasher;

/// Longest id, group id, worker or workgroup name.
pub const MAX_ID_LEN: usize = 128;
/// Longest task or group name, and longest key.
pub const MAX_NAME_LEN: usize = 1024;
/// Most attempts a task may be given.
pub const MAX_ATTEMPTS: u32 = 1000;
/// Longest error delay (30 days).
pub const MAX_ERROR_DELAY_SECS: u64 = 30 * 24 * 3600;
/// Deepest nesting of arrays and objects in a task's `input` or `output`.
/// JSON readers stop at 128 levels (serde_json's default, the daemon's
/// own store and the console among them), and a stored or streamed task
/// wraps these values in a few levels more: well below, so that every
/// reader can read back what was accepted.
pub const MAX_JSON_DEPTH: usize = 64;
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

/// How deeply arrays and objects nest in `v` (0 for a scalar).
pub fn json_depth(v: &serde_json::Value) -> usize {
    use serde_json::Value;
    // A stack, not recursion: the value may come from a reader with no
    // depth limit of its own.
    let mut deepest = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        let inner: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(fields) => Box::new(fields.values()),
            _ => continue,
        };
        deepest = deepest.max(depth + 1);
        stack.extend(inner.map(|i| (i, depth + 1)));
    }
    deepest
}

/// Checks that a JSON field nests at most [`MAX_JSON_DEPTH`] levels.
pub fn check_json_depth(field: &str, v: &serde_json::Value) -> Result<(), RuleError> {
    let depth = json_depth(v);
    if depth > MAX_JSON_DEPTH {
        Err(RuleError::Invalid(format!(
            "{field} nests arrays and objects {depth} levels deep; the limit is {MAX_JSON_DEPTH}"
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

/// Checks the attempts a reset or retry (`action`) gives: at least one,
/// since with none the tasks would be failed instead of run again. A task
/// may still be created or edited with 0 (crew-go allows it: it is failed).
pub fn check_given_attempts(action: &str, n: u32) -> Result<(), RuleError> {
    if n == 0 {
        Err(RuleError::Invalid(format!(
            "remainingAttempts 0 is not valid for a {action}: it would leave the tasks \
             failed; give 1 to {MAX_ATTEMPTS}"
        )))
    } else {
        check_attempts(n)
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
    // For a large batch the cost is memory, not computation: the batch's
    // strings are scattered over the heap and every hash table lookup is a
    // cache miss. So the ids and parent ids are first copied into two
    // compact buffers, in one tight pass (it overlaps the misses, and each
    // task's strings tend to lie together), and the index is a small flat
    // table over those.
    let mut ids = Packed::with_capacity(nodes.len(), nodes.iter().map(|n| n.id.len()).sum());
    let edge_count = nodes.iter().map(|n| n.parent_ids.len()).sum();
    let mut parents = Packed::with_capacity(edge_count, edge_count * 8);
    for n in nodes {
        check_safe_name("task id", n.id)?;
        ids.push(n.id);
        for p in n.parent_ids {
            parents.push(p);
        }
    }
    let mut index = IdIndex::new(&ids);
    let mut duplicates = Vec::new();
    for i in 0..ids.len() {
        if !index.insert(i) {
            duplicates.push(ids.get(i));
        }
    }
    if !duplicates.is_empty() {
        return Err(RuleError::Invalid(format!(
            "duplicate task ids in the request: {}",
            name_ids(&duplicates)
        )));
    }

    let mut taken = Vec::new();
    for i in 0..ids.len() {
        let id = ids.get(i);
        if g.is_complete(id)?.is_some() {
            taken.push(id);
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
    // In-batch edges: the parent position of each, grouped by child in
    // batch order; `indegree[c]` of them belong to child `c`.
    let mut edge_parents: Vec<usize> = Vec::with_capacity(edge_count);
    let mut indegree = vec![0usize; nodes.len()];
    // Whether every in-batch parent comes before its child: then the batch
    // is in topological order and cannot hold a cycle.
    let mut in_order = true;
    // Parents outside the batch already found in this group.
    let mut known_outside: HashSet<&str> = HashSet::new();
    let mut next_parent = 0;
    for (i, n) in nodes.iter().enumerate() {
        let id = ids.get(i);
        let first = next_parent;
        next_parent += n.parent_ids.len();
        for k in first..next_parent {
            let p = parents.get(k);
            if p == id {
                self_parents.push(id.to_string());
            } else if let Some(pi) = index.get(p) {
                edge_parents.push(pi);
                indegree[i] += 1;
                in_order &= pi < i;
            } else if !known_outside.contains(p) {
                match g.task(p)? {
                    None => unknown.push(format!("{} (parent of {})", p, id)),
                    Some(t) if t.task_group_id != group => foreign.push(format!(
                        "{} (parent of {}, in group {})",
                        p, id, t.task_group_id
                    )),
                    Some(_) => {
                        known_outside.insert(p);
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
    if in_order {
        return Ok(());
    }
    find_cycle(&ids, &edge_parents, indegree)
}

/// Strings copied end to end into one buffer.
struct Packed {
    text: String,
    /// String `i` is `text[bounds[i]..bounds[i + 1]]`.
    bounds: Vec<usize>,
}

impl Packed {
    fn with_capacity(strings: usize, bytes: usize) -> Self {
        let mut bounds = Vec::with_capacity(strings + 1);
        bounds.push(0);
        Packed {
            text: String::with_capacity(bytes),
            bounds,
        }
    }

    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.bounds.push(self.text.len());
    }

    fn len(&self) -> usize {
        self.bounds.len() - 1
    }

    /// String `i`.
    fn get(&self, i: usize) -> &str {
        &self.text[self.bounds[i]..self.bounds[i + 1]]
    }
}

/// Positions of the ids of a [`Packed`] by id: open addressing with linear
/// probing over one array of slots, each holding a position and a few bits
/// of its id's hash, so a probe rarely compares strings. A quarter the size
/// of a `HashMap<&str, usize>`, which is what counts when a large batch's
/// table does not fit in cache. The hash is std's keyed SipHash, so ids
/// chosen to collide cannot make it slow.
struct IdIndex<'p> {
    ids: &'p Packed,
    hasher: RandomState,
    /// 0 when empty, else `tag << POSITION_BITS | (position + 1)`.
    slots: Vec<u64>,
    mask: usize,
}

/// Low bits of a slot holding a position plus one: a batch cannot have
/// 2^48 tasks (its nodes alone would take 2^53 bytes).
const POSITION_BITS: u32 = 48;

impl<'p> IdIndex<'p> {
    /// An empty index with room for every id of `ids`, at most 80% full.
    fn new(ids: &'p Packed) -> Self {
        let size = (ids.len() + ids.len() / 4).next_power_of_two().max(8);
        IdIndex {
            ids,
            hasher: RandomState::new(),
            slots: vec![0; size],
            mask: size - 1,
        }
    }

    /// The first slot to probe for `s`, and the tag its slot would carry.
    fn start(&self, s: &str) -> (usize, u64) {
        let h = self.hasher.hash_one(s);
        (h as usize & self.mask, h >> POSITION_BITS << POSITION_BITS)
    }

    /// Indexes id `i`; false when that id is already indexed.
    fn insert(&mut self, i: usize) -> bool {
        let s = self.ids.get(i);
        let (mut at, tag) = self.start(s);
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                self.slots[at] = tag | (i as u64 + 1);
                return true;
            }
            if self.holds(slot, tag, s).is_some() {
                return false;
            }
            at = (at + 1) & self.mask;
        }
    }

    /// The position of id `s`.
    fn get(&self, s: &str) -> Option<usize> {
        let (mut at, tag) = self.start(s);
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                return None;
            }
            if let Some(i) = self.holds(slot, tag, s) {
                return Some(i);
            }
            at = (at + 1) & self.mask;
        }
    }

    /// The position in `slot` if it is that of id `s`.
    fn holds(&self, slot: u64, tag: u64, s: &str) -> Option<usize> {
        let i = (slot & ((1 << POSITION_BITS) - 1)) as usize - 1;
        (slot & !((1 << POSITION_BITS) - 1) == tag && self.ids.get(i) == s).then_some(i)
    }
}

/// Refuses the batch if its in-batch edges form a cycle, naming every task
/// on a cycle or downstream of one. `edge_parents` lists the parent of each
/// edge, grouped by child in batch order, `indegree[c]` for child `c`.
fn find_cycle(
    ids: &Packed,
    edge_parents: &[usize],
    mut indegree: Vec<usize>,
) -> Result<(), RuleError> {
    let n = indegree.len();
    // Children lists in one array (compressed rows): `children[start[p]..
    // start[p + 1]]` are the batch children of node `p`.
    let mut start = vec![0usize; n + 1];
    for &p in edge_parents {
        start[p + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut children = vec![0usize; edge_parents.len()];
    let mut edges = edge_parents.iter();
    for (c, &d) in indegree.iter().enumerate() {
        for &p in edges.by_ref().take(d) {
            children[fill[p]] = c;
            fill[p] += 1;
        }
    }
    drop(fill);

    // Kahn's algorithm: whatever cannot be ordered lies on (or behind) a cycle.
    let mut queue: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
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
    if ordered < n {
        let stuck: Vec<&str> = (0..n)
            .filter(|&i| indegree[i] > 0)
            .map(|i| ids.get(i))
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

/// A number as error messages echo it: plainly when that is short
/// (`0.0001`, `2.5`, `100000`), in exponent form otherwise (`1e300`,
/// `1e-300`, which plain notation writes with some 300 digits). Either way
/// the shortest text that reads back as the same number.
pub fn fmt_number(x: f64) -> String {
    let plain = x == 0.0 || !x.is_finite() || (1e-4..1e15).contains(&x.abs());
    if plain {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
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

#[cfg(test)]
mod tests {
    use super::fmt_number;

    #[test]
    fn numbers_are_echoed_short_and_read_back_the_same() {
        for (x, shown) in [
            (0.0, "0"),
            (2.5, "2.5"),
            (0.0001, "0.0001"),
            (100_000.0, "100000"),
            (-3.0, "-3"),
            (1e-300, "1e-300"),
            (1e300, "1e300"),
            (1.5e-7, "1.5e-7"),
            (f64::MAX, "1.7976931348623157e308"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(fmt_number(x), shown);
        }
        for x in [1e-300, 123.456, 9.999e14, 1e15, 5e-324, -7.25e-5] {
            let s = fmt_number(x);
            assert!(s.len() <= 24, "{s}");
            assert_eq!(s.parse::<f64>().unwrap(), x, "{s}");
        }
    }
}
