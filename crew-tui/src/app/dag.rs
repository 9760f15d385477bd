//! A group's tasks indexed as a DAG, and the flattened list of visible rows
//! the tree view draws.
//!
//! Built for groups of 100k tasks: tasks live in an arena addressed by
//! `u32`; an update that changes only a task's fields replaces it in place
//! and leaves the rows alone (unless a filter depends on it); a change of
//! structure marks the index dirty and [`Dag::settle`] rebuilds children and
//! rows once per batch, in linear time.

use crate::app::state::task_status;
use crew_core::wire::StatusCounts;
use crew_core::{Task, TaskStatus, Timestamp};
use std::collections::{BTreeSet, HashMap, HashSet};

/// One task and its resolved edges.
#[derive(Clone, Debug)]
pub struct Node {
    /// The task as last seen.
    pub task: Task,
    /// Parents present in the group (arena indices).
    pub parents: Vec<u32>,
    /// Children present in the group (arena indices).
    pub children: Vec<u32>,
    alive: bool,
}

/// What the text filter matches against: every task's name, id and
/// worker, lowercased once when the task arrives or changes rather than on
/// every keystroke, and kept in one buffer apart from the tasks so that a
/// keystroke scans a few megabytes in order instead of visiting 100k tasks.
#[derive(Clone, Debug, Default)]
struct SearchIndex {
    /// Every key, one after the other (replaced keys leave garbage behind
    /// until [`SearchIndex::compact`]).
    text: String,
    /// By arena index.
    keys: Vec<SearchKey>,
    /// Bytes of `text` no key points at any more.
    garbage: usize,
}

/// One task's place in [`SearchIndex::text`]: name, id, worker.
#[derive(Clone, Copy, Debug, Default)]
struct SearchKey {
    start: usize,
    id_at: usize,
    worker_at: usize,
    end: usize,
}

impl SearchIndex {
    fn clear(&mut self) {
        self.text.clear();
        self.keys.clear();
        self.garbage = 0;
    }

    /// Records (or replaces) the key of task `i`.
    fn set(&mut self, i: u32, t: &Task) {
        let i = i as usize;
        if self.keys.len() <= i {
            self.keys.resize(i + 1, SearchKey::default());
        }
        let old = self.keys[i];
        self.garbage += old.end - old.start;
        let start = self.text.len();
        push_lower(&mut self.text, &t.name);
        let id_at = self.text.len();
        push_lower(&mut self.text, &t.id);
        let worker_at = self.text.len();
        push_lower(&mut self.text, &t.worker);
        self.keys[i] = SearchKey {
            start,
            id_at,
            worker_at,
            end: self.text.len(),
        };
        if self.garbage > 1 << 20 && self.garbage > self.text.len() / 2 {
            self.compact();
        }
    }

    /// Forgets task `i` (an empty key matches nothing).
    fn unset(&mut self, i: u32) {
        if let Some(k) = self.keys.get_mut(i as usize) {
            self.garbage += k.end - k.start;
            *k = SearchKey::default();
        }
    }

    fn compact(&mut self) {
        let mut text = String::with_capacity(self.text.len() - self.garbage);
        for k in &mut self.keys {
            let base = text.len();
            text.push_str(self.text.get(k.start..k.end).unwrap_or(""));
            *k = SearchKey {
                start: base,
                id_at: base + (k.id_at - k.start),
                worker_at: base + (k.worker_at - k.start),
                end: text.len(),
            };
        }
        self.text = text;
        self.garbage = 0;
    }

    /// The name, id and worker of task `i`, lowercased.
    fn fields(&self, i: u32) -> [&str; 3] {
        let k = self.keys.get(i as usize).copied().unwrap_or_default();
        let f = |a: usize, b: usize| self.text.get(a..b).unwrap_or("");
        [
            f(k.start, k.id_at),
            f(k.id_at, k.worker_at),
            f(k.worker_at, k.end),
        ]
    }

    /// Whether one of task `i`'s fields contains `needle` (from
    /// [`crew_core::wire::search_needle`]), as the daemon's bulk filter
    /// decides it ([`crew_core::wire::search_matches`]); the joined text
    /// only rules tasks out quickly.
    fn contains(&self, i: u32, needle: &str) -> bool {
        let k = self.keys.get(i as usize).copied().unwrap_or_default();
        let Some(all) = self.text.get(k.start..k.end) else {
            return false;
        };
        if !all.contains(needle) {
            return false;
        }
        crew_core::wire::search_matches(needle, self.fields(i))
    }
}

/// Appends `s` lowercased, without allocating when it is ASCII.
fn push_lower(out: &mut String, s: &str) {
    if s.is_ascii() {
        let at = out.len();
        out.push_str(s);
        if let Some(tail) = out.get_mut(at..) {
            tail.make_ascii_lowercase();
        }
    } else {
        out.push_str(&s.to_lowercase());
    }
}

/// How a row shows its task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKind {
    /// The task itself, under its first parent (or as a root).
    Primary,
    /// A reference to a task shown under another of its parents; opening it
    /// jumps to the primary row.
    Ref,
}

/// One visible row of the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    /// The task (arena index).
    pub node: u32,
    /// Indentation level.
    pub depth: u16,
    /// Primary or reference.
    pub kind: RowKind,
    /// Whether the task has children.
    pub has_children: bool,
    /// Whether those children are shown.
    pub expanded: bool,
    /// Shown only as the ancestor of a match (dimmed).
    pub context: bool,
}

/// What the tree shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DagFilter {
    /// Only tasks in this status (with their ancestors for context).
    pub status: Option<TaskStatus>,
    /// Only tasks whose name, id or worker contains this (case-insensitive).
    pub text: String,
    /// Only this task's upstream and downstream.
    pub lineage: Option<String>,
}

impl DagFilter {
    /// Whether anything is filtered out.
    pub fn active(&self) -> bool {
        self.status.is_some() || !self.text.is_empty() || self.lineage.is_some()
    }
}

/// A group's tasks as a DAG with its visible rows.
#[derive(Clone, Debug, Default)]
pub struct Dag {
    nodes: Vec<Node>,
    index: HashMap<String, u32>,
    collapsed: HashSet<u32>,
    rows: Vec<Row>,
    filter: DagFilter,
    counts: StatusCounts,
    search: SearchIndex,
    structure_dirty: bool,
    rows_dirty: bool,
    dead: usize,
    /// Tasks the daemon reported `delayed` whose `runAfter` was still ahead
    /// when they arrived, by `runAfter`: they become ready locally once it
    /// passes (see [`Dag::release_due`]).
    due: BTreeSet<(Timestamp, u32)>,
    /// The clock as of the last [`Dag::release_due`].
    clock: Timestamp,
}

impl Dag {
    /// A DAG of these tasks.
    pub fn from_tasks(tasks: Vec<Task>) -> Self {
        let mut d = Dag::default();
        d.load(tasks);
        d
    }

    /// An empty DAG whose clock starts at `now`: a task that arrives
    /// `delayed` with its `runAfter` already behind `now` is left delayed.
    pub fn at(now: Timestamp) -> Self {
        Dag {
            clock: now,
            ..Dag::default()
        }
    }

    /// Replaces every task (a snapshot), keeping collapse state and filter by
    /// task id.
    pub fn load(&mut self, tasks: Vec<Task>) {
        let collapsed = self.collapsed_ids();
        self.load_keeping(tasks, collapsed);
    }

    fn collapsed_ids(&self) -> HashSet<String> {
        self.collapsed
            .iter()
            .filter_map(|i| self.node(*i))
            .map(|n| n.task.id.clone())
            .collect()
    }

    fn load_keeping(&mut self, tasks: Vec<Task>, collapsed: HashSet<String>) {
        self.nodes.clear();
        self.index.clear();
        self.search.clear();
        self.due.clear();
        self.counts = StatusCounts::default();
        self.dead = 0;
        for t in tasks {
            self.upsert(t);
        }
        self.collapsed = collapsed
            .iter()
            .filter_map(|id| self.index.get(id).copied())
            .collect();
        self.structure_dirty = true;
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the group has no task.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Tasks by status (kept exact on every change).
    pub fn counts(&self) -> &StatusCounts {
        &self.counts
    }

    /// The visible rows (valid after [`Dag::settle`]).
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The filter in force.
    pub fn filter(&self) -> &DagFilter {
        &self.filter
    }

    /// Changes the filter (rows are rebuilt at the next settle).
    pub fn set_filter(&mut self, f: DagFilter) {
        if f != self.filter {
            self.filter = f;
            self.rows_dirty = true;
        }
    }

    /// A node by arena index.
    pub fn node(&self, i: u32) -> Option<&Node> {
        self.nodes.get(i as usize).filter(|n| n.alive)
    }

    /// A task by arena index.
    pub fn task(&self, i: u32) -> Option<&Task> {
        self.node(i).map(|n| &n.task)
    }

    /// A task's arena index by id.
    pub fn index_of(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// A task by id.
    pub fn get(&self, id: &str) -> Option<&Task> {
        self.index_of(id).and_then(|i| self.task(i))
    }

    /// Every live task, in arena order.
    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.nodes.iter().filter(|n| n.alive).map(|n| &n.task)
    }

    /// Inserts or replaces a task.
    pub fn upsert(&mut self, task: Task) {
        let status = task_status(&task);
        match self.index.get(&task.id).copied() {
            Some(i) => {
                let Some(node) = self.nodes.get_mut(i as usize) else {
                    return;
                };
                let old = task_status(&node.task);
                *self.counts.get_mut(old) = self.counts.get(old).saturating_sub(1);
                *self.counts.get_mut(status) += 1;
                if node.task.parent_ids != task.parent_ids {
                    self.structure_dirty = true;
                }
                if self.filter.active() {
                    self.rows_dirty = true;
                }
                if node.task.name != task.name || node.task.worker != task.worker {
                    self.search.set(i, &task);
                }
                if old == TaskStatus::Delayed {
                    self.due.remove(&(node.task.run_after, i));
                }
                node.task = task;
                self.track_delay(i);
            }
            None => {
                let i = self.nodes.len() as u32;
                self.index.insert(task.id.clone(), i);
                self.search.set(i, &task);
                self.nodes.push(Node {
                    task,
                    parents: Vec::new(),
                    children: Vec::new(),
                    alive: true,
                });
                *self.counts.get_mut(status) += 1;
                self.structure_dirty = true;
                self.track_delay(i);
            }
        }
    }

    /// Queues a delayed task for [`Dag::release_due`] when its `runAfter`
    /// is still ahead: one that is delayed with `runAfter` already passed is
    /// held by something else (its workgroup) and is left as the daemon
    /// says.
    fn track_delay(&mut self, i: u32) {
        let Some(node) = self.nodes.get(i as usize) else {
            return;
        };
        if task_status(&node.task) == TaskStatus::Delayed && node.task.run_after > self.clock {
            self.due.insert((node.task.run_after, i));
        }
    }

    /// Shows as `ready` every task the daemon reported `delayed` whose
    /// `runAfter` has passed by `now`, when `ready(task)` (the task's status
    /// derived again from its group and workgroup) agrees. The daemon stays
    /// the authority: its next word on the task replaces this. Returns how
    /// many tasks changed.
    pub fn release_due(&mut self, now: Timestamp, ready: impl Fn(&Task) -> bool) -> usize {
        self.clock = self.clock.max(now);
        let mut changed = 0;
        while let Some(&(at, i)) = self.due.first() {
            if at > now {
                break;
            }
            self.due.pop_first();
            let parents_complete = self.nodes.get(i as usize).is_some_and(|n| {
                n.task.parent_ids.iter().all(|p| {
                    self.get(p)
                        .is_some_and(|t| task_status(t) == TaskStatus::Completed)
                })
            });
            let Some(node) = self.nodes.get_mut(i as usize).filter(|n| n.alive) else {
                continue;
            };
            if task_status(&node.task) != TaskStatus::Delayed
                || !parents_complete
                || !ready(&node.task)
            {
                continue;
            }
            node.task.status = Some(TaskStatus::Ready);
            self.counts.delayed = self.counts.delayed.saturating_sub(1);
            self.counts.ready += 1;
            changed += 1;
        }
        if changed > 0 && self.filter.active() {
            self.rows_dirty = true;
        }
        changed
    }

    /// Removes a task (its children stay, as roots, until the daemon deletes
    /// them too).
    pub fn remove(&mut self, id: &str) {
        if let Some(i) = self.index.remove(id) {
            let Some(node) = self.nodes.get_mut(i as usize) else {
                return;
            };
            let old = task_status(&node.task);
            *self.counts.get_mut(old) = self.counts.get(old).saturating_sub(1);
            if old == TaskStatus::Delayed {
                self.due.remove(&(node.task.run_after, i));
            }
            node.alive = false;
            self.search.unset(i);
            self.collapsed.remove(&i);
            self.dead += 1;
            self.structure_dirty = true;
        }
    }

    /// Whether the rows must be rebuilt before they are read.
    pub fn is_dirty(&self) -> bool {
        self.structure_dirty || self.rows_dirty
    }

    /// Rebuilds what changed: edges when the structure changed, rows when
    /// the structure, the filter or the expansion changed.
    pub fn settle(&mut self) {
        if self.structure_dirty {
            if self.dead > 1024 && self.dead * 2 > self.nodes.len() {
                self.compact();
            }
            self.rebuild_edges();
            self.structure_dirty = false;
            self.rows_dirty = true;
        }
        if self.rows_dirty {
            self.rebuild_rows();
            self.rows_dirty = false;
        }
    }

    fn compact(&mut self) {
        let collapsed = self.collapsed_ids();
        let tasks: Vec<Task> = std::mem::take(&mut self.nodes)
            .into_iter()
            .filter(|n| n.alive)
            .map(|n| n.task)
            .collect();
        self.load_keeping(tasks, collapsed);
    }

    fn rebuild_edges(&mut self) {
        for n in &mut self.nodes {
            n.parents.clear();
            n.children.clear();
        }
        for i in 0..self.nodes.len() {
            if !self.nodes[i].alive {
                continue;
            }
            let mut parents = Vec::with_capacity(self.nodes[i].task.parent_ids.len());
            for pid in &self.nodes[i].task.parent_ids {
                if let Some(&p) = self.index.get(pid) {
                    if p as usize != i && !parents.contains(&p) {
                        parents.push(p);
                    }
                }
            }
            for &p in &parents {
                self.nodes[p as usize].children.push(i as u32);
            }
            self.nodes[i].parents = parents;
        }
    }

    /// The parent a task is shown under: its first parent present in the
    /// group (and kept by the filter, when one is given).
    fn display_parent(&self, i: u32, kept: Option<&[u8]>) -> Option<u32> {
        let n = &self.nodes[i as usize];
        n.parents
            .iter()
            .copied()
            .find(|p| kept.is_none_or(|k| k[*p as usize] != 0))
    }

    /// Whether task `i` passes the text and status filters. The text is
    /// tried first: it reads only the search index, not the task.
    fn matches(&self, i: u32, needle: &str) -> bool {
        if !needle.is_empty() && !self.search.contains(i, needle) {
            return false;
        }
        let Some(node) = self.node(i) else {
            return false;
        };
        self.filter
            .status
            .is_none_or(|s| task_status(&node.task) == s)
    }

    /// Marks per node: 0 hidden, 1 context (ancestor of a match), 2 match.
    fn kept(&self) -> Option<Vec<u8>> {
        if !self.filter.active() {
            return None;
        }
        let n = self.nodes.len();
        let mut kept = vec![0u8; n];
        let needle = crew_core::wire::search_needle(&self.filter.text);
        let lineage = self
            .filter
            .lineage
            .as_deref()
            .and_then(|id| self.index_of(id))
            .map(|i| self.lineage(i));
        for (i, k) in kept.iter_mut().enumerate() {
            if lineage.as_ref().is_some_and(|l| !l.contains(&(i as u32))) {
                continue;
            }
            if self.matches(i as u32, &needle) {
                *k = 2;
            }
        }
        // Keep the display ancestors of each match, for context.
        let matched: Vec<u32> = (0..n as u32).filter(|&i| kept[i as usize] == 2).collect();
        for i in matched {
            let mut cur = i;
            while let Some(p) = self.display_parent(cur, None) {
                if kept[p as usize] != 0 {
                    break;
                }
                kept[p as usize] = 1;
                cur = p;
            }
        }
        Some(kept)
    }

    fn rebuild_rows(&mut self) {
        let kept = self.kept();
        let kept = kept.as_deref();
        let filtering = kept.is_some();
        let n = self.nodes.len();
        let mut placed = vec![false; n];
        let mut rows = Vec::with_capacity(if filtering { 256 } else { self.index.len() });
        let mut stack: Vec<(u32, u16, Option<u32>)> = Vec::new();
        let is_kept = |i: u32| kept.is_none_or(|k| k[i as usize] != 0);
        let roots: Vec<u32> = (0..n as u32)
            .filter(|&i| is_kept(i) && self.nodes[i as usize].alive)
            .filter(|&i| self.display_parent(i, kept).is_none())
            .collect();
        let mut pending_roots = roots.into_iter().rev().collect::<Vec<_>>();
        let mut next_orphan = 0usize;
        loop {
            if stack.is_empty() {
                if let Some(r) = pending_roots.pop() {
                    stack.push((r, 0, None));
                } else {
                    // Anything not reached (a cycle in foreign data) becomes a root.
                    while next_orphan < n
                        && (placed[next_orphan]
                            || !is_kept(next_orphan as u32)
                            || !self.nodes[next_orphan].alive)
                    {
                        next_orphan += 1;
                    }
                    if next_orphan >= n {
                        break;
                    }
                    stack.push((next_orphan as u32, 0, None));
                }
            }
            let Some((i, depth, via)) = stack.pop() else {
                break;
            };
            let node = &self.nodes[i as usize];
            let primary = via.is_none() || self.display_parent(i, kept) == via;
            let primary = primary && !placed[i as usize];
            let has_children = node.children.iter().any(|&c| is_kept(c));
            if primary {
                placed[i as usize] = true;
                let expanded = filtering || !self.collapsed.contains(&i);
                rows.push(Row {
                    node: i,
                    depth,
                    kind: RowKind::Primary,
                    has_children,
                    expanded,
                    context: kept.is_some_and(|k| k[i as usize] == 1),
                });
                if !expanded {
                    // Hidden under a collapsed node: placed, not shown.
                    let mut hide: Vec<u32> = vec![i];
                    while let Some(h) = hide.pop() {
                        for &c in &self.nodes[h as usize].children {
                            if !placed[c as usize]
                                && is_kept(c)
                                && self.display_parent(c, kept) == Some(h)
                            {
                                placed[c as usize] = true;
                                hide.push(c);
                            }
                        }
                    }
                } else {
                    for &c in node.children.iter().rev().filter(|&&c| is_kept(c)) {
                        // References only to matches, not to context rows.
                        let is_ref = self.display_parent(c, kept) != Some(i);
                        if is_ref && kept.is_some_and(|k| k[c as usize] != 2) {
                            continue;
                        }
                        stack.push((c, depth.saturating_add(1), Some(i)));
                    }
                }
            } else {
                rows.push(Row {
                    node: i,
                    depth,
                    kind: RowKind::Ref,
                    has_children,
                    expanded: false,
                    context: false,
                });
            }
        }
        self.rows = rows;
    }

    /// Expands or collapses one task's children.
    pub fn toggle(&mut self, i: u32) {
        if !self.collapsed.remove(&i) {
            self.collapsed.insert(i);
        }
        self.rows_dirty = true;
    }

    /// Expands everything.
    pub fn expand_all(&mut self) {
        self.collapsed.clear();
        self.rows_dirty = true;
    }

    /// Collapses every task that has children.
    pub fn collapse_all(&mut self) {
        self.collapsed = (0..self.nodes.len() as u32)
            .filter(|i| {
                let n = &self.nodes[*i as usize];
                n.alive && !n.children.is_empty()
            })
            .collect();
        self.rows_dirty = true;
    }

    /// Makes a task visible: expands its display ancestors.
    pub fn reveal(&mut self, i: u32) {
        let mut cur = i;
        let mut guard = 0;
        while let Some(p) = self.display_parent(cur, None) {
            if self.collapsed.remove(&p) {
                self.rows_dirty = true;
            }
            cur = p;
            guard += 1;
            if guard > self.nodes.len() {
                break;
            }
        }
    }

    /// The row of a task's primary placement.
    pub fn primary_row(&self, i: u32) -> Option<usize> {
        self.rows
            .iter()
            .position(|r| r.node == i && r.kind == RowKind::Primary)
    }

    /// A task and all its descendants (what a delete removes).
    pub fn descendants(&self, i: u32) -> Vec<u32> {
        self.walk(i, |n| &n.children)
    }

    /// A task and all its ancestors.
    pub fn ancestors(&self, i: u32) -> Vec<u32> {
        self.walk(i, |n| &n.parents)
    }

    fn walk(&self, i: u32, next: impl Fn(&Node) -> &Vec<u32>) -> Vec<u32> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut stack = vec![i];
        while let Some(c) = stack.pop() {
            if !seen.insert(c) {
                continue;
            }
            let Some(node) = self.node(c) else { continue };
            out.push(c);
            stack.extend(next(node).iter().copied());
        }
        out
    }

    /// Upstream and downstream of a task, itself included.
    pub fn lineage(&self, i: u32) -> HashSet<u32> {
        let mut s: HashSet<u32> = self.descendants(i).into_iter().collect();
        s.extend(self.ancestors(i));
        s
    }

    /// How many tasks deleting these would remove (descendants counted once).
    pub fn delete_count(&self, ids: &[u32]) -> usize {
        let mut all = HashSet::new();
        for &i in ids {
            all.extend(self.descendants(i));
        }
        all.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn task(id: &str, parents: &[&str]) -> Task {
        let mut t: Task =
            serde_json::from_value(serde_json::json!({"id": id, "taskGroupId": "g"})).unwrap();
        t.name = format!("task {id}");
        t.parent_ids = parents.iter().map(|s| s.to_string()).collect();
        t.status = Some(TaskStatus::Ready);
        t
    }

    fn ids(d: &Dag) -> Vec<String> {
        d.rows()
            .iter()
            .map(|r| {
                let t = d.task(r.node).unwrap();
                let mark = if r.kind == RowKind::Ref { "&" } else { "" };
                format!("{}{mark}{}", " ".repeat(r.depth as usize), t.id)
            })
            .collect()
    }

    fn diamond() -> Dag {
        let mut d = Dag::from_tasks(vec![
            task("a", &[]),
            task("b", &["a"]),
            task("c", &["a"]),
            task("d", &["b", "c"]),
            task("e", &[]),
        ]);
        d.settle();
        d
    }

    #[test]
    fn shared_child_is_expanded_once_and_referenced_elsewhere() {
        let d = diamond();
        assert_eq!(ids(&d), vec!["a", " b", "  d", " c", "  &d", "e"]);
    }

    #[test]
    fn collapse_and_expand() {
        let mut d = diamond();
        let a = d.index_of("a").unwrap();
        d.toggle(a);
        d.settle();
        assert_eq!(ids(&d), vec!["a", "e"]);
        d.expand_all();
        d.collapse_all();
        d.settle();
        assert_eq!(ids(&d), vec!["a", "e"]);
        d.reveal(d.index_of("d").unwrap());
        d.settle();
        assert_eq!(
            ids(&d),
            vec!["a", " b", "  d", " c"]
                .into_iter()
                .chain(["e"])
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn status_filter_keeps_ancestors_for_context() {
        let mut d = diamond();
        let mut t = d.get("d").unwrap().clone();
        t.status = Some(TaskStatus::Failed);
        d.upsert(t);
        d.set_filter(DagFilter {
            status: Some(TaskStatus::Failed),
            ..Default::default()
        });
        d.settle();
        assert_eq!(ids(&d), vec!["a", " b", "  d"]);
        assert!(d.rows()[0].context && !d.rows()[2].context);
        assert_eq!(d.counts().failed, 1);
        assert_eq!(d.counts().ready, 4);
    }

    #[test]
    fn text_filter_and_lineage() {
        let mut d = diamond();
        d.set_filter(DagFilter {
            text: "TASK E".into(),
            ..Default::default()
        });
        d.settle();
        assert_eq!(ids(&d), vec!["e"]);
        d.set_filter(DagFilter {
            lineage: Some("b".into()),
            ..Default::default()
        });
        d.settle();
        assert_eq!(ids(&d), vec!["a", " b", "  d"]);
    }

    #[test]
    fn delete_counts_descendants_once() {
        let d = diamond();
        let a = d.index_of("a").unwrap();
        let b = d.index_of("b").unwrap();
        assert_eq!(d.delete_count(&[a]), 4);
        assert_eq!(d.delete_count(&[b]), 2);
        assert_eq!(d.delete_count(&[a, b]), 4);
    }

    #[test]
    fn events_update_in_place_and_structure_changes_rebuild() {
        let mut d = diamond();
        let mut t = d.get("b").unwrap().clone();
        t.name = "renamed".into();
        d.upsert(t);
        assert!(!d.is_dirty(), "a field change must not rebuild rows");
        d.upsert(task("f", &["e"]));
        d.remove("c");
        assert!(d.is_dirty());
        d.settle();
        assert_eq!(ids(&d), vec!["a", " b", "  d", "e", " f"]);
        assert_eq!(d.len(), 5);
    }

    fn text_matches(d: &mut Dag, text: &str) -> Vec<String> {
        d.set_filter(DagFilter {
            text: text.into(),
            ..Default::default()
        });
        d.settle();
        d.rows()
            .iter()
            .filter(|r| !r.context)
            .filter_map(|r| d.task(r.node))
            .map(|t| t.id.clone())
            .collect()
    }

    #[test]
    fn text_filter_keys_are_cached_and_follow_changes() {
        let mut d = diamond();
        let e = d.index_of("e").unwrap();
        assert_eq!(d.search.fields(e), ["task e", "e", ""]);
        // A rename reaches the cached key, and the filtered rows.
        let mut t = d.get("e").unwrap().clone();
        t.name = "Fetch ÄCCOUNTS".into();
        t.worker = "Sync".into();
        d.upsert(t);
        assert_eq!(d.search.fields(e), ["fetch äccounts", "e", "sync"]);
        assert_eq!(text_matches(&mut d, "äcc"), ["e"]);
        assert_eq!(text_matches(&mut d, "SYNC"), ["e"]);
        assert!(text_matches(&mut d, "task e").is_empty());
        // A match never spans two fields (name "...accounts" + id "e").
        assert!(text_matches(&mut d, "tse").is_empty());
        // Replaced keys are garbage until compacted; compacting keeps keys.
        d.remove("a");
        assert!(d.search.garbage > 0);
        d.search.compact();
        assert_eq!(d.search.garbage, 0);
        assert_eq!(d.search.fields(e), ["fetch äccounts", "e", "sync"]);
        assert_eq!(text_matches(&mut d, "task b"), ["b"]);
        // A snapshot rebuilds every key.
        let mut tasks: Vec<Task> = d.tasks().cloned().collect();
        for t in &mut tasks {
            t.name = t.name.to_uppercase().replace("TASK", "JOB");
        }
        d.load(tasks);
        assert_eq!(text_matches(&mut d, "job b"), ["b"]);
    }

    fn delayed(id: &str, run_after: Timestamp) -> Task {
        let mut t = task(id, &[]);
        t.status = Some(TaskStatus::Delayed);
        t.run_after = run_after;
        t
    }

    #[test]
    fn delayed_tasks_are_released_when_run_after_passes() {
        let t0 = Timestamp::from_unix_millis(1_000_000);
        let mut d = Dag::at(t0);
        d.upsert(delayed("soon", t0.plus_seconds(10.0)));
        d.upsert(delayed("later", t0.plus_seconds(60.0)));
        // Delayed with runAfter already behind: held by something else.
        d.upsert(delayed("held", t0.plus_seconds(-5.0)));
        d.settle();
        assert_eq!(d.counts().delayed, 3);
        assert_eq!(d.release_due(t0.plus_seconds(9.0), |_| true), 0);
        assert_eq!(d.release_due(t0.plus_seconds(10.0), |_| true), 1);
        assert_eq!(d.get("soon").unwrap().status, Some(TaskStatus::Ready));
        assert_eq!((d.counts().delayed, d.counts().ready), (2, 1));
        // Not ready by the caller's rule (its workgroup): left as it is.
        assert_eq!(d.release_due(t0.plus_seconds(61.0), |_| false), 0);
        assert_eq!(d.get("later").unwrap().status, Some(TaskStatus::Delayed));
        assert_eq!(d.get("held").unwrap().status, Some(TaskStatus::Delayed));
        // The daemon's new word replaces the local one.
        d.upsert(delayed("soon", t0.plus_seconds(120.0)));
        assert_eq!(d.counts().delayed, 3);
        d.remove("soon");
        assert_eq!(d.release_due(t0.plus_seconds(200.0), |_| true), 0);
        assert_eq!(d.counts().delayed, 2);
    }

    #[test]
    fn cycles_and_missing_parents_do_not_hide_tasks() {
        let mut d = Dag::from_tasks(vec![
            task("x", &["y"]),
            task("y", &["x"]),
            task("z", &["missing"]),
        ]);
        d.settle();
        assert_eq!(ids(&d), vec!["z", "x", " y", "  &x"]);
    }
}
