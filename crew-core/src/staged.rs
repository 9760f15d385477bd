//! A rule's working set: reads through to the graph, remembers what the rule
//! changed (so later reads in the same rule see it), and turns that into
//! [`Changes`] at the end.

use crate::error::RuleError;
use crate::graph::{Change, Changes, GraphRead};
use crate::model::{Task, TaskGroup};
use std::collections::HashMap;

pub(crate) struct Staged<'g, G: GraphRead + ?Sized> {
    pub g: &'g G,
    /// Current view of every task the rule read or wrote: `None` = deleted.
    current: HashMap<String, Option<Task>>,
    /// The stored version of tasks the rule read (absent for new tasks).
    stored: HashMap<String, Task>,
    /// Ids in the order the rule first wrote them.
    written: Vec<String>,
    /// Children added by tasks this rule created.
    new_children: HashMap<String, Vec<String>>,
    before_tasks: Vec<Change>,
    after_tasks: Vec<Change>,
    wake: Vec<String>,
}

impl<'g, G: GraphRead + ?Sized> Staged<'g, G> {
    pub fn new(g: &'g G) -> Self {
        Staged {
            g,
            current: HashMap::new(),
            stored: HashMap::new(),
            written: Vec::new(),
            new_children: HashMap::new(),
            before_tasks: Vec::new(),
            after_tasks: Vec::new(),
            wake: Vec::new(),
        }
    }

    /// The task as this rule sees it.
    pub fn task(&mut self, id: &str) -> Result<Option<Task>, RuleError> {
        if let Some(t) = self.current.get(id) {
            return Ok(t.clone());
        }
        let t = self.g.task(id)?;
        if let Some(t) = &t {
            self.stored.insert(id.to_string(), t.clone());
        }
        self.current.insert(id.to_string(), t.clone());
        Ok(t)
    }

    /// The task as this rule sees it, if the rule has seen it (no I/O).
    pub fn peek(&self, id: &str) -> Option<Option<Task>> {
        self.current.get(id).cloned()
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

    /// Children of `id` as this rule sees them.
    pub fn children(&mut self, id: &str) -> Result<Vec<String>, RuleError> {
        let mut out = self.g.children(id)?;
        if let Some(extra) = self.new_children.get(id) {
            out.extend(extra.iter().cloned());
        }
        out.retain(|c| !matches!(self.current.get(c), Some(None)));
        Ok(out)
    }

    /// Ids with `key` in `group`, as this rule sees them.
    pub fn tasks_with_key(&mut self, group: &str, key: &str) -> Result<Vec<String>, RuleError> {
        let mut out = self.g.tasks_with_key(group, key)?;
        for (id, t) in &self.current {
            if let Some(t) = t {
                if t.task_group_id == group && t.key == key && !out.contains(id) {
                    out.push(id.clone());
                }
            }
        }
        out.retain(|id| match self.current.get(id) {
            Some(None) => false,
            Some(Some(t)) => t.key == key,
            None => true,
        });
        Ok(out)
    }

    fn mark_written(&mut self, id: &str) {
        if !self.written.iter().any(|w| w == id) {
            self.written.push(id.to_string());
        }
    }

    /// Writes a new or changed task.
    pub fn put(&mut self, task: Task) {
        let id = task.id.clone();
        if !self.stored.contains_key(&id) && !self.current.contains_key(&id) {
            for p in &task.parent_ids {
                self.new_children
                    .entry(p.clone())
                    .or_default()
                    .push(id.clone());
            }
        }
        self.mark_written(&id);
        self.current.insert(id, Some(task));
    }

    /// Deletes a task.
    pub fn delete(&mut self, id: &str) -> Result<(), RuleError> {
        self.task(id)?;
        self.mark_written(id);
        self.current.insert(id.to_string(), None);
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
            mut current,
            mut stored,
            written,
            before_tasks,
            after_tasks,
            mut wake,
            ..
        } = self;
        let mut ops = before_tasks;
        for id in written {
            let now = current.remove(&id).flatten();
            let before = stored.remove(&id);
            match (before, now) {
                (None, Some(t)) => ops.push(Change::CreateTask(t)),
                (Some(b), None) => ops.push(Change::DeleteTask(b)),
                (Some(b), Some(a)) if b != a => ops.push(Change::UpdateTask {
                    before: Box::new(b),
                    after: Box::new(a),
                }),
                _ => {}
            }
        }
        ops.extend(after_tasks);
        let deleted: std::collections::HashSet<&str> = ops
            .iter()
            .filter_map(|c| match c {
                Change::DeleteTask(t) => Some(t.id.as_str()),
                _ => None,
            })
            .collect();
        wake.retain(|w| !deleted.contains(w.as_str()));
        wake.sort();
        wake.dedup();
        Changes { ops, wake }
    }
}
