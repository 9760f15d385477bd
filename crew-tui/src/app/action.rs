//! Operator actions: what they are ([`Verb`], [`Target`],
//! [`ActionRequest`]), the confirmation destructive ones need
//! ([`Confirm`]), and how the reducer turns a request into an effect.

use super::keymap::Command;
use super::msg::Effect;
use super::state::{group_name, task_status, AppState, Input, View};
use crate::text::short_name;
use crew_core::wire::{BulkFilter, BulkResult};
use crew_core::{Task, TaskStatus, WorkgroupLimits};

/// An operator action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    /// Pause.
    Pause,
    /// Resume.
    Resume,
    /// Reset (clears outputs, deletes continuations).
    Reset,
    /// Retry (new attempts).
    Retry,
    /// Delete (with descendants).
    Delete,
    /// Cancel a running task's call (the task is paused).
    Cancel,
    /// Set a workgroup's limits.
    Limit,
    /// Set (or remove) a group's recurring schedule.
    Schedule,
}

impl Verb {
    /// The verb in a sentence.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verb::Pause => "pause",
            Verb::Resume => "resume",
            Verb::Reset => "reset",
            Verb::Retry => "retry",
            Verb::Delete => "delete",
            Verb::Cancel => "cancel",
            Verb::Limit => "limit",
            Verb::Schedule => "schedule",
        }
    }

    /// The progressive form shown while it is in flight.
    pub fn ing(&self) -> &'static str {
        match self {
            Verb::Pause => "PAUSING",
            Verb::Resume => "RESUMING",
            Verb::Reset => "RESETTING",
            Verb::Retry => "RETRYING",
            Verb::Delete => "DELETING",
            Verb::Cancel => "CANCELLING",
            Verb::Limit => "LIMITING",
            Verb::Schedule => "SCHEDULING",
        }
    }

    pub(super) fn from_command(c: Command) -> Option<Self> {
        Some(match c {
            Command::Pause => Verb::Pause,
            Command::Resume => Verb::Resume,
            Command::Reset => Verb::Reset,
            Command::Retry => Verb::Retry,
            Command::Delete => Verb::Delete,
            Command::Cancel => Verb::Cancel,
            _ => return None,
        })
    }
}

/// What an action applies to.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// A whole group.
    Group {
        /// Group id.
        id: String,
        /// Group name, for messages.
        name: String,
    },
    /// One task.
    Task {
        /// Its group.
        group_id: String,
        /// Task id.
        id: String,
        /// Task name, for messages.
        name: String,
    },
    /// A workgroup.
    Workgroup {
        /// Its name.
        name: String,
    },
    /// A group's recurring schedule, to be replaced by this one.
    GroupSchedule {
        /// Group id.
        id: String,
        /// Group name, for messages.
        name: String,
        /// A cron expression (UTC); empty removes the schedule.
        schedule: String,
    },
    /// A workgroup's limits, to be replaced by these.
    WorkgroupLimits {
        /// Its name.
        name: String,
        /// The new limits (empty: none).
        limits: WorkgroupLimits,
    },
    /// Every task of a group a filter matches, in one request (the daemon
    /// applies the filter, all or nothing).
    Filter {
        /// Their group.
        group_id: String,
        /// The filter the console shows.
        filter: BulkFilter,
        /// Tasks the daemon's dry run matched (0 before it answered).
        matched: u64,
    },
}

/// An action to carry out.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionRequest {
    /// What to do.
    pub verb: Verb,
    /// To what.
    pub target: Target,
    /// For a workgroup pause: how long.
    pub seconds: Option<f64>,
}

impl ActionRequest {
    /// `verb` on one task.
    pub fn on_task(verb: Verb, t: &Task) -> Self {
        ActionRequest {
            verb,
            target: Target::Task {
                group_id: t.task_group_id.clone(),
                id: t.id.clone(),
                name: t.name.clone(),
            },
            seconds: None,
        }
    }

    /// A sentence naming the action (`pause group demo`). Names are cut
    /// ([`short_name`]): the sentence leads the status line, and why the
    /// action failed comes after it.
    pub fn describe(&self) -> String {
        let v = self.verb.as_str();
        match &self.target {
            Target::Group { name, .. } => format!("{v} group {}", short_name(name)),
            Target::Task { name, id, .. } => format!("{v} task {}", task_label(name, id)),
            Target::Workgroup { name } => {
                let name = short_name(name);
                match self.seconds {
                    // Under a second, as given: rounded up, 0.0001 read "1s".
                    Some(s) if s < 1.0 => {
                        format!(
                            "{v} workgroup {name} for {}s",
                            crew_core::dag::fmt_number(s)
                        )
                    }
                    Some(s) => {
                        format!("{v} workgroup {name} for {}", crate::theme::fmt_duration(s))
                    }
                    None => format!("{v} workgroup {name}"),
                }
            }
            Target::GroupSchedule { name, schedule, .. } if schedule.is_empty() => {
                format!("remove the schedule of group {}", short_name(name))
            }
            Target::GroupSchedule { name, schedule, .. } => format!(
                "reset group {} on \"{}\" (UTC)",
                short_name(name),
                short_name(schedule)
            ),
            Target::WorkgroupLimits { name, limits } if limits.is_empty() => {
                format!("remove the limits of workgroup {}", short_name(name))
            }
            Target::WorkgroupLimits { name, limits } => {
                format!("{v} workgroup {} to {limits}", short_name(name))
            }
            Target::Filter { matched, .. } => {
                format!("{v} {matched} filtered {}", task_word(*matched as usize))
            }
        }
    }

    pub(super) fn pending_key(&self) -> Option<String> {
        match &self.target {
            Target::Group { id, .. } | Target::GroupSchedule { id, .. } => {
                Some(format!("group:{id}"))
            }
            Target::Task { id, .. } => Some(format!("task:{id}")),
            Target::Workgroup { name } | Target::WorkgroupLimits { name, .. } => {
                Some(format!("wg:{name}"))
            }
            Target::Filter { .. } => None,
        }
    }
}

/// A destructive action waiting for the operator's word.
#[derive(Clone, Debug, PartialEq)]
pub struct Confirm {
    /// The action.
    pub req: ActionRequest,
    /// The dialog's message.
    pub message: String,
    /// Whether "Yes" (rather than "No") has the focus. Starts false.
    pub ok_focused: bool,
    /// For an irreversible bulk action: the count the operator must type
    /// (`yes` is accepted too) before Yes is.
    pub expect: Option<String>,
    /// What the operator has typed so far.
    pub typed: String,
}

impl Confirm {
    /// Whether OK may be chosen: nothing needs typing, or what was typed is
    /// the expected count or `yes`.
    pub fn accepted(&self) -> bool {
        match &self.expect {
            None => true,
            Some(want) => {
                let typed = self.typed.trim();
                typed == want.as_str() || typed.eq_ignore_ascii_case("yes")
            }
        }
    }
}

/// An action key: builds the request for what is selected (or for every
/// task the filter shows, in bulk mode), refusing it when read-only.
pub(super) fn on_action(state: &mut AppState, verb: Verb) -> Vec<Effect> {
    if state.read_only {
        state.fail("read-only: actions are disabled");
        return vec![];
    }
    let req = match state.view {
        View::Groups => {
            let Some(g) = state.selected_group() else {
                return vec![];
            };
            let total = g.counts.total();
            let req = ActionRequest {
                verb,
                target: Target::Group {
                    id: g.group.id.clone(),
                    name: group_name(&g.group).to_string(),
                },
                seconds: None,
            };
            return confirm_or_dispatch(state, req, Some(total as usize));
        }
        View::Dag => {
            let Some(g) = &state.group else {
                return vec![];
            };
            if g.bulk && g.dag.filter().active() {
                if verb == Verb::Cancel {
                    state.fail(
                        "cancel applies to one running task, not in bulk (a: back to the task)",
                    );
                    return vec![];
                }
                let shown = g.dag.filter();
                if shown.lineage.is_some() {
                    state.fail(
                        "bulk actions apply status and text filters, not a lineage: clear it first",
                    );
                    return vec![];
                }
                if state.read_only {
                    state.fail("read-only: actions are disabled");
                    return vec![];
                }
                let filter = BulkFilter {
                    status: shown.status.into_iter().collect(),
                    search: Some(shown.text.clone()).filter(|t| !t.is_empty()),
                    ..Default::default()
                };
                let req = ActionRequest {
                    verb,
                    target: Target::Filter {
                        group_id: g.view.group.id.clone(),
                        filter,
                        matched: 0,
                    },
                    seconds: None,
                };
                state.say(format!("counting the tasks to {}…", verb.as_str()));
                return vec![Effect::CountBulk(req)];
            }
            let Some(t) = g.selected_task() else {
                return vec![];
            };
            ActionRequest::on_task(verb, t)
        }
        View::Task => {
            let Some(t) = state.detail_task() else {
                return vec![];
            };
            ActionRequest::on_task(verb, t)
        }
        View::Workgroups => {
            let Some(w) = state.selected_workgroup() else {
                return vec![];
            };
            let name = w.workgroup.name.clone();
            match verb {
                Verb::Pause => {
                    state.input = Input::Seconds {
                        workgroup: name,
                        text: String::new(),
                    };
                    return vec![];
                }
                Verb::Resume => ActionRequest {
                    verb,
                    target: Target::Workgroup { name },
                    seconds: None,
                },
                _ => return vec![],
            }
        }
        View::Events => return vec![],
    };
    if verb == Verb::Cancel {
        if let Target::Task { id, .. } = &req.target {
            let status = state
                .group
                .as_ref()
                .and_then(|g| g.dag.get(id))
                .map(task_status);
            if status != Some(TaskStatus::Running) {
                let now = status.map_or("unknown", |s| s.as_str());
                state.fail(format!(
                    "only a running task can be cancelled (it is {now})"
                ));
                return vec![];
            }
        }
    }
    let count = match &req.target {
        Target::Task { id, .. } => state.group.as_ref().and_then(|g| {
            let i = g.dag.index_of(id)?;
            Some(g.dag.delete_count(&[i]))
        }),
        _ => None,
    };
    confirm_or_dispatch(state, req, count)
}

/// Destructive actions (reset, delete, anything in bulk) ask first; the
/// dialog names how many tasks it touches and opens on Cancel. A reset or
/// delete of many tasks (a bulk selection, a whole group) cannot be undone,
/// so OK also wants that count, or `yes`, typed; so does a task's reset or
/// delete when it reaches descendants. `delete_total` is what a delete
/// removes (a reset touches), descendants included.
fn confirm_or_dispatch(
    state: &mut AppState,
    req: ActionRequest,
    delete_total: Option<usize>,
) -> Vec<Effect> {
    let bulk = matches!(req.target, Target::Filter { .. });
    let destructive = matches!(req.verb, Verb::Reset | Verb::Delete | Verb::Cancel) || bulk;
    if !destructive {
        return dispatch(state, req);
    }
    let message = match (&req.target, req.verb) {
        (Target::Task { name, id, .. }, Verb::Delete) => {
            let n = delete_total.unwrap_or(1);
            format!(
                "Delete task {} and its descendants: {n} task{} in all?",
                task_label(name, id),
                if n == 1 { "" } else { "s" }
            )
        }
        (Target::Task { name, id, .. }, Verb::Reset) => format!(
            "Reset task {}{}? Its output and errors are cleared, the tasks it created are deleted and its descendants are reset.",
            task_label(name, id),
            match delete_total {
                Some(n) if n > 1 => format!(" and its descendants: {n} tasks in all"),
                _ => String::new(),
            }
        ),
        (Target::Task { name, id, .. }, Verb::Cancel) => format!(
            "Cancel the running call of task {}? The worker's answer is ignored, the attempt is recorded as cancelled (none used up) and the task is paused.",
            task_label(name, id)
        ),
        (Target::Group { name, .. }, Verb::Delete) => format!(
            "Delete group {} and its {}?",
            short_name(name),
            tasks(delete_total.unwrap_or(0))
        ),
        (Target::Group { name, .. }, Verb::Reset) => format!(
            "Reset group {} ({})? Continuations are deleted; with seeds, every task the seeds do not depend on.",
            short_name(name),
            tasks(delete_total.unwrap_or(0))
        ),
        (Target::Filter { matched, .. }, Verb::Delete) => format!(
            "Delete the {matched} filtered {} and their descendants: {} in all?",
            task_word(*matched as usize),
            tasks(delete_total.unwrap_or(*matched as usize))
        ),
        (Target::Filter { matched, .. }, v) => format!(
            "{} the {matched} filtered {} ({} changed), all or none?",
            capitalise(v.as_str()),
            task_word(*matched as usize),
            delete_total.unwrap_or(*matched as usize)
        ),
        (_, _) => format!("{}?", capitalise(&req.describe())),
    };
    // Irreversible and on many tasks: the operator types the count.
    let expect = match (&req.target, req.verb) {
        (Target::Filter { matched, .. }, Verb::Reset) => Some(*matched as usize),
        (Target::Filter { matched, .. }, Verb::Delete) => {
            Some(delete_total.unwrap_or(*matched as usize))
        }
        (Target::Group { .. }, Verb::Reset | Verb::Delete) => Some(delete_total.unwrap_or(0)),
        // A task with descendants is many tasks too: one alone needs no typing.
        (Target::Task { .. }, Verb::Reset | Verb::Delete) => delete_total.filter(|&n| n > 1),
        _ => None,
    };
    state.confirm = Some(Confirm {
        req,
        message,
        ok_focused: false,
        expect: expect.map(|n| n.to_string()),
        typed: String::new(),
    });
    vec![]
}

/// The daemon's dry run answered: confirm with its counts (for a delete,
/// the tasks removed, descendants included; otherwise the tasks changed).
pub(super) fn bulk_counted(
    state: &mut AppState,
    mut req: ActionRequest,
    result: Result<BulkResult, String>,
) -> Vec<Effect> {
    let what = req.verb.as_str();
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            state.fail(format!("{what} the filtered tasks: {e}"));
            return vec![];
        }
    };
    if r.matched == 0 {
        state.fail("no task matches the filter");
        return vec![];
    }
    if let Target::Filter { matched, .. } = &mut req.target {
        *matched = r.matched;
    }
    state.say(format!(
        "the daemon matched {} task{}",
        r.matched,
        if r.matched == 1 { "" } else { "s" }
    ));
    let total = if req.verb == Verb::Delete {
        r.deleted
    } else {
        r.updated + r.deleted
    };
    confirm_or_dispatch(state, req, Some(total as usize))
}

/// A task as a sentence names it: its name, or its id when it has none,
/// cut ([`short_name`]).
fn task_label(name: &str, id: &str) -> String {
    short_name(if name.is_empty() { id } else { name })
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Sends the request, marking its entity as in flight until the stream
/// (or the answer) confirms it.
pub(super) fn dispatch(state: &mut AppState, req: ActionRequest) -> Vec<Effect> {
    if state.read_only {
        state.fail("read-only: actions are disabled");
        return vec![];
    }
    if let Some(k) = req.pending_key() {
        state.answered.remove(&k);
        state.pending.insert(k, req.verb);
    }
    state.say(format!("{}…", req.describe()));
    vec![Effect::Act(req)]
}

/// `n` tasks, in words: "1 task", "3 tasks".
pub fn tasks(n: usize) -> String {
    format!("{n} {}", task_word(n))
}

/// "task" or "tasks", as `n` asks.
pub fn task_word(n: usize) -> &'static str {
    if n == 1 {
        "task"
    } else {
        "tasks"
    }
}
