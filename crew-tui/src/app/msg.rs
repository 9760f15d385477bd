//! What the reducer takes in ([`Msg`]: keys, ticks, the stream, REST
//! answers) and what it asks the I/O side to do ([`Effect`]).

use super::action::ActionRequest;
use crew_core::wire::{
    ActionResult, AuditList, BulkResult, GroupSort, StreamMessage, TaskGroupList, TaskGroupView,
    WorkgroupList,
};
use crew_core::{Task, Timestamp};
use crossterm::event::KeyEvent;

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
        /// The daemon refused the token (401 or 403): retrying cannot help
        /// until the token, or the daemon's tokens, change.
        refused: bool,
    },
}

/// Answers from the REST client.
#[derive(Clone, Debug)]
pub enum Reply {
    /// `GET /task_groups`.
    Groups {
        /// The search it answers.
        search: String,
        /// The order it is the first page of.
        sort: GroupSort,
        /// The page, or why not.
        result: Result<TaskGroupList, String>,
    },
    /// A group and all its tasks.
    Group {
        /// The group asked for.
        id: String,
        /// The group and its tasks.
        result: Result<(TaskGroupView, Vec<Task>), String>,
    },
    /// The daemon has no group `id` (404): it was deleted.
    GroupGone {
        /// The group asked for.
        id: String,
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

/// What the I/O side must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Refetch the groups list: the first page, in `sort`'s order, of
    /// those the daemon finds with `search` (every group when empty).
    FetchGroups {
        /// A case-insensitive substring of the name or id.
        search: String,
        /// The order of the whole list the page is the first of.
        sort: GroupSort,
    },
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
