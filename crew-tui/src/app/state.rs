//! The console's state: the screens, their lists and selections, the open
//! group, the event log and the connection, with the small operations the
//! reducer ([`super::update`]) builds on. Nothing here does I/O.

use super::action::{Confirm, Verb};
use super::dag::{Dag, DagFilter, RowKind};
use super::keymap::{KeyMap, Scope};
use super::msg::Effect;
use crate::text::short_name;
use crate::theme::Theme;
use crew_core::model::derive_status;
pub use crew_core::wire::GroupSort;
use crew_core::wire::{Event, TaskGroupView, WorkgroupView};
use crew_core::{Task, TaskGroup, TaskStatus, Timestamp};
use std::collections::{HashMap, VecDeque};

/// Seconds an answered action keeps its in-flight marker while waiting
/// for the event that confirms it.
pub const PENDING_GRACE_SECS: f64 = 2.0;

/// How many of the daemon's entries (task, group and workgroup events) the
/// event log keeps.
pub const EVENT_LOG_LIMIT: usize = 2000;

/// How many of the operator's own actions and audit entries the event log
/// keeps, apart from [`EVENT_LOG_LIMIT`]: on a busy daemon, task events
/// pushed them out within minutes, and "mine only" showed none.
pub const OWN_LOG_LIMIT: usize = 500;

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

/// How the console names a group: its name, or its id when the name is
/// empty or blank (as a task without a name goes by its id), so that every
/// row, title and question can tell it apart.
pub fn group_name(g: &TaskGroup) -> &str {
    if g.name.trim().is_empty() {
        &g.id
    } else {
        &g.name
    }
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
        /// The daemon refused the token ([`ConnEvent::Disconnected`]).
        ///
        /// [`ConnEvent::Disconnected`]: crate::app::msg::ConnEvent::Disconnected
        refused: bool,
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
    pub(super) fn clamp(&mut self, len: usize) {
        if len == 0 {
            self.selected = 0;
        } else if self.selected >= len {
            self.selected = len - 1;
        }
    }

    pub(super) fn step(&mut self, len: usize, delta: isize, page: usize) {
        if len == 0 {
            self.selected = 0;
            return;
        }
        let s = self.selected as isize + delta;
        self.selected = s.clamp(0, len as isize - 1) as usize;
        self.follow(page);
    }

    pub(super) fn follow(&mut self, page: usize) {
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

impl Input {
    /// The text being typed, if any.
    pub fn text_mut(&mut self) -> Option<&mut String> {
        match self {
            Input::Filter(t)
            | Input::Command(t)
            | Input::Seconds { text: t, .. }
            | Input::Schedule { text: t, .. }
            | Input::Limits { text: t, .. } => Some(t),
            Input::None => None,
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

impl LogEntry {
    /// Whether it is kept under [`OWN_LOG_LIMIT`] rather than
    /// [`EVENT_LOG_LIMIT`]: the operator's own action, or an audit entry.
    pub fn own(&self) -> bool {
        self.mine || self.kind == "audit"
    }
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
    /// The last fetch failed: the tree is what was seen before, not
    /// necessarily what the daemon has now.
    pub stale: bool,
    buffered: Vec<Event>,
    pub(super) selected_node: Option<u32>,
    /// Actions apply to every task the filter shows, not to the selected one.
    pub bulk: bool,
}

impl OpenGroup {
    /// Filters the tree. With no filter left, bulk actions end: they
    /// would silently apply to the selected task again, then to every task
    /// of the next filter. Whether they ended.
    pub(super) fn filter_by(&mut self, f: DagFilter) -> bool {
        let ended = self.bulk && !f.active();
        if ended {
            self.bulk = false;
        }
        self.dag.set_filter(f);
        ended
    }

    pub(super) fn new(view: TaskGroupView, now: Timestamp) -> Self {
        OpenGroup {
            view,
            dag: Dag::at(now),
            list: ListPos::default(),
            loading: true,
            stale: false,
            buffered: Vec::new(),
            selected_node: None,
            bulk: false,
        }
    }

    /// A task event of this group: applied to the tree, or kept until the
    /// snapshot being fetched arrives.
    pub(super) fn task_event(&mut self, ev: Event) {
        if self.loading {
            self.buffered.push(ev);
        } else {
            self.apply_task_event(ev);
        }
    }

    /// The snapshot arrived: the tree is rebuilt from it, then the events
    /// that came meanwhile are applied.
    pub(super) fn loaded(&mut self, view: TaskGroupView, tasks: Vec<Task>) {
        self.view = view;
        self.dag.load(tasks);
        for ev in std::mem::take(&mut self.buffered) {
            self.apply_task_event(ev);
        }
        self.loading = false;
        self.stale = false;
    }

    /// Applies a task's creation, update or deletion to the tree.
    fn apply_task_event(&mut self, ev: Event) {
        match ev {
            Event::TaskDeleted { task } => self.dag.remove(&task.id),
            Event::TaskCreated { task } | Event::TaskUpdated { task } => self.dag.upsert(*task),
            _ => {}
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
    /// `read_only` was set because the token's scope is read-only (not by
    /// `--read-only`): a daemon back with an admin scope for it lifts it.
    pub(super) read_only_by_token: bool,
    /// The screen shown.
    pub view: View,
    pub(super) history: Vec<View>,
    /// The help overlay is open.
    pub help: bool,
    /// Text being typed.
    pub input: Input,
    /// A confirm dialog.
    pub confirm: Option<Confirm>,
    /// The status line.
    pub status: Option<StatusLine>,
    /// Groups: the first page of those matching `groups_search`, in
    /// `groups_page_sort`'s order.
    pub groups: Vec<TaskGroupView>,
    /// How many groups the daemon has that match `groups_search`: more than
    /// `groups` holds when there are more than a page.
    pub groups_total: u64,
    /// The search `groups` answers (empty: every group).
    pub(super) groups_search: String,
    /// The order `groups` is the first page of: when it is not
    /// `groups_sort` and there are more groups than a page, the page is
    /// fetched again in the new order.
    pub groups_page_sort: GroupSort,
    /// The groups list has been fetched once.
    pub groups_loaded: bool,
    /// `/` filter of the groups list.
    pub groups_filter: String,
    /// Sort of the groups list.
    pub groups_sort: GroupSort,
    /// Groups selection.
    pub groups_list: ListPos,
    pub(super) groups_dirty: bool,
    pub(super) groups_inflight: bool,
    pub(super) groups_fetched_at: Option<Timestamp>,
    pub(super) want_group: Option<String>,
    /// The open group.
    pub group: Option<OpenGroup>,
    /// The task detail.
    pub task: Option<TaskDetail>,
    /// Every workgroup.
    pub workgroups: Vec<WorkgroupView>,
    /// Workgroups named with `:workgroup NAME` that the daemon does not
    /// list (no task uses them yet and they were never paused), shown idle
    /// so that they can be paused ahead of their tasks.
    pub workgroups_named: Vec<WorkgroupView>,
    /// Workgroups selection.
    pub workgroups_list: ListPos,
    /// `/` filter of the workgroups.
    pub workgroups_filter: String,
    pub(super) workgroups_dirty: bool,
    /// The event log, newest first.
    pub events: VecDeque<LogEntry>,
    /// How many of `events` are [`LogEntry::own`].
    pub(super) own_logged: usize,
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
    pub(super) first_live_audit: Option<u64>,
    /// Actions in flight, by entity (`group:ID`, `task:ID`, `wg:NAME`).
    pub pending: HashMap<String, Verb>,
    /// When the daemon answered the action in flight on an entity: its
    /// event should follow soon, and an action that changed nothing has
    /// none, so the marker goes after [`PENDING_GRACE_SECS`] anyway.
    pub(super) answered: HashMap<String, Timestamp>,
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
            read_only_by_token: false,
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
            groups_total: 0,
            groups_search: String::new(),
            groups_page_sort: GroupSort::Newest,
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
            workgroups_named: Vec::new(),
            workgroups_list: ListPos::default(),
            workgroups_filter: String::new(),
            workgroups_dirty: false,
            events: VecDeque::new(),
            own_logged: 0,
            events_list: ListPos::default(),
            events_filter: String::new(),
            events_mine_only: false,
            last_seq: 0,
            first_live_audit: None,
            pending: HashMap::new(),
            answered: HashMap::new(),
            quit: false,
        }
    }

    /// The requests to make at start.
    pub fn start(&mut self) -> Vec<Effect> {
        vec![
            self.fetch_groups(),
            Effect::FetchWorkgroups,
            Effect::FetchWhoAmI,
            Effect::FetchAudit,
        ]
    }

    /// Fetches the groups list for the `/` filter: the daemon searches, so
    /// that groups beyond the first page can be found.
    pub(super) fn fetch_groups(&mut self) -> Effect {
        self.fetch_groups_matching(self.groups_filter.trim().to_string())
    }

    /// Fetches the first page of the groups matching `search`.
    pub(super) fn fetch_groups_matching(&mut self, search: String) -> Effect {
        self.groups_inflight = true;
        Effect::FetchGroups {
            search,
            sort: self.groups_sort,
        }
    }

    /// Whether the loaded groups hold every group `text` can match, so
    /// that filtering them is enough: the page was complete, and its
    /// search is part of `text`.
    pub(super) fn groups_cover(&self, text: &str) -> bool {
        self.groups_loaded
            && self.groups_total <= self.groups.len() as u64
            && text
                .trim()
                .to_lowercase()
                .contains(&self.groups_search.to_lowercase())
    }

    /// Whether the daemon answers the loaded page with a pass over every
    /// group (a search: every order reads only up to the page without
    /// one), and its answer holds more groups than the page: refreshing it
    /// costs the daemon that pass.
    pub(super) fn groups_page_searched(&self) -> bool {
        !self.groups_search.is_empty() && self.groups_total > self.groups.len() as u64
    }

    /// Whether the loaded groups answer another search than the filter's,
    /// or another order than the list's, and do not hold all the filter
    /// can match: the daemon must be asked.
    pub(super) fn groups_need_search(&self) -> bool {
        (self.groups_search != self.groups_filter.trim()
            || self.groups_page_sort != self.groups_sort)
            && !self.groups_cover(&self.groups_filter)
    }

    /// Opens the group `name` (a name or id) if the loaded groups have it;
    /// else asks the daemon for groups matching it, once, and tries again
    /// with its answer. A partial match ([`AppState::find_group`]) only
    /// counts once every group that could match has been looked at: on a
    /// page of the newest, it could pick another group than the one meant.
    pub(super) fn open_named_group(&mut self, name: &str) -> Vec<Effect> {
        let name = name.trim();
        let exact = self
            .groups
            .iter()
            .find(|g| g.group.name == name || g.group.id == name)
            .map(|g| g.group.id.clone());
        if let Some(id) = exact {
            return self.open_group(&id);
        }
        if !self.groups_loaded || self.groups_inflight {
            // Decided when the answer on its way arrives.
            self.want_group = Some(name.to_string());
            return vec![];
        }
        if self.groups_search != name && !self.groups_cover(name) {
            self.want_group = Some(name.to_string());
            return vec![self.fetch_groups_matching(name.to_string())];
        }
        match self.find_group(name) {
            Some(id) => self.open_group(&id),
            None => {
                self.fail(format!("no group named {}", short_name(name)));
                vec![]
            }
        }
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
        // Trimmed, as the daemon is asked: a page it searched for "delta"
        // is not filtered again by "delta ".
        let needle = self.groups_filter.trim().to_lowercase();
        let mut v: Vec<&TaskGroupView> = self
            .groups
            .iter()
            .filter(|g| {
                needle.is_empty()
                    || g.group.name.to_lowercase().contains(&needle)
                    || g.group.id.to_lowercase().contains(&needle)
            })
            .collect();
        v.sort_by(|a, b| self.groups_sort.compare(a, b));
        v
    }

    /// The workgroups as shown: the daemon's, and those named with
    /// `:workgroup NAME` it does not list.
    pub fn visible_workgroups(&self) -> Vec<&WorkgroupView> {
        let needle = self.workgroups_filter.to_lowercase();
        let listed = |name: &str| self.workgroups.iter().any(|w| w.workgroup.name == name);
        let named = self
            .workgroups_named
            .iter()
            .filter(|w| !listed(&w.workgroup.name));
        let mut v: Vec<&WorkgroupView> = self
            .workgroups
            .iter()
            .chain(named)
            .filter(|w| needle.is_empty() || w.workgroup.name.to_lowercase().contains(&needle))
            .collect();
        v.sort_by(|a, b| a.workgroup.name.cmp(&b.workgroup.name));
        v
    }

    /// Opens the workgroups view on the workgroup `name`, shown idle when
    /// the daemon does not list it (its tasks may not exist yet: an
    /// operator pausing it ahead of an outage). A name the daemon would
    /// refuse is refused here, saying why, rather than listed.
    pub(super) fn open_named_workgroup(&mut self, name: &str) -> Vec<Effect> {
        // The daemon's own rule for workgroup names.
        if let Err(e) = crew_core::dag::check_safe_name("workgroup", name) {
            self.fail(e.to_string());
            return vec![];
        }
        let known = self
            .workgroups
            .iter()
            .chain(self.workgroups_named.iter())
            .any(|w| w.workgroup.name == name);
        if !known {
            self.workgroups_named.push(WorkgroupView {
                workgroup: crew_core::Workgroup::new(name),
                incomplete_tasks: 0,
                in_flight: 0,
            });
            self.say(format!(
                "workgroup {} has no tasks yet: p pauses it ahead of them",
                short_name(name)
            ));
        }
        self.workgroups_filter.clear();
        self.go(View::Workgroups);
        if let Some(i) = self
            .visible_workgroups()
            .iter()
            .position(|w| w.workgroup.name == name)
        {
            self.workgroups_list.selected = i;
        }
        vec![Effect::FetchWorkgroups]
    }

    /// The group selected in the groups list, as shown.
    pub fn selected_group(&self) -> Option<&TaskGroupView> {
        self.visible_groups()
            .get(self.groups_list.selected)
            .copied()
    }

    /// The workgroup selected in the workgroups list, as shown.
    pub fn selected_workgroup(&self) -> Option<&WorkgroupView> {
        self.visible_workgroups()
            .get(self.workgroups_list.selected)
            .copied()
    }

    /// The id of the group selected in the groups list, to select it again
    /// once the list has changed ([`AppState::reselect_group`]).
    pub(super) fn group_anchor(&self) -> Option<String> {
        self.selected_group().map(|g| g.group.id.clone())
    }

    /// Selects the group `anchor` again after the list changed (a page
    /// refreshed, a group created or gone, another order): rows move under
    /// the selection, and an action must not hit the group that took its
    /// row. When the group is gone, the selection stays on its row.
    pub(super) fn reselect_group(&mut self, anchor: Option<String>) {
        let groups = self.visible_groups();
        let n = groups.len();
        let found = anchor.and_then(|id| groups.iter().position(|g| g.group.id == id));
        if let Some(i) = found {
            self.groups_list.selected = i;
        }
        self.groups_list.clamp(n);
    }

    /// The name of the workgroup selected, to select it again once the list
    /// has changed ([`AppState::reselect_workgroup`]).
    pub(super) fn workgroup_anchor(&self) -> Option<String> {
        self.selected_workgroup().map(|w| w.workgroup.name.clone())
    }

    /// Selects the workgroup `anchor` again after the list changed, as
    /// [`AppState::reselect_group`] does for groups.
    pub(super) fn reselect_workgroup(&mut self, anchor: Option<String>) {
        let wgs = self.visible_workgroups();
        let n = wgs.len();
        let found = anchor.and_then(|name| wgs.iter().position(|w| w.workgroup.name == name));
        if let Some(i) = found {
            self.workgroups_list.selected = i;
        }
        self.workgroups_list.clamp(n);
    }

    /// The event log as shown, newest first.
    pub fn visible_events(&self) -> Vec<&LogEntry> {
        let needle = self.events_filter.to_lowercase();
        self.events
            .iter()
            .filter(|e| self.event_shown(e, &needle))
            .collect()
    }

    /// Whether the event log shows `e` under "mine only" and the filter
    /// `needle` (lowercased).
    fn event_shown(&self, e: &LogEntry, needle: &str) -> bool {
        (!self.events_mine_only || e.mine)
            && (needle.is_empty()
                || e.kind.to_lowercase().contains(needle)
                || e.subject.to_lowercase().contains(needle)
                || e.detail.to_lowercase().contains(needle))
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

    pub(super) fn say(&mut self, text: impl Into<String>) {
        self.status = Some(StatusLine {
            text: text.into(),
            error: false,
        });
    }

    pub(super) fn fail(&mut self, text: impl Into<String>) {
        self.status = Some(StatusLine {
            text: text.into(),
            error: true,
        });
    }

    pub(super) fn log(&mut self, entry: LogEntry) {
        let needle = self.events_filter.to_lowercase();
        // Only an entry the log shows moves the selected one down a row.
        let shown = self.event_shown(&entry, &needle);
        let own = entry.own();
        self.events.push_front(entry);
        if shown && self.events_list.selected > 0 {
            self.events_list.selected += 1;
            self.events_list.offset += 1;
        }
        self.own_logged += usize::from(own);
        // Each kind has its own cap: the oldest of the new entry's kind goes.
        let (kept, limit) = self.logged(own);
        if kept > limit {
            if let Some(oldest) = self.events.iter().rposition(|e| e.own() == own) {
                self.evict(oldest, &needle);
            }
        }
    }

    /// Appends an entry older than every one logged (the audit history), if
    /// its kind has room left.
    pub(super) fn log_older(&mut self, entry: LogEntry) {
        let own = entry.own();
        let (kept, limit) = self.logged(own);
        if kept < limit {
            self.own_logged += usize::from(own);
            self.events.push_back(entry);
        }
    }

    /// How many entries of a kind ([`LogEntry::own`] or not) the log holds,
    /// and how many it keeps.
    fn logged(&self, own: bool) -> (usize, usize) {
        if own {
            (self.own_logged, OWN_LOG_LIMIT)
        } else {
            (self.events.len() - self.own_logged, EVENT_LOG_LIMIT)
        }
    }

    /// Drops the log's entry at `at`, keeping the selection on the entry it
    /// was on: a shown entry above it moves it up a row; when the selected
    /// entry itself goes, the next one takes its row, or the one above when
    /// it was the last (the selection had pointed past the end, and the log
    /// showed none of its entries).
    fn evict(&mut self, at: usize, needle: &str) {
        let Some(gone) = self.events.remove(at) else {
            return;
        };
        if gone.own() {
            self.own_logged = self.own_logged.saturating_sub(1);
        }
        let sel = self.events_list.selected;
        if sel == 0 || !self.event_shown(&gone, needle) {
            return;
        }
        // The row it had, counted only as far as the selection's.
        let row = self
            .events
            .iter()
            .take(at)
            .filter(|e| self.event_shown(e, needle))
            .take(sel + 1)
            .count();
        let last = row == sel
            && !self
                .events
                .iter()
                .skip(at)
                .any(|e| self.event_shown(e, needle));
        if row < sel || last {
            self.events_list.selected -= 1;
            self.events_list.offset = self.events_list.offset.saturating_sub(1);
        }
    }

    pub(super) fn log_mine(&mut self, text: String, error: bool) {
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

    pub(super) fn go(&mut self, v: View) {
        if self.view != v {
            self.history.push(self.view);
            if self.history.len() > 64 {
                self.history.remove(0);
            }
            self.view = v;
        }
    }

    pub(super) fn back(&mut self) {
        if let Some(v) = self.history.pop() {
            self.view = v;
        } else if self.view != View::Groups {
            self.view = View::Groups;
        }
        if self.view == View::Dag && self.group.is_none() {
            self.view = View::Groups;
        }
    }

    pub(super) fn open_group(&mut self, id: &str) -> Vec<Effect> {
        let Some(view) = self.groups.iter().find(|g| g.group.id == id).cloned() else {
            self.fail(format!("no group {id}"));
            return vec![];
        };
        self.task = None;
        self.go(View::Dag);
        if let Some(g) = self.group.as_mut().filter(|g| g.view.group.id == id) {
            // The tree kept from before is current unless its last fetch
            // failed: then it is fetched again.
            if !g.stale || g.loading {
                return vec![];
            }
            g.loading = true;
            g.buffered.clear();
            return vec![Effect::FetchGroup(id.to_string())];
        }
        self.group = Some(OpenGroup::new(view, self.now));
        vec![Effect::FetchGroup(id.to_string())]
    }

    pub(super) fn find_group(&self, name: &str) -> Option<String> {
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

    pub(super) fn open_task(&mut self, id: &str) {
        self.task = Some(TaskDetail {
            id: id.to_string(),
            scroll: 0,
            pane: TaskPane::Content,
            links: ListPos::default(),
        });
        self.go(View::Task);
    }

    /// The group `id` no longer exists (deleted, or gone from a daemon that
    /// came back with another store): it leaves the lists, and the console
    /// leaves it if it is open, saying `why` after its name.
    pub(super) fn group_gone(&mut self, id: &str, why: &str) {
        self.pending.remove(&format!("group:{id}"));
        let anchor = self.group_anchor();
        self.groups.retain(|g| g.group.id != id);
        self.reselect_group(anchor);
        let Some(g) = self.group.take_if(|g| g.view.group.id == id) else {
            return;
        };
        self.task = None;
        if matches!(self.view, View::Dag | View::Task) {
            self.view = View::Groups;
            self.history.clear();
            self.say(format!(
                "group {} {why}",
                short_name(group_name(&g.view.group))
            ));
        }
    }

    pub(super) fn refetch_all(&mut self) -> Vec<Effect> {
        let mut fx = vec![self.fetch_groups(), Effect::FetchWorkgroups];
        if let Some(g) = &mut self.group {
            g.loading = true;
            g.buffered.clear();
            fx.push(Effect::FetchGroup(g.view.group.id.clone()));
        }
        fx
    }
}
