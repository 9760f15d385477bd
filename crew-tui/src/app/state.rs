//! The console's state and its reducer.
//!
//! [`update`] takes one [`Msg`] (a key, a server message or a tick) and
//! returns the [`Effect`]s the I/O side must carry out. It never does I/O
//! and never reads the clock: time arrives in [`Msg::Tick`].

use crate::app::dag::{Dag, DagFilter, RowKind};
use crate::app::keymap::{Command, Key, KeyMap, Scope};
use crate::theme::Theme;
use crew_core::model::derive_status;
use crew_core::wire::{
    ActionResult, AuditEntry, AuditList, BulkFilter, BulkResult, Event, StatusCounts,
    StreamMessage, TaskGroupList, TaskGroupView, WorkgroupList, WorkgroupView,
};
use crew_core::{Task, TaskStatus, Timestamp, WorkgroupLimits};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::collections::{HashMap, VecDeque};

/// How many entries the event log keeps.
pub const EVENT_LOG_LIMIT: usize = 2000;
/// Minimum seconds between two refetches of the groups list caused by events.
const GROUPS_REFRESH_SECS: f64 = 2.0;

/// The status the console shows for a task: the daemon's, or derived from
/// the task alone when the daemon did not send one.
pub fn task_status(t: &Task) -> TaskStatus {
    t.status.unwrap_or(if t.is_complete {
        TaskStatus::Completed
    } else if t.busy_executing {
        TaskStatus::Running
    } else if t.remaining_attempts == 0 {
        TaskStatus::Failed
    } else if t.is_paused {
        TaskStatus::Paused
    } else {
        TaskStatus::Ready
    })
}

/// Whether a task the daemon reported `delayed` may show as `ready` at
/// `now`, its `runAfter` having passed: its status derived again from what
/// the console knows of its group and workgroup must be `ready`. A task held
/// by its workgroup's pause, or in a group paused since, keeps the daemon's
/// word.
fn runs_once_due(
    t: &Task,
    group_paused: bool,
    workgroups: &[WorkgroupView],
    now: Timestamp,
) -> bool {
    let workgroup = if t.workgroup.is_empty() {
        None
    } else {
        workgroups
            .iter()
            .find(|w| w.workgroup.name == t.workgroup)
            .map(|w| &w.workgroup)
    };
    derive_status(t, group_paused, workgroup, true, now) == TaskStatus::Ready
}

/// Everything the reducer reacts to.
#[derive(Clone, Debug)]
pub enum Msg {
    /// A key press from the terminal.
    Key(KeyEvent),
    /// The clock moved (about once a second).
    Tick(Timestamp),
    /// The terminal has a new size.
    Resize(u16, u16),
    /// The stream connection changed state.
    Conn(ConnEvent),
    /// One message from the event stream.
    Stream(StreamMessage),
    /// The answer to a REST request.
    Reply(Reply),
    /// A background task failed unexpectedly.
    Internal(String),
}

/// The stream connection's transitions.
#[derive(Clone, Debug, PartialEq)]
pub enum ConnEvent {
    /// Subscribed. `resumed` when it continued from the last sequence seen,
    /// so no snapshot is needed.
    Connected {
        /// Continued without a gap.
        resumed: bool,
    },
    /// The connection dropped or could not be made; it is retried.
    Disconnected {
        /// Why.
        error: String,
        /// Consecutive failures.
        attempt: u32,
        /// Milliseconds until the next try.
        retry_in_ms: u64,
    },
}

/// Answers from the REST client.
#[derive(Clone, Debug)]
pub enum Reply {
    /// `GET /task_groups`.
    Groups(Result<TaskGroupList, String>),
    /// A group and all its tasks.
    Group {
        /// The group asked for.
        id: String,
        /// The group and its tasks.
        result: Result<(TaskGroupView, Vec<Task>), String>,
    },
    /// `GET /workgroups`.
    Workgroups(Result<WorkgroupList, String>),
    /// An action finished.
    Action {
        /// What was asked.
        req: ActionRequest,
        /// Totals, or the first error.
        result: Result<ActionResult, String>,
    },
    /// The daemon's dry run of a bulk action: what it would touch.
    BulkCount {
        /// The bulk action asked about.
        req: ActionRequest,
        /// The daemon's counts, or why it refused.
        result: Result<BulkResult, String>,
    },
    /// `GET /whoami`: the token's name and scope (an error from a daemon
    /// without it changes nothing).
    WhoAmI(Result<crew_core::wire::WhoAmI, String>),
    /// `GET /audit`: the latest operator actions, newest first.
    Audit(Result<AuditList, String>),
}

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

    fn from_command(c: Command) -> Option<Self> {
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
    /// A sentence naming the action (`pause group demo`).
    pub fn describe(&self) -> String {
        let v = self.verb.as_str();
        match &self.target {
            Target::Group { name, .. } => format!("{v} group {name}"),
            Target::Task { name, id, .. } => {
                if name.is_empty() {
                    format!("{v} task {id}")
                } else {
                    format!("{v} task {name}")
                }
            }
            Target::Workgroup { name } => match self.seconds {
                Some(s) => format!("{v} workgroup {name} for {}", crate::theme::fmt_duration(s)),
                None => format!("{v} workgroup {name}"),
            },
            Target::GroupSchedule { name, schedule, .. } if schedule.is_empty() => {
                format!("remove the schedule of group {name}")
            }
            Target::GroupSchedule { name, schedule, .. } => {
                format!("reset group {name} on \"{schedule}\" (UTC)")
            }
            Target::WorkgroupLimits { name, limits } if limits.is_empty() => {
                format!("remove the limits of workgroup {name}")
            }
            Target::WorkgroupLimits { name, limits } => {
                format!("{v} workgroup {name} to {limits}")
            }
            Target::Filter { matched, .. } => format!("{v} {matched} filtered tasks"),
        }
    }

    fn pending_key(&self) -> Option<String> {
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

/// What the I/O side must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Refetch the groups list.
    FetchGroups,
    /// Fetch a group and all its tasks.
    FetchGroup(String),
    /// Refetch the workgroups.
    FetchWorkgroups,
    /// Carry out an action (a bulk one in one request).
    Act(ActionRequest),
    /// Ask the daemon what a bulk action would touch (a dry run); the
    /// answer opens its confirmation.
    CountBulk(ActionRequest),
    /// Ask the daemon what the token may do.
    FetchWhoAmI,
    /// Fetch the latest audit entries for the event log.
    FetchAudit,
    /// Leave.
    Quit,
}

/// The screens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// Every group.
    Groups,
    /// The open group's tasks as a tree.
    Dag,
    /// One task.
    Task,
    /// Every workgroup.
    Workgroups,
    /// The live event log.
    Events,
}

impl View {
    /// The keymap scope of the view.
    pub fn scope(&self) -> Scope {
        match self {
            View::Groups => Scope::Groups,
            View::Dag => Scope::Dag,
            View::Task => Scope::Task,
            View::Workgroups => Scope::Workgroups,
            View::Events => Scope::Events,
        }
    }
}

/// The stream connection as the header shows it.
#[derive(Clone, Debug, PartialEq)]
pub enum ConnState {
    /// Not yet connected.
    Connecting,
    /// Live.
    Connected,
    /// Dropped; retrying.
    Reconnecting {
        /// Consecutive failures.
        attempt: u32,
        /// When the next try happens.
        next_at: Timestamp,
        /// The last error.
        error: String,
    },
}

/// A selection in a list, with the first row shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListPos {
    /// Selected row.
    pub selected: usize,
    /// First visible row (a hint; the view keeps the selection visible).
    pub offset: usize,
}

impl ListPos {
    fn clamp(&mut self, len: usize) {
        if len == 0 {
            self.selected = 0;
        } else if self.selected >= len {
            self.selected = len - 1;
        }
    }

    fn step(&mut self, len: usize, delta: isize, page: usize) {
        if len == 0 {
            self.selected = 0;
            return;
        }
        let s = self.selected as isize + delta;
        self.selected = s.clamp(0, len as isize - 1) as usize;
        self.follow(page);
    }

    fn follow(&mut self, page: usize) {
        let page = page.max(1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + page {
            self.offset = self.selected + 1 - page;
        }
    }

    /// The first row to draw so that the selection is visible in `height`
    /// rows of `len`.
    pub fn window(&self, len: usize, height: usize) -> usize {
        let height = height.max(1);
        let mut off = self.offset.min(len.saturating_sub(height));
        if self.selected < off {
            off = self.selected;
        } else if self.selected >= off + height {
            off = self.selected + 1 - height;
        }
        off
    }
}

/// What an empty pause prompt means, in seconds.
pub const DEFAULT_PAUSE_SECS: &str = "300";

/// The text being typed at the bottom line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Keys are commands.
    None,
    /// `/`: the view's text filter.
    Filter(String),
    /// `:`: a command.
    Command(String),
    /// How long to pause a workgroup.
    Seconds {
        /// The workgroup.
        workgroup: String,
        /// Typed so far.
        text: String,
    },
    /// A group's schedule, a cron expression in UTC (it starts with the
    /// current one; empty removes it).
    Schedule {
        /// The group's id.
        group_id: String,
        /// Its name, for the prompt.
        name: String,
        /// Typed so far.
        text: String,
    },
    /// A workgroup's new limits, as `concurrency:N,rate:R,burst:B` or
    /// `none` (it starts with the current ones).
    Limits {
        /// The workgroup.
        workgroup: String,
        /// Typed so far.
        text: String,
    },
}

/// A destructive action waiting for the operator's word.
#[derive(Clone, Debug, PartialEq)]
pub struct Confirm {
    /// The action.
    pub req: ActionRequest,
    /// The dialog's message.
    pub message: String,
    /// Whether "OK" (rather than "Cancel") has the focus. Starts false.
    pub ok_focused: bool,
    /// For an irreversible bulk action: the count the operator must type
    /// (`yes` is accepted too) before OK is.
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

/// The status line.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusLine {
    /// What to say (may contain daemon text; sanitised when drawn).
    pub text: String,
    /// Whether it is an error.
    pub error: bool,
}

/// One entry of the event log.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// Stream sequence (0 for the operator's own entries).
    pub seq: u64,
    /// When.
    pub at: Timestamp,
    /// Event type (`task.updated`), or `action`.
    pub kind: String,
    /// The entity: group, task or workgroup name.
    pub subject: String,
    /// More: the task's status, an action's result.
    pub detail: String,
    /// The operator's own action.
    pub mine: bool,
    /// An error.
    pub error: bool,
}

/// The open group.
#[derive(Clone, Debug)]
pub struct OpenGroup {
    /// The group, with counts.
    pub view: TaskGroupView,
    /// Its tasks.
    pub dag: Dag,
    /// Tree selection.
    pub list: ListPos,
    /// The snapshot is being fetched; events are buffered meanwhile.
    pub loading: bool,
    buffered: Vec<Event>,
    selected_node: Option<u32>,
    /// Actions apply to every task the filter shows, not to the selected one.
    pub bulk: bool,
}

impl OpenGroup {
    fn new(view: TaskGroupView, now: Timestamp) -> Self {
        OpenGroup {
            view,
            dag: Dag::at(now),
            list: ListPos::default(),
            loading: true,
            buffered: Vec::new(),
            selected_node: None,
            bulk: false,
        }
    }

    /// The task under the selection (for a reference row: the referenced
    /// task).
    pub fn selected_task(&self) -> Option<&Task> {
        let row = self.dag.rows().get(self.list.selected)?;
        self.dag.task(row.node)
    }

    /// The tasks bulk actions apply to: every match of the filter.
    pub fn bulk_ids(&self) -> Vec<u32> {
        self.dag
            .rows()
            .iter()
            .filter(|r| r.kind == RowKind::Primary && !r.context)
            .map(|r| r.node)
            .collect()
    }
}

/// Which part of the task detail has the keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskPane {
    /// Fields, input, output, errors.
    Content,
    /// Parents and children.
    Links,
}

/// The task detail's state.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskDetail {
    /// The task shown.
    pub id: String,
    /// First content line shown.
    pub scroll: usize,
    /// Focused pane.
    pub pane: TaskPane,
    /// Selection among parents and children.
    pub links: ListPos,
}

/// Sort orders of the groups list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupSort {
    /// Newest first.
    Newest,
    /// By name.
    Name,
    /// Least complete first.
    Progress,
    /// Most failures first.
    Failed,
}

impl GroupSort {
    /// Name shown in the title.
    pub fn as_str(&self) -> &'static str {
        match self {
            GroupSort::Newest => "newest",
            GroupSort::Name => "name",
            GroupSort::Progress => "progress",
            GroupSort::Failed => "failed",
        }
    }

    fn next(self) -> Self {
        match self {
            GroupSort::Newest => GroupSort::Name,
            GroupSort::Name => GroupSort::Progress,
            GroupSort::Progress => GroupSort::Failed,
            GroupSort::Failed => GroupSort::Newest,
        }
    }
}

/// The whole console state.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The clock, as of the last tick.
    pub now: Timestamp,
    /// Terminal size.
    pub size: (u16, u16),
    /// The daemon's address, for the header.
    pub server: String,
    /// The stream connection.
    pub conn: ConnState,
    /// Key bindings (also drives the help).
    pub keymap: KeyMap,
    /// Colours and glyphs.
    pub theme: Theme,
    /// Watching only: every action is hidden and refused.
    pub read_only: bool,
    /// The screen shown.
    pub view: View,
    history: Vec<View>,
    /// The help overlay is open.
    pub help: bool,
    /// Text being typed.
    pub input: Input,
    /// A confirm dialog.
    pub confirm: Option<Confirm>,
    /// The status line.
    pub status: Option<StatusLine>,
    /// Every group (one page of the list).
    pub groups: Vec<TaskGroupView>,
    /// The groups list has been fetched once.
    pub groups_loaded: bool,
    /// `/` filter of the groups list.
    pub groups_filter: String,
    /// Sort of the groups list.
    pub groups_sort: GroupSort,
    /// Groups selection.
    pub groups_list: ListPos,
    groups_dirty: bool,
    groups_inflight: bool,
    groups_fetched_at: Option<Timestamp>,
    want_group: Option<String>,
    /// The open group.
    pub group: Option<OpenGroup>,
    /// The task detail.
    pub task: Option<TaskDetail>,
    /// Every workgroup.
    pub workgroups: Vec<WorkgroupView>,
    /// Workgroups selection.
    pub workgroups_list: ListPos,
    /// `/` filter of the workgroups.
    pub workgroups_filter: String,
    workgroups_dirty: bool,
    /// The event log, newest first.
    pub events: VecDeque<LogEntry>,
    /// Event log selection.
    pub events_list: ListPos,
    /// `/` filter of the event log.
    pub events_filter: String,
    /// Only the operator's own actions.
    pub events_mine_only: bool,
    /// Highest stream sequence seen.
    pub last_seq: u64,
    /// The first audit entry the stream delivered: earlier ones come from
    /// `GET /audit`, later ones only from the stream.
    first_live_audit: Option<u64>,
    /// Actions in flight, by entity (`group:ID`, `task:ID`, `wg:NAME`).
    pub pending: HashMap<String, Verb>,
    /// The operator asked to leave.
    pub quit: bool,
}

impl AppState {
    /// A fresh state for a daemon at `server`.
    pub fn new(server: impl Into<String>, keymap: KeyMap, theme: Theme, now: Timestamp) -> Self {
        AppState {
            now,
            size: (80, 24),
            server: server.into(),
            conn: ConnState::Connecting,
            read_only: keymap.read_only(),
            keymap,
            theme,
            view: View::Groups,
            history: Vec::new(),
            help: false,
            input: Input::None,
            confirm: None,
            status: None,
            groups: Vec::new(),
            groups_loaded: false,
            groups_filter: String::new(),
            groups_sort: GroupSort::Newest,
            groups_list: ListPos::default(),
            groups_dirty: false,
            groups_inflight: false,
            groups_fetched_at: None,
            want_group: None,
            group: None,
            task: None,
            workgroups: Vec::new(),
            workgroups_list: ListPos::default(),
            workgroups_filter: String::new(),
            workgroups_dirty: false,
            events: VecDeque::new(),
            events_list: ListPos::default(),
            events_filter: String::new(),
            events_mine_only: false,
            last_seq: 0,
            first_live_audit: None,
            pending: HashMap::new(),
            quit: false,
        }
    }

    /// The requests to make at start.
    pub fn start(&mut self) -> Vec<Effect> {
        self.groups_inflight = true;
        vec![
            Effect::FetchGroups,
            Effect::FetchWorkgroups,
            Effect::FetchWhoAmI,
            Effect::FetchAudit,
        ]
    }

    /// Asks to open a group by name or id once the groups are known.
    pub fn open_group_when_known(&mut self, name: &str) {
        self.want_group = Some(name.to_string());
    }

    /// Rows of a list that fit on the screen (header, title, column
    /// heading, status line and key bar excluded).
    pub fn page(&self) -> usize {
        (self.size.1 as usize).saturating_sub(6).max(1)
    }

    /// Rebuilds derived data after a batch of messages: the open group's
    /// rows (keeping the selected task selected) and counts.
    pub fn settle(&mut self) {
        let page = self.page();
        let now = self.now;
        let workgroups = &self.workgroups;
        if let Some(g) = &mut self.group {
            if !g.loading {
                let group_paused = g.view.group.is_paused;
                g.dag
                    .release_due(now, |t| runs_once_due(t, group_paused, workgroups, now));
            }
            if g.dag.is_dirty() {
                g.dag.settle();
                if let Some(node) = g.selected_node {
                    if let Some(r) = g
                        .dag
                        .primary_row(node)
                        .or_else(|| g.dag.rows().iter().position(|r| r.node == node))
                    {
                        g.list.selected = r;
                    }
                }
                g.list.clamp(g.dag.rows().len());
                g.list.follow(page);
            }
            if !g.loading {
                g.view.counts = *g.dag.counts();
                g.view.completed_percent = g.view.counts.completed_percent();
            }
            g.selected_node = g.dag.rows().get(g.list.selected).map(|r| r.node);
        }
    }

    /// The groups list as shown: filtered and sorted.
    pub fn visible_groups(&self) -> Vec<&TaskGroupView> {
        let needle = self.groups_filter.to_lowercase();
        let mut v: Vec<&TaskGroupView> = self
            .groups
            .iter()
            .filter(|g| {
                needle.is_empty()
                    || g.group.name.to_lowercase().contains(&needle)
                    || g.group.id.to_lowercase().contains(&needle)
            })
            .collect();
        match self.groups_sort {
            GroupSort::Newest => v.sort_by(|a, b| {
                b.group
                    .created_at
                    .cmp(&a.group.created_at)
                    .then_with(|| a.group.id.cmp(&b.group.id))
            }),
            GroupSort::Name => v.sort_by(|a, b| {
                a.group
                    .name
                    .cmp(&b.group.name)
                    .then_with(|| a.group.id.cmp(&b.group.id))
            }),
            GroupSort::Progress => v.sort_by(|a, b| {
                a.completed_percent
                    .total_cmp(&b.completed_percent)
                    .then_with(|| a.group.id.cmp(&b.group.id))
            }),
            GroupSort::Failed => v.sort_by(|a, b| {
                b.counts
                    .failed
                    .cmp(&a.counts.failed)
                    .then_with(|| a.group.id.cmp(&b.group.id))
            }),
        }
        v
    }

    /// The workgroups as shown.
    pub fn visible_workgroups(&self) -> Vec<&WorkgroupView> {
        let needle = self.workgroups_filter.to_lowercase();
        let mut v: Vec<&WorkgroupView> = self
            .workgroups
            .iter()
            .filter(|w| needle.is_empty() || w.workgroup.name.to_lowercase().contains(&needle))
            .collect();
        v.sort_by(|a, b| a.workgroup.name.cmp(&b.workgroup.name));
        v
    }

    /// The event log as shown, newest first.
    pub fn visible_events(&self) -> Vec<&LogEntry> {
        let needle = self.events_filter.to_lowercase();
        self.events
            .iter()
            .filter(|e| !self.events_mine_only || e.mine)
            .filter(|e| {
                needle.is_empty()
                    || e.kind.to_lowercase().contains(&needle)
                    || e.subject.to_lowercase().contains(&needle)
                    || e.detail.to_lowercase().contains(&needle)
            })
            .collect()
    }

    /// The task shown in the detail view.
    pub fn detail_task(&self) -> Option<&Task> {
        let id = &self.task.as_ref()?.id;
        self.group.as_ref()?.dag.get(id)
    }

    /// The detail task's parents then children: (is_parent, id).
    pub fn detail_links(&self) -> Vec<(bool, String)> {
        let (Some(t), Some(g)) = (self.task.as_ref(), self.group.as_ref()) else {
            return Vec::new();
        };
        let Some(i) = g.dag.index_of(&t.id) else {
            return Vec::new();
        };
        let Some(node) = g.dag.node(i) else {
            return Vec::new();
        };
        let mut out: Vec<(bool, String)> = node
            .task
            .parent_ids
            .iter()
            .map(|p| (true, p.clone()))
            .collect();
        out.extend(
            node.children
                .iter()
                .filter_map(|c| g.dag.task(*c))
                .map(|c| (false, c.id.clone())),
        );
        out
    }

    /// Whether an action on an entity is in flight (`group:ID`...).
    pub fn pending_on(&self, key: &str) -> Option<Verb> {
        self.pending.get(key).copied()
    }

    fn say(&mut self, text: impl Into<String>) {
        self.status = Some(StatusLine {
            text: text.into(),
            error: false,
        });
    }

    fn fail(&mut self, text: impl Into<String>) {
        self.status = Some(StatusLine {
            text: text.into(),
            error: true,
        });
    }

    fn log(&mut self, entry: LogEntry) {
        self.events.push_front(entry);
        if self.events.len() > EVENT_LOG_LIMIT {
            self.events.pop_back();
        }
        if self.events_list.selected > 0 {
            self.events_list.selected += 1;
            self.events_list.offset += 1;
        }
    }

    fn log_mine(&mut self, text: String, error: bool) {
        self.log(LogEntry {
            seq: 0,
            at: self.now,
            kind: "action".into(),
            subject: String::new(),
            detail: text,
            mine: true,
            error,
        });
    }

    fn go(&mut self, v: View) {
        if self.view != v {
            self.history.push(self.view);
            if self.history.len() > 64 {
                self.history.remove(0);
            }
            self.view = v;
        }
    }

    fn back(&mut self) {
        if let Some(v) = self.history.pop() {
            self.view = v;
        } else if self.view != View::Groups {
            self.view = View::Groups;
        }
        if self.view == View::Dag && self.group.is_none() {
            self.view = View::Groups;
        }
    }

    fn open_group(&mut self, id: &str) -> Vec<Effect> {
        let Some(view) = self.groups.iter().find(|g| g.group.id == id).cloned() else {
            self.fail(format!("no group {id}"));
            return vec![];
        };
        self.task = None;
        self.go(View::Dag);
        if self.group.as_ref().is_some_and(|g| g.view.group.id == id) {
            return vec![];
        }
        self.group = Some(OpenGroup::new(view, self.now));
        vec![Effect::FetchGroup(id.to_string())]
    }

    fn find_group(&self, name: &str) -> Option<String> {
        let lower = name.to_lowercase();
        self.groups
            .iter()
            .find(|g| g.group.name == name || g.group.id == name)
            .or_else(|| {
                self.groups
                    .iter()
                    .find(|g| g.group.name.to_lowercase().contains(&lower))
            })
            .map(|g| g.group.id.clone())
    }

    fn open_task(&mut self, id: &str) {
        self.task = Some(TaskDetail {
            id: id.to_string(),
            scroll: 0,
            pane: TaskPane::Content,
            links: ListPos::default(),
        });
        self.go(View::Task);
    }

    fn refetch_all(&mut self) -> Vec<Effect> {
        let mut fx = vec![Effect::FetchGroups, Effect::FetchWorkgroups];
        self.groups_inflight = true;
        if let Some(g) = &mut self.group {
            g.loading = true;
            g.buffered.clear();
            fx.push(Effect::FetchGroup(g.view.group.id.clone()));
        }
        fx
    }
}

/// Applies one message and returns what the I/O side must do.
pub fn update(state: &mut AppState, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Key(k) => {
            if k.kind != KeyEventKind::Press {
                return vec![];
            }
            state.settle();
            let fx = on_key(state, k);
            state.settle();
            fx
        }
        Msg::Tick(now) => on_tick(state, now),
        Msg::Resize(w, h) => {
            state.size = (w, h);
            vec![]
        }
        Msg::Conn(c) => on_conn(state, c),
        Msg::Stream(m) => on_stream(state, m),
        Msg::Reply(r) => on_reply(state, r),
        Msg::Internal(e) => {
            state.fail(format!("internal error: {e}"));
            vec![]
        }
    }
}

fn on_tick(state: &mut AppState, now: Timestamp) -> Vec<Effect> {
    state.now = now;
    let mut fx = vec![];
    let stale = state
        .groups_fetched_at
        .is_none_or(|t| t.seconds_until(&now) >= GROUPS_REFRESH_SECS);
    if state.groups_dirty && !state.groups_inflight && stale {
        state.groups_dirty = false;
        state.groups_inflight = true;
        fx.push(Effect::FetchGroups);
    }
    if state.workgroups_dirty && state.view == View::Workgroups && stale {
        state.workgroups_dirty = false;
        fx.push(Effect::FetchWorkgroups);
    }
    fx
}

fn on_conn(state: &mut AppState, c: ConnEvent) -> Vec<Effect> {
    match c {
        ConnEvent::Connected { resumed } => {
            let was = std::mem::replace(&mut state.conn, ConnState::Connected);
            if matches!(was, ConnState::Reconnecting { .. }) {
                state.say("connected again");
            }
            if resumed {
                vec![]
            } else {
                state.refetch_all()
            }
        }
        ConnEvent::Disconnected {
            error,
            attempt,
            retry_in_ms,
        } => {
            state.conn = ConnState::Reconnecting {
                attempt,
                next_at: state.now.plus_millis(retry_in_ms as i64),
                error,
            };
            vec![]
        }
    }
}

fn task_log(seq: u64, at: Timestamp, kind: &str, t: &Task) -> LogEntry {
    let subject = if t.name.is_empty() {
        t.id.clone()
    } else {
        t.name.clone()
    };
    let detail = if kind == "task.deleted" {
        String::new()
    } else {
        task_status(t).to_string()
    };
    LogEntry {
        seq,
        at,
        kind: kind.to_string(),
        subject,
        detail,
        mine: false,
        error: task_status(t) == TaskStatus::Failed,
    }
}

fn on_stream(state: &mut AppState, m: StreamMessage) -> Vec<Effect> {
    if m.seq > state.last_seq {
        state.last_seq = m.seq;
    }
    let at = m.at.unwrap_or(state.now);
    let seq = m.seq;
    match m.event {
        Event::Resync { reason } => {
            state.say(format!("resynchronising: {reason}"));
            state.log(LogEntry {
                seq,
                at,
                kind: "resync".into(),
                subject: String::new(),
                detail: reason,
                mine: false,
                error: false,
            });
            state.refetch_all()
        }
        ev => {
            log_event(state, seq, at, &ev);
            apply_event(state, ev);
            vec![]
        }
    }
}

/// An operator action in the event log: `audit`, its target, and what was
/// done by whom to how many tasks.
fn audit_log(seq: u64, e: &AuditEntry) -> LogEntry {
    let mut detail = format!(
        "{} by {}, {} task{}",
        e.action,
        e.actor,
        e.affected,
        if e.affected == 1 { "" } else { "s" }
    );
    if let Some(d) = &e.detail {
        detail.push_str(", ");
        detail.push_str(d);
    }
    LogEntry {
        seq,
        at: e.at,
        kind: "audit".into(),
        subject: e.target.clone(),
        detail,
        mine: false,
        error: false,
    }
}

fn log_event(state: &mut AppState, seq: u64, at: Timestamp, ev: &Event) {
    let entry = match ev {
        Event::TaskCreated { task } => task_log(seq, at, "task.created", task),
        Event::TaskUpdated { task } => task_log(seq, at, "task.updated", task),
        Event::TaskDeleted { task } => task_log(seq, at, "task.deleted", task),
        Event::GroupCreated { task_group }
        | Event::GroupUpdated { task_group }
        | Event::GroupDeleted { task_group } => LogEntry {
            seq,
            at,
            kind: match ev {
                Event::GroupCreated { .. } => "group.created",
                Event::GroupUpdated { .. } => "group.updated",
                _ => "group.deleted",
            }
            .into(),
            subject: task_group.name.clone(),
            detail: if task_group.is_paused {
                "paused".into()
            } else {
                String::new()
            },
            mine: false,
            error: false,
        },
        Event::WorkgroupUpdated { workgroup } => LogEntry {
            seq,
            at,
            kind: "workgroup.updated".into(),
            subject: workgroup.name.clone(),
            detail: match workgroup.paused_until {
                Some(t) if t > at => format!(
                    "paused {}",
                    crate::theme::fmt_duration(at.seconds_until(&t))
                ),
                _ => "active".into(),
            },
            mine: false,
            error: false,
        },
        Event::AuditRecorded { entry } => {
            state.first_live_audit.get_or_insert(entry.seq);
            audit_log(seq, entry)
        }
        Event::WorkerUpdated { worker } => LogEntry {
            seq,
            at,
            kind: "worker.updated".into(),
            subject: worker.worker.clone(),
            detail: match worker.max_concurrency {
                Some(n) => format!("max {n}"),
                None => "no limit".into(),
            },
            mine: false,
            error: false,
        },
        Event::Resync { .. } => return,
    };
    state.log(entry);
}

fn apply_event(state: &mut AppState, ev: Event) {
    match ev {
        Event::TaskCreated { task } | Event::TaskUpdated { task } => {
            state.pending.remove(&format!("task:{}", task.id));
            state.groups_dirty = true;
            state.workgroups_dirty = true;
            if let Some(g) = &mut state.group {
                if g.view.group.id == task.task_group_id {
                    if g.loading {
                        g.buffered.push(Event::TaskUpdated { task });
                    } else {
                        g.dag.upsert(*task);
                    }
                }
            }
        }
        Event::TaskDeleted { task } => {
            state.groups_dirty = true;
            state.workgroups_dirty = true;
            if let Some(g) = &mut state.group {
                if g.view.group.id == task.task_group_id {
                    if g.loading {
                        g.buffered.push(Event::TaskDeleted { task });
                    } else {
                        g.dag.remove(&task.id);
                    }
                }
            }
        }
        Event::GroupCreated { task_group } | Event::GroupUpdated { task_group } => {
            state.pending.remove(&format!("group:{}", task_group.id));
            if let Some(g) = &mut state.group {
                if g.view.group.id == task_group.id {
                    g.view.group = task_group.clone();
                }
            }
            match state
                .groups
                .iter_mut()
                .find(|g| g.group.id == task_group.id)
            {
                Some(g) => g.group = task_group,
                None => {
                    state.groups.push(TaskGroupView {
                        group: task_group,
                        counts: StatusCounts::default(),
                        completed_percent: 100.0,
                    });
                    state.groups_dirty = true;
                }
            }
        }
        Event::GroupDeleted { task_group } => {
            state.pending.remove(&format!("group:{}", task_group.id));
            state.groups.retain(|g| g.group.id != task_group.id);
            if state
                .group
                .as_ref()
                .is_some_and(|g| g.view.group.id == task_group.id)
            {
                state.group = None;
                state.task = None;
                if matches!(state.view, View::Dag | View::Task) {
                    state.view = View::Groups;
                    state.history.clear();
                    state.say(format!("group {} was deleted", task_group.name));
                }
            }
        }
        Event::WorkgroupUpdated { workgroup } => {
            state.pending.remove(&format!("wg:{}", workgroup.name));
            match state
                .workgroups
                .iter_mut()
                .find(|w| w.workgroup.name == workgroup.name)
            {
                Some(w) => w.workgroup = workgroup,
                None => state.workgroups.push(WorkgroupView {
                    workgroup,
                    incomplete_tasks: 0,
                    in_flight: 0,
                }),
            }
        }
        Event::WorkerUpdated { .. } | Event::AuditRecorded { .. } | Event::Resync { .. } => {}
    }
}

fn on_reply(state: &mut AppState, r: Reply) -> Vec<Effect> {
    match r {
        Reply::Audit(res) => {
            // Older than anything logged live: appended at the old end,
            // newest first, without what the stream already delivered.
            if let Ok(list) = res {
                let live = state.first_live_audit.unwrap_or(u64::MAX);
                for e in list.entries.iter().filter(|e| e.seq < live) {
                    if state.events.len() >= EVENT_LOG_LIMIT {
                        break;
                    }
                    state.events.push_back(audit_log(0, e));
                }
            }
            vec![]
        }
        Reply::WhoAmI(res) => {
            // A read-only token makes the console read-only by itself; an
            // admin token never lifts --read-only.
            if let Ok(who) = res {
                if who.scope == crew_core::wire::TokenScope::ReadOnly && !state.read_only {
                    state.read_only = true;
                    state.keymap.set_read_only(true);
                    state.say(format!(
                        "read-only: token {:?} may not act",
                        crate::sanitize::sanitize(&who.name)
                    ));
                }
            }
            vec![]
        }
        Reply::Groups(res) => {
            state.groups_inflight = false;
            state.groups_fetched_at = Some(state.now);
            match res {
                Ok(list) => {
                    state.groups = list.task_groups;
                    state.groups_loaded = true;
                    if let Some(g) = &mut state.group {
                        if let Some(v) = state.groups.iter().find(|v| v.group.id == g.view.group.id)
                        {
                            g.view.group = v.group.clone();
                        }
                    }
                    let n = state.visible_groups().len();
                    state.groups_list.clamp(n);
                    if let Some(name) = state.want_group.take() {
                        match state.find_group(&name) {
                            Some(id) => return state.open_group(&id),
                            None => state.fail(format!("no group named {name}")),
                        }
                    }
                }
                Err(e) => state.fail(format!("listing groups: {e}")),
            }
            vec![]
        }
        Reply::Group { id, result } => {
            let Some(g) = &mut state.group else {
                return vec![];
            };
            if g.view.group.id != id {
                return vec![];
            }
            match result {
                Ok((view, tasks)) => {
                    g.view = view;
                    g.dag.load(tasks);
                    for ev in std::mem::take(&mut g.buffered) {
                        match ev {
                            Event::TaskDeleted { task } => g.dag.remove(&task.id),
                            Event::TaskCreated { task } | Event::TaskUpdated { task } => {
                                g.dag.upsert(*task)
                            }
                            _ => {}
                        }
                    }
                    g.loading = false;
                }
                Err(e) => {
                    g.loading = false;
                    let msg = format!("loading group {}: {e}", g.view.group.name);
                    state.fail(msg);
                }
            }
            vec![]
        }
        Reply::Workgroups(res) => {
            match res {
                Ok(list) => {
                    state.workgroups = list.workgroups;
                    let n = state.visible_workgroups().len();
                    state.workgroups_list.clamp(n);
                }
                Err(e) => state.fail(format!("listing workgroups: {e}")),
            }
            vec![]
        }
        Reply::BulkCount { req, result } => bulk_counted(state, req, result),
        Reply::Action { req, result } => {
            let what = req.describe();
            match result {
                Ok(r) => {
                    let mut text = format!("{what}: done");
                    if r.updated > 0 || r.deleted > 0 {
                        text = format!("{what}: {} updated, {} deleted", r.updated, r.deleted);
                    }
                    state.log_mine(text.clone(), false);
                    state.say(text);
                    if matches!(
                        req.target,
                        Target::Workgroup { .. } | Target::WorkgroupLimits { .. }
                    ) {
                        state.workgroups_dirty = true;
                    }
                    state.groups_dirty = true;
                    if state.conn != ConnState::Connected {
                        // No stream to bring the change: fetch it.
                        if let Some(k) = req.pending_key() {
                            state.pending.remove(&k);
                        }
                        return state.refetch_all();
                    }
                }
                Err(e) => {
                    if let Some(k) = req.pending_key() {
                        state.pending.remove(&k);
                    }
                    let text = format!("{what} failed: {e}");
                    state.log_mine(text.clone(), true);
                    state.fail(text);
                }
            }
            vec![]
        }
    }
}

// ---- keys ---------------------------------------------------------------------

fn on_key(state: &mut AppState, k: KeyEvent) -> Vec<Effect> {
    if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
        state.quit = true;
        return vec![Effect::Quit];
    }
    if state.help {
        state.help = false;
        return vec![];
    }
    if state.confirm.is_some() {
        return on_confirm_key(state, k);
    }
    if state.input != Input::None {
        return on_input_key(state, k);
    }
    let key = Key::from_event(&k);
    let Some(cmd) = state.keymap.lookup(state.view.scope(), key) else {
        return vec![];
    };
    on_command(state, cmd)
}

/// Longest text the typed confirmation keeps.
const CONFIRM_TYPED_MAX: usize = 24;

fn on_confirm_key(state: &mut AppState, k: KeyEvent) -> Vec<Effect> {
    let Some(c) = &mut state.confirm else {
        return vec![];
    };
    let typing = c.expect.is_some();
    match k.code {
        KeyCode::Left | KeyCode::Right | KeyCode::Tab | KeyCode::BackTab => {
            c.ok_focused = !c.ok_focused;
            vec![]
        }
        KeyCode::Backspace if typing => {
            c.typed.pop();
            vec![]
        }
        KeyCode::Char(ch) if typing && !k.modifiers.contains(KeyModifiers::CONTROL) => {
            if c.typed.chars().count() < CONFIRM_TYPED_MAX {
                c.typed.push(ch);
            }
            vec![]
        }
        KeyCode::Char('h') => {
            c.ok_focused = true;
            vec![]
        }
        KeyCode::Char('l') => {
            c.ok_focused = false;
            vec![]
        }
        KeyCode::Enter => {
            if c.ok_focused && !c.accepted() {
                let want = c.expect.clone().unwrap_or_default();
                state.fail(format!("type {want} or yes to confirm"));
                return vec![];
            }
            let Some(c) = state.confirm.take() else {
                return vec![];
            };
            if c.ok_focused {
                dispatch(state, c.req)
            } else {
                state.say("cancelled");
                vec![]
            }
        }
        KeyCode::Esc | KeyCode::Char('n') | KeyCode::Char('q') => {
            state.confirm = None;
            state.say("cancelled");
            vec![]
        }
        _ => vec![],
    }
}

fn on_input_key(state: &mut AppState, k: KeyEvent) -> Vec<Effect> {
    match k.code {
        KeyCode::Esc => {
            if matches!(state.input, Input::Filter(_)) {
                set_filter(state, String::new());
            }
            state.input = Input::None;
            vec![]
        }
        KeyCode::Enter => {
            let input = std::mem::replace(&mut state.input, Input::None);
            match input {
                Input::Filter(_) | Input::None => vec![],
                Input::Command(c) => run_command(state, c.trim()),
                Input::Seconds { workgroup, text } => match Some(text.trim())
                    .filter(|t| !t.is_empty())
                    .unwrap_or(DEFAULT_PAUSE_SECS)
                    .parse::<f64>()
                {
                    Ok(s) if s > 0.0 && s.is_finite() => dispatch(
                        state,
                        ActionRequest {
                            verb: Verb::Pause,
                            target: Target::Workgroup { name: workgroup },
                            seconds: Some(s),
                        },
                    ),
                    _ => {
                        state.fail(format!("not a number of seconds: {text}"));
                        vec![]
                    }
                },
                Input::Schedule {
                    group_id,
                    name,
                    text,
                } => {
                    let schedule = text.trim().to_string();
                    // Checked here too, so a typo is answered at once.
                    match crew_core::schedule::parse(&schedule) {
                        Err(e) if !schedule.is_empty() => {
                            state.fail(format!("schedule not set: {e}"));
                            vec![]
                        }
                        _ => dispatch(
                            state,
                            ActionRequest {
                                verb: Verb::Schedule,
                                target: Target::GroupSchedule {
                                    id: group_id,
                                    name,
                                    schedule,
                                },
                                seconds: None,
                            },
                        ),
                    }
                }
                Input::Limits { workgroup, text } => match WorkgroupLimits::parse(&text) {
                    Ok(limits) => dispatch(
                        state,
                        ActionRequest {
                            verb: Verb::Limit,
                            target: Target::WorkgroupLimits {
                                name: workgroup,
                                limits,
                            },
                            seconds: None,
                        },
                    ),
                    Err(e) => {
                        state.fail(format!("limits not set: {e}"));
                        vec![]
                    }
                },
            }
        }
        KeyCode::Backspace => {
            let text = match &mut state.input {
                Input::Filter(t)
                | Input::Command(t)
                | Input::Seconds { text: t, .. }
                | Input::Schedule { text: t, .. }
                | Input::Limits { text: t, .. } => {
                    t.pop();
                    t.clone()
                }
                Input::None => String::new(),
            };
            if matches!(state.input, Input::Filter(_)) {
                set_filter(state, text);
            }
            vec![]
        }
        KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => {
            let text = match &mut state.input {
                Input::Filter(t)
                | Input::Command(t)
                | Input::Seconds { text: t, .. }
                | Input::Schedule { text: t, .. }
                | Input::Limits { text: t, .. } => {
                    if t.chars().count() < 200 {
                        t.push(c);
                    }
                    t.clone()
                }
                Input::None => String::new(),
            };
            if matches!(state.input, Input::Filter(_)) {
                set_filter(state, text);
            }
            vec![]
        }
        _ => vec![],
    }
}

/// The text filter of the current view.
pub fn current_filter(state: &AppState) -> &str {
    match state.view {
        View::Groups => &state.groups_filter,
        View::Dag => state
            .group
            .as_ref()
            .map(|g| g.dag.filter().text.as_str())
            .unwrap_or(""),
        View::Task => "",
        View::Workgroups => &state.workgroups_filter,
        View::Events => &state.events_filter,
    }
}

fn set_filter(state: &mut AppState, text: String) {
    match state.view {
        View::Groups => {
            state.groups_filter = text;
            state.groups_list = ListPos::default();
        }
        View::Dag => {
            if let Some(g) = &mut state.group {
                let mut f = g.dag.filter().clone();
                f.text = text;
                g.dag.set_filter(f);
            }
        }
        View::Task => {}
        View::Workgroups => {
            state.workgroups_filter = text;
            state.workgroups_list = ListPos::default();
        }
        View::Events => {
            state.events_filter = text;
            state.events_list = ListPos::default();
        }
    }
}

fn run_command(state: &mut AppState, cmd: &str) -> Vec<Effect> {
    let (word, arg) = match cmd.split_once(char::is_whitespace) {
        Some((w, a)) => (w, a.trim()),
        None => (cmd, ""),
    };
    match word {
        "q" | "quit" | "q!" => {
            state.quit = true;
            vec![Effect::Quit]
        }
        "groups" | "g" | "grp" => {
            state.go(View::Groups);
            vec![]
        }
        "workgroups" | "wg" | "workgroup" => {
            state.go(View::Workgroups);
            vec![Effect::FetchWorkgroups]
        }
        "events" | "ev" | "log" => {
            state.go(View::Events);
            vec![]
        }
        "group" if !arg.is_empty() => match state.find_group(arg) {
            Some(id) => state.open_group(&id),
            None if !state.groups_loaded => {
                state.want_group = Some(arg.to_string());
                vec![]
            }
            None => {
                state.fail(format!("no group named {arg}"));
                vec![]
            }
        },
        "" => vec![],
        _ => {
            state.fail(format!(
                "unknown command :{cmd} (try :groups :workgroups :events :group NAME :q)"
            ));
            vec![]
        }
    }
}

fn list_len(state: &AppState) -> usize {
    match state.view {
        View::Groups => state.visible_groups().len(),
        View::Dag => state.group.as_ref().map_or(0, |g| g.dag.rows().len()),
        View::Task => 0,
        View::Workgroups => state.visible_workgroups().len(),
        View::Events => state.visible_events().len(),
    }
}

fn move_selection(state: &mut AppState, delta: isize) {
    let len = list_len(state);
    let page = state.page();
    match state.view {
        View::Groups => state.groups_list.step(len, delta, page),
        View::Dag => {
            if let Some(g) = &mut state.group {
                g.list.step(len, delta, page);
                g.selected_node = g.dag.rows().get(g.list.selected).map(|r| r.node);
            }
        }
        View::Task => {
            let links = state.detail_links().len();
            let max_scroll = state
                .detail_task()
                .map(|t| crate::view::task::content_lines(t, &state.theme, state.now).len())
                .unwrap_or(0);
            if let Some(t) = &mut state.task {
                match t.pane {
                    TaskPane::Content => {
                        let s = (t.scroll as isize + delta).max(0) as usize;
                        t.scroll = s.min(max_scroll.saturating_sub(1));
                    }
                    TaskPane::Links => t.links.step(links, delta, page),
                }
            }
        }
        View::Workgroups => state.workgroups_list.step(len, delta, page),
        View::Events => state.events_list.step(len, delta, page),
    }
}

fn on_command(state: &mut AppState, cmd: Command) -> Vec<Effect> {
    let page = state.page() as isize;
    match cmd {
        Command::Help => {
            state.help = true;
            vec![]
        }
        Command::Quit => {
            state.quit = true;
            vec![Effect::Quit]
        }
        Command::CommandMode => {
            state.input = Input::Command(String::new());
            vec![]
        }
        Command::Filter => {
            if state.view != View::Task {
                state.input = Input::Filter(current_filter(state).to_string());
            }
            vec![]
        }
        Command::Back => {
            let filtered = match state.view {
                View::Dag => state
                    .group
                    .as_ref()
                    .is_some_and(|g| g.dag.filter().active()),
                _ => !current_filter(state).is_empty(),
            };
            if filtered {
                if let Some(g) = state.group.as_mut().filter(|_| state.view == View::Dag) {
                    g.dag.set_filter(DagFilter::default());
                    g.bulk = false;
                } else {
                    set_filter(state, String::new());
                }
                state.say("filter cleared");
            } else {
                state.back();
            }
            vec![]
        }
        Command::Up => {
            move_selection(state, -1);
            vec![]
        }
        Command::Down => {
            move_selection(state, 1);
            vec![]
        }
        Command::PageUp => {
            move_selection(state, -page);
            vec![]
        }
        Command::PageDown => {
            move_selection(state, page);
            vec![]
        }
        Command::Top => {
            move_selection(state, isize::MIN / 2);
            vec![]
        }
        Command::Bottom => {
            move_selection(state, isize::MAX / 2);
            vec![]
        }
        Command::NextPane => {
            if let Some(t) = &mut state.task {
                if state.view == View::Task {
                    t.pane = match t.pane {
                        TaskPane::Content => TaskPane::Links,
                        TaskPane::Links => TaskPane::Content,
                    };
                }
            }
            vec![]
        }
        Command::Refresh => {
            state.say("refreshing");
            state.refetch_all()
        }
        Command::Groups => {
            state.go(View::Groups);
            vec![]
        }
        Command::Workgroups => {
            state.go(View::Workgroups);
            vec![Effect::FetchWorkgroups]
        }
        Command::Events => {
            state.go(View::Events);
            vec![]
        }
        Command::Open => on_open(state),
        Command::Sort => {
            state.groups_sort = state.groups_sort.next();
            vec![]
        }
        Command::ToggleExpand => {
            if let Some(g) = &mut state.group {
                if let Some(r) = g.dag.rows().get(g.list.selected).copied() {
                    if r.kind == RowKind::Primary && r.has_children && !g.dag.filter().active() {
                        g.dag.toggle(r.node);
                    }
                }
            }
            vec![]
        }
        Command::ExpandAll => {
            if let Some(g) = &mut state.group {
                g.dag.expand_all();
            }
            vec![]
        }
        Command::CollapseAll => {
            if let Some(g) = &mut state.group {
                g.dag.collapse_all();
            }
            vec![]
        }
        Command::StatusFilter => {
            if let Some(g) = &mut state.group {
                let mut f = g.dag.filter().clone();
                f.status = match f.status {
                    None => Some(TaskStatus::ALL[0]),
                    Some(s) => TaskStatus::ALL
                        .iter()
                        .position(|x| *x == s)
                        .and_then(|i| TaskStatus::ALL.get(i + 1).copied()),
                };
                let label = f.status.map_or("all".to_string(), |s| s.to_string());
                g.dag.set_filter(f);
                state.say(format!("status filter: {label}"));
            }
            vec![]
        }
        Command::Lineage => {
            if let Some(g) = &mut state.group {
                let mut f = g.dag.filter().clone();
                if f.lineage.is_some() {
                    f.lineage = None;
                } else if let Some(t) = g.selected_task() {
                    f.lineage = Some(t.id.clone());
                }
                g.dag.set_filter(f);
            }
            vec![]
        }
        Command::BulkTarget => {
            if let Some(g) = &mut state.group {
                if g.dag.filter().active() {
                    g.bulk = !g.bulk;
                    let msg = if g.bulk {
                        "actions now apply to every filtered task"
                    } else {
                        "actions now apply to the selected task"
                    };
                    state.say(msg);
                } else {
                    state.fail("bulk actions need a filter (/, f or u) first");
                }
            }
            vec![]
        }
        Command::Limit => on_limit(state),
        Command::Schedule => on_schedule(state),
        Command::MineOnly => {
            state.events_mine_only = !state.events_mine_only;
            state.events_list = ListPos::default();
            vec![]
        }
        Command::Pause
        | Command::Resume
        | Command::Reset
        | Command::Retry
        | Command::Delete
        | Command::Cancel => match Verb::from_command(cmd) {
            Some(v) => on_action(state, v),
            None => vec![],
        },
    }
}

/// Opens the schedule prompt for the selected group (groups view) or the
/// open one, with its current schedule to edit.
fn on_schedule(state: &mut AppState) -> Vec<Effect> {
    if state.read_only {
        state.fail("read-only: actions are disabled");
        return vec![];
    }
    let group = match state.view {
        View::Groups => state
            .visible_groups()
            .get(state.groups_list.selected)
            .map(|g| g.group.clone()),
        View::Dag | View::Task => state.group.as_ref().map(|g| g.view.group.clone()),
        View::Workgroups | View::Events => None,
    };
    let Some(g) = group else {
        return vec![];
    };
    state.input = Input::Schedule {
        group_id: g.id,
        name: g.name,
        text: g.schedule.unwrap_or_default(),
    };
    vec![]
}

/// Opens the limits prompt for the selected workgroup, with its current
/// limits to edit.
fn on_limit(state: &mut AppState) -> Vec<Effect> {
    if state.read_only {
        state.fail("read-only: actions are disabled");
        return vec![];
    }
    if state.view != View::Workgroups {
        return vec![];
    }
    let Some(w) = state
        .visible_workgroups()
        .get(state.workgroups_list.selected)
        .copied()
    else {
        return vec![];
    };
    let limits = w.workgroup.limits;
    state.input = Input::Limits {
        workgroup: w.workgroup.name.clone(),
        text: if limits.is_empty() {
            String::new()
        } else {
            limits.to_string()
        },
    };
    vec![]
}

fn on_open(state: &mut AppState) -> Vec<Effect> {
    match state.view {
        View::Groups => {
            let id = state
                .visible_groups()
                .get(state.groups_list.selected)
                .map(|g| g.group.id.clone());
            match id {
                Some(id) => state.open_group(&id),
                None => vec![],
            }
        }
        View::Dag => {
            let page = state.page();
            let Some(g) = &mut state.group else {
                return vec![];
            };
            let Some(row) = g.dag.rows().get(g.list.selected).copied() else {
                return vec![];
            };
            if row.kind == RowKind::Ref {
                // Jump to where the task is expanded.
                g.dag.reveal(row.node);
                g.dag.settle();
                if let Some(r) = g.dag.primary_row(row.node) {
                    g.list.selected = r;
                    g.list.follow(page);
                    g.selected_node = Some(row.node);
                }
                return vec![];
            }
            if let Some(id) = g.dag.task(row.node).map(|t| t.id.clone()) {
                state.open_task(&id);
            }
            vec![]
        }
        View::Task => {
            let Some(t) = &state.task else {
                return vec![];
            };
            if t.pane != TaskPane::Links {
                return vec![];
            }
            let sel = t.links.selected;
            if let Some((_, id)) = state.detail_links().get(sel).cloned() {
                if state
                    .group
                    .as_ref()
                    .is_some_and(|g| g.dag.get(&id).is_some())
                {
                    // Replace, don't stack: esc goes back to the tree.
                    state.task = Some(TaskDetail {
                        id,
                        scroll: 0,
                        pane: TaskPane::Links,
                        links: ListPos::default(),
                    });
                } else {
                    state.fail(format!("task {id} is not in this group"));
                }
            }
            vec![]
        }
        View::Workgroups | View::Events => vec![],
    }
}

fn on_action(state: &mut AppState, verb: Verb) -> Vec<Effect> {
    if state.read_only {
        state.fail("read-only: actions are disabled");
        return vec![];
    }
    let req = match state.view {
        View::Groups => {
            let Some(g) = state
                .visible_groups()
                .get(state.groups_list.selected)
                .copied()
            else {
                return vec![];
            };
            let total = g.counts.total();
            let req = ActionRequest {
                verb,
                target: Target::Group {
                    id: g.group.id.clone(),
                    name: g.group.name.clone(),
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
        View::Task => {
            let Some(t) = state.detail_task() else {
                return vec![];
            };
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
        View::Workgroups => {
            let Some(w) = state
                .visible_workgroups()
                .get(state.workgroups_list.selected)
                .copied()
            else {
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
/// so OK also wants that count, or `yes`, typed. `delete_total` is what a
/// delete removes, descendants included.
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
                if name.is_empty() { id } else { name },
                if n == 1 { "" } else { "s" }
            )
        }
        (Target::Task { name, id, .. }, Verb::Reset) => format!(
            "Reset task {}? Its output and errors are cleared, the tasks it created are deleted and its descendants are reset.",
            if name.is_empty() { id } else { name }
        ),
        (Target::Task { name, id, .. }, Verb::Cancel) => format!(
            "Cancel the running call of task {}? The worker's answer is ignored, the attempt is recorded as cancelled (none used up) and the task is paused.",
            if name.is_empty() { id } else { name }
        ),
        (Target::Group { name, .. }, Verb::Delete) => format!(
            "Delete group {name} and all its {} tasks?",
            delete_total.unwrap_or(0)
        ),
        (Target::Group { name, .. }, Verb::Reset) => format!(
            "Reset group {name} ({} tasks)? Continuations are deleted; with seeds, every non-seed task.",
            delete_total.unwrap_or(0)
        ),
        (Target::Filter { matched, .. }, Verb::Delete) => format!(
            "Delete the {matched} filtered tasks and their descendants: {} tasks in all?",
            delete_total.unwrap_or(*matched as usize)
        ),
        (Target::Filter { matched, .. }, v) => format!(
            "{} the {matched} filtered tasks ({} changed), all or none?",
            capitalise(v.as_str()),
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
fn bulk_counted(
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

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn dispatch(state: &mut AppState, req: ActionRequest) -> Vec<Effect> {
    if state.read_only {
        state.fail("read-only: actions are disabled");
        return vec![];
    }
    if let Some(k) = req.pending_key() {
        state.pending.insert(k, req.verb);
    }
    state.say(format!("{}…", req.describe()));
    vec![Effect::Act(req)]
}
