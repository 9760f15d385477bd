//! A rule's working set: reads through to the graph, remembers what the rule
//! changed (so later reads in the same rule see it), and turns that into
//! [`Changes`] at the end.
//!
//! Every operation costs O(1) hash lookups (plus what it returns), so a rule
//! that creates or rewrites 100k tasks stays linear.

use crate::error::RuleError;
use crate::graph::{Change, Changes, GraphRead};
use crate::model::{Task, TaskGroup};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

/// What the rule knows about one task id.
struct Slot {
    /// The task as the rule sees it now: `None` = absent or deleted.
    task: Option<Task>,
    /// The stored version, if the task existed when the rule read it.
    stored: Option<Box<Task>>,
    /// The rule wrote (put or deleted) it.
    written: bool,
    /// The rule created it (it was not stored).
    created: bool,
}

pub(crate) struct Staged<'g, G: GraphRead + ?Sized> {
    pub g: &'g G,
    /// Every task the rule read or wrote, in the order it first saw them.
    slots: Vec<Slot>,
    /// Slot of each id.
    index: HashMap<String, usize>,
    /// Slots in the order the rule first wrote them.
    written: Vec<usize>,
    /// Slots of the tasks the rule created, in order (their parents'
    /// children lists are derived from them on demand).
    created: Vec<usize>,
    /// Ids written by this rule under each (group, key), so that key
    /// lookups cost the number of same-key tasks, not everything staged.
    staged_keys: HashMap<(String, String), Vec<String>>,
    before_tasks: Vec<Change>,
    after_tasks: Vec<Change>,
    wake: Vec<String>,
}

impl<'g, G: GraphRead + ?Sized> Staged<'g, G> {
    pub fn new(g: &'g G) -> Self {
        Staged {
            g,
            slots: Vec::new(),
            index: HashMap::new(),
            written: Vec::new(),
            created: Vec::new(),
            staged_keys: HashMap::new(),
            before_tasks: Vec::new(),
            after_tasks: Vec::new(),
            wake: Vec::new(),
        }
    }

    /// Makes room for `n` more tasks (a batch about to be written).
    pub fn reserve(&mut self, n: usize) {
        self.slots.reserve(n);
        self.index.reserve(n);
        self.written.reserve(n);
        self.created.reserve(n);
    }

    fn slot(&self, id: &str) -> Option<&Slot> {
        self.index.get(id).map(|&i| &self.slots[i])
    }

    fn add_slot(&mut self, id: String, slot: Slot) -> usize {
        let i = self.slots.len();
        self.slots.push(slot);
        self.index.insert(id, i);
        i
    }

    /// The task as this rule sees it.
    pub fn task(&mut self, id: &str) -> Result<Option<Task>, RuleError> {
        if let Some(s) = self.slot(id) {
            return Ok(s.task.clone());
        }
        let t = self.g.task(id)?;
        self.add_slot(
            id.to_string(),
            Slot {
                task: t.clone(),
                stored: t.clone().map(Box::new),
                written: false,
                created: false,
            },
        );
        Ok(t)
    }

    /// The task as this rule sees it, if the rule has seen it (no I/O).
    pub fn peek(&self, id: &str) -> Option<Option<Task>> {
        self.slot(id).map(|s| s.task.clone())
    }

    /// The task, or a not-found error.
    pub fn require(&mut self, id: &str) -> Result<Task, RuleError> {
        self.task(id)?.ok_or_else(|| RuleError::task_not_found(id))
    }

    /// The group, or a not-found error.
    pub fn require_group(&self, id: &str) -> Result<TaskGroup, RuleError> {
        self.g
            .group(id)?
            .ok_or_else(|| RuleError::group_not_found(id))
    }

    fn is_deleted(&self, id: &str) -> bool {
        self.slot(id).is_some_and(|s| s.task.is_none())
    }

    /// Children of `id` as this rule sees them.
    pub fn children(&mut self, id: &str) -> Result<Vec<String>, RuleError> {
        let mut out = self.g.children(id)?;
        out.retain(|c| !self.is_deleted(c));
        for &c in &self.created {
            if let Some(t) = &self.slots[c].task {
                if t.parent_ids.iter().any(|p| p == id) {
                    out.push(t.id.clone());
                }
            }
        }
        Ok(out)
    }

    /// Ids with `key` in `group`, as this rule sees them.
    pub fn tasks_with_key(&mut self, group: &str, key: &str) -> Result<Vec<String>, RuleError> {
        let mut out = self.g.tasks_with_key(group, key)?;
        if let Some(staged) = self.staged_keys.get(&(group.to_string(), key.to_string())) {
            let mut seen: HashSet<&str> = out.iter().map(String::as_str).collect();
            let extra: Vec<String> = staged
                .iter()
                .filter(|id| seen.insert(id.as_str()))
                .cloned()
                .collect();
            out.extend(extra);
        }
        out.retain(|id| match self.slot(id) {
            Some(Slot { task: None, .. }) => false,
            Some(Slot { task: Some(t), .. }) => t.key == key && t.task_group_id == group,
            None => true,
        });
        Ok(out)
    }

    /// Writes a new or changed task.
    pub fn put(&mut self, task: Task) {
        if !task.key.is_empty() {
            // A task rewritten under the same key is listed once.
            let listed = self
                .slot(&task.id)
                .and_then(|s| s.task.as_ref())
                .is_some_and(|t| t.key == task.key && t.task_group_id == task.task_group_id);
            if !listed {
                self.staged_keys
                    .entry((task.task_group_id.clone(), task.key.clone()))
                    .or_default()
                    .push(task.id.clone());
            }
        }
        match self.index.entry(task.id.clone()) {
            Entry::Occupied(e) => {
                let i = *e.get();
                let slot = &mut self.slots[i];
                if !slot.written {
                    slot.written = true;
                    self.written.push(i);
                }
                if slot.stored.is_none() && !slot.created {
                    slot.created = true;
                    self.created.push(i);
                }
                slot.task = Some(task);
            }
            Entry::Vacant(e) => {
                let i = self.slots.len();
                e.insert(i);
                self.slots.push(Slot {
                    task: Some(task),
                    stored: None,
                    written: true,
                    created: true,
                });
                self.written.push(i);
                self.created.push(i);
            }
        }
    }

    /// Deletes a task.
    pub fn delete(&mut self, id: &str) -> Result<(), RuleError> {
        self.task(id)?;
        if let Some(&i) = self.index.get(id) {
            let slot = &mut self.slots[i];
            if !slot.written {
                slot.written = true;
                self.written.push(i);
            }
            slot.task = None;
        }
        Ok(())
    }

    /// Asks the scheduler to look at `id` again after the commit.
    pub fn wake(&mut self, id: impl Into<String>) {
        self.wake.push(id.into());
    }

    /// A group or workgroup change applied before the task changes.
    pub fn before_tasks(&mut self, c: Change) {
        self.before_tasks.push(c);
    }

    /// A group change applied after the task changes (group deletion).
    pub fn after_tasks(&mut self, c: Change) {
        self.after_tasks.push(c);
    }

    pub fn finish(self) -> Changes {
        let Staged {
            mut slots,
            written,
            before_tasks,
            after_tasks,
            mut wake,
            ..
        } = self;
        let mut ops = before_tasks;
        ops.reserve(written.len() + after_tasks.len());
        let mut deleted: HashSet<String> = HashSet::new();
        for i in written {
            let slot = &mut slots[i];
            match (slot.stored.take(), slot.task.take()) {
                (None, Some(t)) => ops.push(Change::CreateTask(t)),
                (Some(b), None) => {
                    if !wake.is_empty() {
                        deleted.insert(b.id.clone());
                    }
                    ops.push(Change::DeleteTask(*b))
                }
                (Some(b), Some(a)) if *b != a => ops.push(Change::UpdateTask {
                    before: b,
                    after: Box::new(a),
                }),
                _ => {}
            }
        }
        ops.extend(after_tasks);
        wake.retain(|w| !deleted.contains(w));
        wake.sort();
        wake.dedup();
        Changes { ops, wake }
    }
}
