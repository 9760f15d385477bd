//! The REST client: fetches snapshots and carries out actions.

use super::encode;
use crate::app::action::{ActionRequest, Target, Verb};
use crate::app::msg::{Effect, Msg, Reply};
use crew_core::wire::{
    ActionResult, AttemptsRequest, AuditList, BulkAction, BulkFilter, BulkRequest, BulkResult,
    ErrorBody, GroupSort, PauseRequest, TaskGroupList, TaskGroupView, TaskList, WhoAmI,
    WorkgroupLimitRequest, WorkgroupList,
};
use crew_core::Task;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Tasks fetched per page when loading a group.
pub const TASK_PAGE: usize = 10_000;
/// Groups fetched for the groups view.
pub const GROUP_PAGE: usize = 500;

/// A client of the daemon's REST API.
#[derive(Clone, Debug)]
pub struct Rest {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Rest {
    /// A client for the daemon at `base` (`http://host:port`).
    pub fn new(base: &str, token: Option<String>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Rest {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.is_empty()),
        })
    }

    /// The daemon's address.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call<T: DeserializeOwned + Default>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        empty_ok: bool,
    ) -> Result<T, String> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| describe(&e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| describe(&e))?;
        if !status.is_success() {
            return Err(error_text(status, &bytes));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) && empty_ok {
            return Ok(T::default());
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("unexpected answer from {path}: {e}"))
    }

    /// `GET /api/v1/whoami`: the token's name and scope. Retried while the
    /// daemon cannot be reached (it may not be up yet); any answer, an
    /// error status included, ends it.
    pub async fn whoami(&self) -> Result<WhoAmI, String> {
        let mut delay = Duration::from_millis(250);
        loop {
            let mut req = self.http.get(format!("{}/api/v1/whoami", self.base));
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let bytes = resp.bytes().await.map_err(|e| describe(&e))?;
                    if !status.is_success() {
                        return Err(error_text(status, &bytes));
                    }
                    return serde_json::from_slice(&bytes)
                        .map_err(|e| format!("unexpected answer from /api/v1/whoami: {e}"));
                }
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// `GET /api/v1/task_groups`: the first [`GROUP_PAGE`] groups matching
    /// `search`, in `sort`'s order over all of them.
    pub async fn groups(&self, search: &str, sort: GroupSort) -> Result<TaskGroupList, String> {
        let path = format!(
            "/api/v1/task_groups?page=1&pageSize={GROUP_PAGE}&search={}&sort={}",
            encode(search),
            sort.as_str()
        );
        self.call::<Lenient<TaskGroupList>>(Method::GET, &path, None, false)
            .await?
            .0
            .ok_or_else(|| "empty answer".into())
    }

    /// A group and every one of its tasks (page by page).
    pub async fn group(&self, id: &str) -> Result<(TaskGroupView, Vec<Task>), String> {
        let path = format!("/api/v1/task_group/{}", encode(id));
        let view = self
            .call::<Lenient<TaskGroupView>>(Method::GET, &path, None, false)
            .await?
            .0
            .ok_or("empty answer")?;
        let mut tasks = Vec::new();
        // Pages are 1-based, as in crew-go.
        for page in 1.. {
            let path = format!(
                "/api/v1/task_group/{}/tasks?page={page}&pageSize={TASK_PAGE}",
                encode(id)
            );
            let list = self
                .call::<Lenient<TaskList>>(Method::GET, &path, None, false)
                .await?
                .0
                .ok_or("empty answer")?;
            let n = list.tasks.len();
            tasks.extend(list.tasks);
            if n < TASK_PAGE || tasks.len() as u64 >= list.count {
                break;
            }
        }
        Ok((view, tasks))
    }

    /// `GET /api/v1/audit`: the latest operator actions, newest first.
    pub async fn audit(&self) -> Result<AuditList, String> {
        self.call::<Lenient<AuditList>>(Method::GET, "/api/v1/audit?limit=200", None, false)
            .await?
            .0
            .ok_or_else(|| "empty answer".into())
    }

    /// `GET /api/v1/workgroups`.
    pub async fn workgroups(&self) -> Result<WorkgroupList, String> {
        self.call::<Lenient<WorkgroupList>>(Method::GET, "/api/v1/workgroups", None, false)
            .await?
            .0
            .ok_or_else(|| "empty answer".into())
    }

    /// One action on one target.
    pub async fn act_one(
        &self,
        verb: Verb,
        target: &Target,
        seconds: Option<f64>,
    ) -> Result<ActionResult, String> {
        let attempts = || serde_json::to_value(AttemptsRequest::default()).ok();
        let (method, path, body) = match (target, verb) {
            (Target::Group { id, .. }, Verb::Delete) => (
                Method::DELETE,
                format!("/api/v1/task_group/{}", encode(id)),
                None,
            ),
            (Target::Group { id, .. }, v) => (
                Method::POST,
                format!("/api/v1/task_group/{}/{}", encode(id), v.as_str()),
                matches!(v, Verb::Reset | Verb::Retry)
                    .then(attempts)
                    .flatten(),
            ),
            (Target::Task { group_id, id, .. }, Verb::Delete) => (
                Method::DELETE,
                format!(
                    "/api/v1/task_group/{}/task/{}",
                    encode(group_id),
                    encode(id)
                ),
                None,
            ),
            (Target::Task { group_id, id, .. }, v) => (
                Method::POST,
                format!(
                    "/api/v1/task_group/{}/task/{}/{}",
                    encode(group_id),
                    encode(id),
                    v.as_str()
                ),
                matches!(v, Verb::Reset | Verb::Retry)
                    .then(attempts)
                    .flatten(),
            ),
            (Target::Workgroup { name }, Verb::Pause) => (
                Method::POST,
                format!("/api/v1/workgroup/{}/pause", encode(name)),
                serde_json::to_value(PauseRequest { seconds }).ok(),
            ),
            (Target::Workgroup { name }, Verb::Resume) => (
                Method::POST,
                format!("/api/v1/workgroup/{}/resume", encode(name)),
                None,
            ),
            (Target::GroupSchedule { id, schedule, .. }, _) => (
                Method::PUT,
                format!("/api/v1/task_group/{}", encode(id)),
                Some(serde_json::json!({ "schedule": schedule })),
            ),
            (Target::WorkgroupLimits { name, limits }, _) => (
                Method::PUT,
                format!("/api/v1/workgroup/{}/limit", encode(name)),
                serde_json::to_value(WorkgroupLimitRequest::from(*limits)).ok(),
            ),
            (Target::Workgroup { .. }, v) => {
                return Err(format!("a workgroup cannot be {}", v.as_str()))
            }
            (
                Target::Filter {
                    group_id, filter, ..
                },
                v,
            ) => (
                Method::POST,
                format!("/api/v1/task_group/{}/bulk", encode(group_id)),
                Some(bulk_body(v, filter, false)?),
            ),
        };
        let v: Value = self.call(method, &path, body, true).await?;
        Ok(serde_json::from_value(v).unwrap_or_default())
    }

    /// Carries out an action (a bulk one in one request: the daemon applies
    /// it all or nothing).
    pub async fn act(&self, req: &ActionRequest) -> Result<ActionResult, String> {
        self.act_one(req.verb, &req.target, req.seconds).await
    }

    /// The daemon's dry run of a bulk action: what it would match and touch.
    pub async fn count_bulk(&self, req: &ActionRequest) -> Result<BulkResult, String> {
        let Target::Filter {
            group_id, filter, ..
        } = &req.target
        else {
            return Err("only a bulk action has a dry run".into());
        };
        let path = format!("/api/v1/task_group/{}/bulk", encode(group_id));
        let body = bulk_body(req.verb, filter, true)?;
        self.call::<BulkResult>(Method::POST, &path, Some(body), false)
            .await
    }
}

/// The body of a bulk request.
fn bulk_body(verb: Verb, filter: &BulkFilter, dry_run: bool) -> Result<Value, String> {
    let action = match verb {
        Verb::Pause => BulkAction::Pause,
        Verb::Resume => BulkAction::Resume,
        Verb::Reset => BulkAction::Reset,
        Verb::Retry => BulkAction::Retry,
        Verb::Delete => BulkAction::Delete,
        Verb::Cancel => return Err("cancel applies to one running task, not in bulk".into()),
        Verb::Limit => return Err("limits apply to a workgroup, not in bulk".into()),
        Verb::Schedule => return Err("a schedule applies to a group, not in bulk".into()),
    };
    serde_json::to_value(BulkRequest {
        action,
        filter: filter.clone(),
        dry_run,
        remaining_attempts: None,
    })
    .map_err(|e| e.to_string())
}

/// Wraps a body so that `call` can default it (never used for lists).
#[derive(Debug)]
struct Lenient<T>(Option<T>);

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Lenient(None)
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Lenient<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(|v| Lenient(Some(v)))
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "cannot connect to the daemon".into()
    } else if e.is_timeout() {
        "the daemon did not answer in time".into()
    } else {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(x) = src {
            s = format!("{s}: {x}");
            src = x.source();
        }
        s
    }
}

/// The daemon's `{"error": ...}`, else the status and the start of the body.
pub fn error_text(status: StatusCode, body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => format!("{} {}", status.as_u16(), e.error),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let short: String = text.chars().take(200).collect();
            format!("{} {}", status, short.trim())
        }
    }
}

/// Whether an error from [`error_text`] is the daemon's 404: what was asked
/// for does not exist.
pub fn not_found(error: &str) -> bool {
    error.starts_with("404 ")
}

/// Starts the request an effect asks for; its answer comes back on `tx`.
/// Returns false for [`Effect::Quit`].
pub fn execute(rest: &Arc<Rest>, effect: Effect, tx: &mpsc::Sender<Msg>) -> bool {
    let rest = rest.clone();
    let tx = tx.clone();
    let reply = match effect {
        Effect::Quit => return false,
        Effect::FetchGroups { search, sort } => tokio::spawn(async move {
            let result = rest.groups(&search, sort).await;
            let _ = tx
                .send(Msg::Reply(Reply::Groups {
                    search,
                    sort,
                    result,
                }))
                .await;
        }),
        Effect::FetchGroup(id) => tokio::spawn(async move {
            let reply = match rest.group(&id).await {
                Err(e) if not_found(&e) => Reply::GroupGone { id },
                result => Reply::Group { id, result },
            };
            let _ = tx.send(Msg::Reply(reply)).await;
        }),
        Effect::FetchWorkgroups => tokio::spawn(async move {
            let r = rest.workgroups().await;
            let _ = tx.send(Msg::Reply(Reply::Workgroups(r))).await;
        }),
        Effect::FetchAudit => tokio::spawn(async move {
            let r = rest.audit().await;
            let _ = tx.send(Msg::Reply(Reply::Audit(r))).await;
        }),
        Effect::FetchWhoAmI => tokio::spawn(async move {
            let r = rest.whoami().await;
            let _ = tx.send(Msg::Reply(Reply::WhoAmI(r))).await;
        }),
        Effect::Act(req) => tokio::spawn(async move {
            let result = rest.act(&req).await;
            let _ = tx.send(Msg::Reply(Reply::Action { req, result })).await;
        }),
        Effect::CountBulk(req) => tokio::spawn(async move {
            let result = rest.count_bulk(&req).await;
            let _ = tx.send(Msg::Reply(Reply::BulkCount { req, result })).await;
        }),
    };
    drop(reply);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_404_is_not_found() {
        assert!(not_found(&error_text(
            StatusCode::NOT_FOUND,
            br#"{"error":"no task group g-1"}"#
        )));
        assert!(not_found(&error_text(StatusCode::NOT_FOUND, b"gone")));
        assert!(!not_found(&error_text(StatusCode::CONFLICT, b"busy")));
        assert!(!not_found("cannot connect to the daemon"));
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_text(StatusCode::CONFLICT, br#"{"error":"task is running"}"#),
            "409 task is running"
        );
        assert_eq!(
            error_text(StatusCode::BAD_GATEWAY, b"<html>oops</html>"),
            "502 Bad Gateway <html>oops</html>"
        );
    }
}
