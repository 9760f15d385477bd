//! Reading the task graph, and the changes rules return.
//!
//! Rules read through [`GraphRead`] and never write: they return
//! [`Changes`], which the daemon applies in one redb write transaction (and
//! tests apply to [`MemGraph`]). Every method is a point or index lookup, so
//! a rule costs what it touches, never the size of a group.

use crate::model::{Task, TaskGroup, Workgroup};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A failure of the storage behind a [`GraphRead`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storage error: {0}")]
pub struct StoreError(pub String);

/// Read access to tasks, groups and workgroups, with the indexes rules need.
pub trait GraphRead {
    /// A task by id.
    fn task(&self, id: &str) -> Result<Option<Task>, StoreError>;
    /// A group by id.
    fn group(&self, id: &str) -> Result<Option<TaskGroup>, StoreError>;
    /// A workgroup by name (`None` when it was never paused).
    fn workgroup(&self, name: &str) -> Result<Option<Workgroup>, StoreError>;
    /// Ids of the tasks that name `id` as a parent.
    fn children(&self, id: &str) -> Result<Vec<String>, StoreError>;
    /// Ids of the tasks of `group` whose key is `key`.
    fn tasks_with_key(&self, group: &str, key: &str) -> Result<Vec<String>, StoreError>;
    /// Ids of every task of `group` (for whole-group operations only).
    fn group_task_ids(&self, group: &str) -> Result<Vec<String>, StoreError>;
    /// Ids of the incomplete tasks of `group`.
    fn incomplete_task_ids(&self, group: &str) -> Result<Vec<String>, StoreError>;
    /// Whether a task is complete (`None` when it does not exist). Storage
    /// may answer from an index without decoding the whole task.
    fn is_complete(&self, id: &str) -> Result<Option<bool>, StoreError> {
        Ok(self.task(id)?.map(|t| t.is_complete))
    }
    /// How many distinct parents of the stored task `id` are missing or
    /// not complete (`None` when the task does not exist). Storage answers
    /// from a counter it keeps, so a join of a thousand parents costs one
    /// lookup, not a thousand.
    fn incomplete_parents(&self, id: &str) -> Result<Option<u32>, StoreError> {
        let Some(t) = self.task(id)? else {
            return Ok(None);
        };
        let mut seen = std::collections::HashSet::new();
        let mut n = 0u32;
        for p in t.parent_ids.iter().filter(|p| seen.insert(p.as_str())) {
            if self.is_complete(p)? != Some(true) {
                n = n.saturating_add(1);
            }
        }
        Ok(Some(n))
    }
}

/// One change to apply, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Insert a new task.
    CreateTask(Task),
    /// Replace a task; `before` is the stored version (for index upkeep).
    UpdateTask {
        /// The task as stored before this change.
        before: Box<Task>,
        /// The task after it.
        after: Box<Task>,
    },
    /// Remove a task (the stored version).
    DeleteTask(Task),
    /// Insert a group.
    CreateGroup(TaskGroup),
    /// Replace a group.
    UpdateGroup(TaskGroup),
    /// Remove a group (its tasks are removed by their own changes).
    DeleteGroup(TaskGroup),
    /// Insert or replace a workgroup.
    PutWorkgroup(Workgroup),
}

/// What a rule decided: changes to apply atomically, and tasks whose
/// readiness may have changed without being rewritten (children of a task
/// that completed, duplicates released by key).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes {
    /// In order of application.
    pub ops: Vec<Change>,
    /// Ids the scheduler should evaluate again after the commit.
    pub wake: Vec<String>,
}

impl Changes {
    /// Whether there is nothing to apply or wake.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.wake.is_empty()
    }

    /// Appends another rule's changes.
    pub fn extend(&mut self, other: Changes) {
        self.ops.extend(other.ops);
        self.wake.extend(other.wake);
    }

    /// Number of tasks deleted.
    pub fn deleted_tasks(&self) -> u64 {
        self.ops
            .iter()
            .filter(|c| matches!(c, Change::DeleteTask(_)))
            .count() as u64
    }

    /// Number of tasks updated.
    pub fn updated_tasks(&self) -> u64 {
        self.ops
            .iter()
            .filter(|c| matches!(c, Change::UpdateTask { .. }))
            .count() as u64
    }

    /// Every task id these changes create or update (the scheduler
    /// evaluates them, with [`Changes::wake`]).
    pub fn touched_task_ids(&self) -> impl Iterator<Item = &str> {
        self.ops
            .iter()
            .filter_map(|c| match c {
                Change::CreateTask(t) => Some(t.id.as_str()),
                Change::UpdateTask { after, .. } => Some(after.id.as_str()),
                _ => None,
            })
            .chain(self.wake.iter().map(String::as_str))
    }
}

/// The whole graph in memory: the reference implementation of
/// [`GraphRead`], used by tests and property tests.
#[derive(Clone, Debug, Default)]
pub struct MemGraph {
    /// Tasks by id.
    pub tasks: BTreeMap<String, Task>,
    /// Groups by id.
    pub groups: BTreeMap<String, TaskGroup>,
    /// Workgroups by name.
    pub workgroups: BTreeMap<String, Workgroup>,
    children: HashMap<String, BTreeSet<String>>,
    by_group: HashMap<String, BTreeSet<String>>,
    by_key: HashMap<(String, String), BTreeSet<String>>,
}

impl MemGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies changes as the daemon would, keeping the children index.
    pub fn apply(&mut self, changes: &Changes) {
        for op in &changes.ops {
            match op {
                Change::CreateTask(t) => {
                    for p in &t.parent_ids {
                        self.children
                            .entry(p.clone())
                            .or_default()
                            .insert(t.id.clone());
                    }
                    self.index(t);
                    self.tasks.insert(t.id.clone(), t.clone());
                }
                Change::UpdateTask { after, .. } => {
                    if let Some(before) = self.tasks.get(&after.id).cloned() {
                        self.unindex(&before);
                    }
                    self.index(after);
                    self.tasks.insert(after.id.clone(), (**after).clone());
                }
                Change::DeleteTask(t) => {
                    for p in &t.parent_ids {
                        if let Some(set) = self.children.get_mut(p) {
                            set.remove(&t.id);
                        }
                    }
                    if let Some(before) = self.tasks.remove(&t.id) {
                        self.unindex(&before);
                    }
                }
                Change::CreateGroup(g) | Change::UpdateGroup(g) => {
                    self.groups.insert(g.id.clone(), g.clone());
                }
                Change::DeleteGroup(g) => {
                    self.groups.remove(&g.id);
                }
                Change::PutWorkgroup(w) => {
                    self.workgroups.insert(w.name.clone(), w.clone());
                }
            }
        }
    }
}

impl MemGraph {
    fn index(&mut self, t: &Task) {
        self.by_group
            .entry(t.task_group_id.clone())
            .or_default()
            .insert(t.id.clone());
        if !t.key.is_empty() {
            self.by_key
                .entry((t.task_group_id.clone(), t.key.clone()))
                .or_default()
                .insert(t.id.clone());
        }
    }

    fn unindex(&mut self, t: &Task) {
        if let Some(s) = self.by_group.get_mut(&t.task_group_id) {
            s.remove(&t.id);
        }
        if let Some(s) = self
            .by_key
            .get_mut(&(t.task_group_id.clone(), t.key.clone()))
        {
            s.remove(&t.id);
        }
    }
}

impl GraphRead for MemGraph {
    fn task(&self, id: &str) -> Result<Option<Task>, StoreError> {
        Ok(self.tasks.get(id).cloned())
    }
    fn group(&self, id: &str) -> Result<Option<TaskGroup>, StoreError> {
        Ok(self.groups.get(id).cloned())
    }
    fn workgroup(&self, name: &str) -> Result<Option<Workgroup>, StoreError> {
        Ok(self.workgroups.get(name).cloned())
    }
    fn children(&self, id: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .children
            .get(id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default())
    }
    fn tasks_with_key(&self, group: &str, key: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .by_key
            .get(&(group.to_string(), key.to_string()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default())
    }
    fn group_task_ids(&self, group: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .by_group
            .get(group)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default())
    }
    fn incomplete_task_ids(&self, group: &str) -> Result<Vec<String>, StoreError> {
        let ids = self.group_task_ids(group)?;
        Ok(ids
            .into_iter()
            .filter(|id| self.tasks.get(id).is_some_and(|t| !t.is_complete))
            .collect())
    }
}
