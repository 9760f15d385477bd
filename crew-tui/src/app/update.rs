//! The reducer: [`update`] takes one [`Msg`] (a key, a server message or a
//! tick) and returns the [`Effect`]s the I/O side must carry out. It never
//! does I/O and never reads the clock: time arrives in [`Msg::Tick`].
//! Keys are handled in [`super::input`], actions in [`super::action`];
//! this module applies the daemon's side: the stream and REST answers.

use super::action::{bulk_counted, Target};
use super::input::on_key;
use super::msg::{ConnEvent, Effect, Msg, Reply};
use super::state::{
    group_name, task_status, AppState, ConnState, LogEntry, View, PENDING_GRACE_SECS,
};
use crate::text::short_name;
use crew_core::wire::{
    AuditEntry, Event, StatusCounts, StreamMessage, TaskGroupView, WorkgroupView,
};
use crew_core::{Task, TaskStatus, Timestamp};
use crossterm::event::KeyEventKind;

/// Minimum seconds between two refetches of the groups list caused by events.
const GROUPS_REFRESH_SECS: f64 = 2.0;

/// The same, for a page the daemon searches over every group when it has
/// more than a page: tens of milliseconds of its time for 20,000 groups,
/// for every console that looks.
const SEARCHED_GROUPS_REFRESH_SECS: f64 = 10.0;

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

/// The clock moved: refetch the lists events made stale, at most every
/// [`GROUPS_REFRESH_SECS`] (or [`SEARCHED_GROUPS_REFRESH_SECS`]).
fn on_tick(state: &mut AppState, now: Timestamp) -> Vec<Effect> {
    state.now = now;
    expire_answered(state, now);
    let mut fx = vec![];
    let since = |every: f64| {
        state
            .groups_fetched_at
            .is_none_or(|t| t.seconds_until(&now) >= every)
    };
    let stale = since(GROUPS_REFRESH_SECS);
    let groups_stale = since(if state.groups_page_searched() {
        SEARCHED_GROUPS_REFRESH_SECS
    } else {
        GROUPS_REFRESH_SECS
    });
    // A filter the loaded page cannot answer is searched at once.
    let search = state.groups_need_search();
    if state.groups_dirty && !state.groups_inflight && (groups_stale || search) {
        state.groups_dirty = false;
        fx.push(state.fetch_groups());
    }
    if state.workgroups_dirty && state.view == View::Workgroups && stale {
        state.workgroups_dirty = false;
        fx.push(Effect::FetchWorkgroups);
    }
    fx
}

/// Drops the in-flight markers of actions the daemon answered more than
/// [`PENDING_GRACE_SECS`] ago: an action that changed nothing (resuming a
/// task that is not paused) brings no event to clear its marker.
fn expire_answered(state: &mut AppState, now: Timestamp) {
    let pending = &mut state.pending;
    state.answered.retain(|key, at| {
        let keep = pending.contains_key(key) && at.seconds_until(&now) < PENDING_GRACE_SECS;
        if !keep {
            pending.remove(key);
        }
        keep
    });
}

/// The stream connected or dropped; a connection that could not resume
/// refetches everything.
fn on_conn(state: &mut AppState, c: ConnEvent) -> Vec<Effect> {
    match c {
        ConnEvent::Connected { resumed } => {
            let was = std::mem::replace(&mut state.conn, ConnState::Connected);
            if matches!(was, ConnState::Reconnecting { .. }) {
                state.say("connected again");
            }
            // Resumed after an outage, the events replay what changed, but
            // not what failed to load meanwhile (an open group's tree), nor
            // a daemon back with another store whose log runs past ours:
            // fetch what is shown again. A daemon restarted meanwhile may
            // give the token another scope: ask it again too.
            let again = matches!(was, ConnState::Reconnecting { .. });
            if resumed && !again {
                vec![]
            } else {
                let mut fx = state.refetch_all();
                if again {
                    fx.push(Effect::FetchWhoAmI);
                }
                fx
            }
        }
        ConnEvent::Disconnected {
            error,
            attempt,
            retry_in_ms,
            refused,
        } => {
            let newly_refused =
                refused && !matches!(state.conn, ConnState::Reconnecting { refused: true, .. });
            // Said once per cause, not at every try: a status line left
            // from before ("connected again") hid why the stream dropped.
            let said = match &state.conn {
                ConnState::Reconnecting {
                    error: e,
                    refused: false,
                    ..
                } => Some(e.as_str()),
                _ => None,
            };
            if newly_refused {
                state.fail(format!(
                    "the daemon refused the token ({error}): check --token or CREW_AUTH_TOKEN"
                ));
            } else if !refused && said != Some(error.as_str()) {
                state.fail(format!("lost the daemon ({error}): reconnecting"));
            }
            state.conn = ConnState::Reconnecting {
                attempt,
                next_at: state.now.plus_millis(retry_in_ms as i64),
                error,
                refused,
            };
            vec![]
        }
    }
}

/// The event log's entry for a task event.
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

/// One stream message: logged, then applied (a resync refetches).
fn on_stream(state: &mut AppState, m: StreamMessage) -> Vec<Effect> {
    // A resync names the daemon's latest sequence: lower than ours when it
    // came back with another store.
    if m.seq > state.last_seq || matches!(m.event, Event::Resync { .. }) {
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

/// The event log's entry for an event.
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
            subject: group_name(task_group).to_string(),
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

/// What an event changes in the state (buffered while the open group's
/// snapshot loads).
fn apply_event(state: &mut AppState, ev: Event) {
    match ev {
        Event::TaskCreated { task } | Event::TaskUpdated { task } => {
            state.pending.remove(&format!("task:{}", task.id));
            let group_id = task.task_group_id.clone();
            on_task_event(state, &group_id, Event::TaskUpdated { task });
        }
        Event::TaskDeleted { task } => {
            let group_id = task.task_group_id.clone();
            on_task_event(state, &group_id, Event::TaskDeleted { task });
        }
        Event::GroupCreated { task_group } | Event::GroupUpdated { task_group } => {
            state.pending.remove(&format!("group:{}", task_group.id));
            // A new group, or a renamed one, may move rows.
            let anchor = state.group_anchor();
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
            state.reselect_group(anchor);
        }
        Event::GroupDeleted { task_group } => state.group_gone(&task_group.id, "was deleted"),
        Event::WorkgroupUpdated { workgroup } => {
            state.pending.remove(&format!("wg:{}", workgroup.name));
            let anchor = state.workgroup_anchor();
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
            state.reselect_workgroup(anchor);
        }
        Event::WorkerUpdated { .. } | Event::AuditRecorded { .. } | Event::Resync { .. } => {}
    }
}

/// A task of `group_id` changed: the lists' counts are stale, and the open
/// group, if it is that one, takes the event.
fn on_task_event(state: &mut AppState, group_id: &str, ev: Event) {
    state.groups_dirty = true;
    state.workgroups_dirty = true;
    if let Some(g) = &mut state.group {
        if g.view.group.id == group_id {
            g.task_event(ev);
        }
    }
}

/// A REST answer.
fn on_reply(state: &mut AppState, r: Reply) -> Vec<Effect> {
    match r {
        Reply::Audit(res) => {
            // Older than anything logged live: appended at the old end,
            // newest first, without what the stream already delivered.
            if let Ok(list) = res {
                let live = state.first_live_audit.unwrap_or(u64::MAX);
                for e in list.entries.iter().filter(|e| e.seq < live) {
                    state.log_older(audit_log(0, e));
                }
            }
            vec![]
        }
        Reply::WhoAmI(res) => {
            // A read-only token makes the console read-only by itself, and
            // the same token with an admin scope (a daemon restarted with
            // other tokens) lifts that again; an admin token never lifts
            // --read-only.
            if let Ok(who) = res {
                let name = short_name(&who.name);
                let read_only = who.scope == crew_core::wire::TokenScope::ReadOnly;
                if read_only && !state.read_only {
                    state.read_only = true;
                    state.read_only_by_token = true;
                    state.keymap.set_read_only(true);
                    state.say(format!("read-only: token {name:?} may not act"));
                } else if !read_only && state.read_only_by_token {
                    state.read_only = false;
                    state.read_only_by_token = false;
                    state.keymap.set_read_only(false);
                    state.say(format!("token {name:?} may act again"));
                }
            }
            vec![]
        }
        Reply::Groups {
            search,
            sort,
            result,
        } => {
            state.groups_inflight = false;
            state.groups_fetched_at = Some(state.now);
            match result {
                Ok(list) => {
                    let anchor = state.group_anchor();
                    state.groups = list.task_groups;
                    state.groups_total = list.count;
                    state.groups_search = search;
                    state.groups_page_sort = sort;
                    state.groups_loaded = true;
                    // A page for another search (a group looked up by
                    // name, a filter typed meanwhile) is replaced by the
                    // filter's.
                    if state.groups_need_search() {
                        state.groups_dirty = true;
                    }
                    if let Some(g) = &mut state.group {
                        if let Some(v) = state.groups.iter().find(|v| v.group.id == g.view.group.id)
                        {
                            g.view.group = v.group.clone();
                        }
                    }
                    state.reselect_group(anchor);
                    if let Some(name) = state.want_group.take() {
                        return state.open_named_group(&name);
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
                Ok((view, tasks)) => g.loaded(view, tasks),
                Err(e) => {
                    g.loading = false;
                    g.stale = true;
                    let msg = format!(
                        "loading group {}: {e}; showing what was seen before",
                        short_name(group_name(&g.view.group))
                    );
                    state.fail(msg);
                }
            }
            vec![]
        }
        Reply::GroupGone { id } => {
            state.group_gone(&id, "is gone: the daemon no longer has it");
            vec![]
        }
        Reply::Workgroups(res) => {
            match res {
                Ok(list) => {
                    let anchor = state.workgroup_anchor();
                    state.workgroups = list.workgroups;
                    state.reselect_workgroup(anchor);
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
                    if let Some(k) = req.pending_key() {
                        if state.pending.contains_key(&k) {
                            state.answered.insert(k, state.now);
                        }
                    }
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
