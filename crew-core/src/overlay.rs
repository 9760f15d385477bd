//! A graph with some rules' changes applied in memory, so that several
//! rules can run one after the other and their effect be committed as one
//! set of [`Changes`] (bulk actions).

use crate::error::RuleError;
use crate::graph::{Change, Changes, GraphRead, StoreError};
use crate::model::{Task, TaskGroup, Workgroup};
use std::collections::{HashMap, HashSet};

/// `g` with task changes applied on top. Only task changes are supported:
/// the rules run through it never touch groups or workgroups.
pub(crate) struct Overlay<'g, G: GraphRead + ?Sized> {
    g: &'g G,
    /// Each task changed so far, as it is now (`None`: deleted).
    now: HashMap<String, Option<Task>>,
    /// Each task changed so far, as stored (`None`: created).
    before: HashMap<String, Option<Task>>,
    /// Ids in the order they were first changed.
    order: Vec<String>,
    /// Tasks created so far (their parents' children include them).
    created: Vec<String>,
    wake: Vec<String>,
}

impl<'g, G: GraphRead + ?Sized> Overlay<'g, G> {
    pub fn new(g: &'g G) -> Self {
        Overlay {
            g,
            now: HashMap::new(),
            before: HashMap::new(),
            order: Vec::new(),
            created: Vec::new(),
            wake: Vec::new(),
        }
    }

    fn record(&mut self, id: &str, before: Option<Task>, after: Option<Task>) {
        if !self.before.contains_key(id) {
            if before.is_none() {
                self.created.push(id.to_string());
            }
            self.before.insert(id.to_string(), before);
            self.order.push(id.to_string());
        }
        self.now.insert(id.to_string(), after);
    }

    /// Applies one rule's changes (computed against this overlay).
    pub fn apply(&mut self, changes: Changes) -> Result<(), RuleError> {
        for c in changes.ops {
            match c {
                Change::CreateTask(t) => {
                    let id = t.id.clone();
                    self.record(&id, None, Some(t));
                }
                Change::UpdateTask { before, after } => {
                    let id = after.id.clone();
                    self.record(&id, Some(*before), Some(*after));
                }
                Change::DeleteTask(t) => {
                    let id = t.id.clone();
                    self.record(&id, Some(t), None);
                }
                other => {
                    return Err(RuleError::Invalid(format!(
                        "a bulk action cannot apply {other:?}"
                    )))
                }
            }
        }
        self.wake.extend(changes.wake);
        Ok(())
    }

    /// Whether the task is deleted in the overlay.
    fn is_deleted(&self, id: &str) -> bool {
        matches!(self.now.get(id), Some(None))
    }

    /// Everything applied, as one set of changes against the stored graph.
    pub fn finish(self) -> Changes {
        let Overlay {
            mut now,
            mut before,
            order,
            mut wake,
            ..
        } = self;
        let mut ops = Vec::with_capacity(order.len());
        let mut deleted: HashSet<String> = HashSet::new();
        for id in order {
            let b = before.remove(&id).flatten();
            let a = now.remove(&id).flatten();
            match (b, a) {
                (None, Some(t)) => ops.push(Change::CreateTask(t)),
                (Some(b), None) => {
                    deleted.insert(id);
                    ops.push(Change::DeleteTask(b));
                }
                (Some(b), Some(a)) if b != a => ops.push(Change::UpdateTask {
                    before: Box::new(b),
                    after: Box::new(a),
                }),
                _ => {}
            }
        }
        wake.retain(|w| !deleted.contains(w));
        wake.sort();
        wake.dedup();
        Changes { ops, wake }
    }
}

impl<G: GraphRead + ?Sized> GraphRead for Overlay<'_, G> {
    fn task(&self, id: &str) -> Result<Option<Task>, StoreError> {
        match self.now.get(id) {
            Some(t) => Ok(t.clone()),
            None => self.g.task(id),
        }
    }
    fn group(&self, id: &str) -> Result<Option<TaskGroup>, StoreError> {
        self.g.group(id)
    }
    fn workgroup(&self, name: &str) -> Result<Option<Workgroup>, StoreError> {
        self.g.workgroup(name)
    }
    fn children(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let mut out = self.g.children(id)?;
        out.retain(|c| !self.is_deleted(c));
        for c in &self.created {
            if let Some(Some(t)) = self.now.get(c) {
                if t.parent_ids.iter().any(|p| p == id) {
                    out.push(c.clone());
                }
            }
        }
        Ok(out)
    }
    fn tasks_with_key(&self, group: &str, key: &str) -> Result<Vec<String>, StoreError> {
        let mut out = self.g.tasks_with_key(group, key)?;
        let listed: HashSet<String> = out.iter().cloned().collect();
        out.retain(|id| match self.now.get(id) {
            Some(None) => false,
            Some(Some(t)) => t.key == key && t.task_group_id == group,
            None => true,
        });
        for id in &self.order {
            if let Some(Some(t)) = self.now.get(id) {
                if t.key == key && t.task_group_id == group && !listed.contains(id) {
                    out.push(id.clone());
                }
            }
        }
        Ok(out)
    }
    fn group_task_ids(&self, group: &str) -> Result<Vec<String>, StoreError> {
        let mut out = self.g.group_task_ids(group)?;
        out.retain(|id| !self.is_deleted(id));
        for c in &self.created {
            if let Some(Some(t)) = self.now.get(c) {
                if t.task_group_id == group {
                    out.push(c.clone());
                }
            }
        }
        Ok(out)
    }
    fn incomplete_task_ids(&self, group: &str) -> Result<Vec<String>, StoreError> {
        let mut out = self.g.incomplete_task_ids(group)?;
        let listed: HashSet<String> = out.iter().cloned().collect();
        out.retain(|id| match self.now.get(id) {
            Some(None) => false,
            Some(Some(t)) => !t.is_complete,
            None => true,
        });
        for id in &self.order {
            if let Some(Some(t)) = self.now.get(id) {
                if t.task_group_id == group && !t.is_complete && !listed.contains(id) {
                    out.push(id.clone());
                }
            }
        }
        Ok(out)
    }
}
