//! End to end: the real `crew-tui` inside tmux against a real `crewd --demo`.
//!
//! The test builds both binaries first (`cargo build -p crewd -p crew-tui
//! --bins`, into the same target directory and profile as this test), starts
//! `crewd --demo` on a free port with a temporary database, runs `crew-tui`
//! in a detached tmux session of 120x40, sends keys with `tmux send-keys`,
//! reads the screen with `tmux capture-pane -p`, and checks through the REST
//! API that the actions happened. Others run the README's first command,
//! `crew-tui --demo` (which starts a daemon of its own and removes its
//! files when it quits), a console whose token the daemon refuses, and one
//! whose daemon comes back with another store, and one timing its keys. Skipped
//! (with a message) when tmux is not installed.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a test waits for what it expects on screen or from the API.
/// Only a failing test waits that long; a CI machine running these tests
/// side by side on two cores can take seconds where a quiet one takes
/// milliseconds.
const PATIENCE: Duration = Duration::from_secs(30);

/// `target/<profile>` of this test executable.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/console_tmux-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

fn build_binaries() -> PathBuf {
    let dir = profile_dir();
    let target = dir.parent().expect("target dir").to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "-p",
        "crewd",
        "-p",
        "crew-tui",
        "--bins",
        "--target-dir",
    ])
    .arg(&target)
    .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("running cargo build");
    assert!(status.success(), "cargo build of crewd and crew-tui failed");
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    fn send(&self, keys: &[&str]) {
        let status = self
            .cmd()
            .args(["send-keys", "-t", "crew"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
        std::thread::sleep(Duration::from_millis(150));
    }

    fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "crew"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, what: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            if start.elapsed() > timeout {
                panic!("screen never showed {what:?}; last screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts `command` in a detached session of 120x40.
    fn start(&self, command: &str) {
        let status = self
            .cmd()
            .args([
                "new-session",
                "-d",
                "-s",
                "crew",
                "-x",
                "120",
                "-y",
                "40",
                command,
            ])
            .status()
            .expect("tmux new-session");
        assert!(status.success());
    }

    /// Presses `q` and waits for the console to exit.
    async fn quit(&self) {
        self.send(&["q"]);
        let gone = poll(PATIENCE, async || (!self.alive()).then_some(())).await;
        assert!(gone.is_some(), "the console did not exit on q");
    }

    fn alive(&self) -> bool {
        self.cmd()
            .args(["has-session", "-t", "crew"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").stderr(Stdio::null()).status();
    }
}

async fn get(url: &str) -> Value {
    reqwest::get(url)
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON")
}

async fn poll<T>(timeout: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(v) = f().await {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// The directory holding freshly built `crewd` and `crew-tui`, or `None`
/// (with a message) when tmux is not installed.
async fn binaries() -> Option<PathBuf> {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("tmux is not installed: skipping");
        return None;
    }
    Some(
        tokio::task::spawn_blocking(build_binaries)
            .await
            .expect("build"),
    )
}

/// Starts `crewd` from `bin` with a database in `dir` and `args` on a free
/// port, and waits until it is ready; returns it and its base URL.
async fn start_daemon(bin: &Path, dir: &Path, args: &[&str]) -> (Daemon, String) {
    start_daemon_on(bin, dir, free_port(), args).await
}

/// [`start_daemon`] on `port`.
async fn start_daemon_on(bin: &Path, dir: &Path, port: u16, args: &[&str]) -> (Daemon, String) {
    let base = format!("http://127.0.0.1:{port}");
    let daemon = Daemon(
        Command::new(bin.join("crewd"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--db"])
            .arg(dir.join("crew.redb"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting crewd"),
    );
    let healthy = poll(Duration::from_secs(20), async || {
        let r = reqwest::get(format!("{base}/healthz")).await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    assert!(healthy.is_some(), "crewd {args:?} did not become healthy");
    (daemon, base)
}

#[tokio::test(flavor = "multi_thread")]
async fn console_pauses_and_resets_the_demo_group() {
    let Some(bin) = binaries().await else { return };
    let tmp = tempfile::tempdir().expect("temp dir");
    let (_daemon, base) = start_daemon(&bin, tmp.path(), &["--demo"]).await;

    // Wait for the demo's seed that fans out (a root task whose worker
    // created continuations), so the reset has work to undo.
    let tasks_url = format!("{base}/api/v1/task_group/demo/tasks?page=0&pageSize=1000");
    let (seed_id, seed_name) = poll(Duration::from_secs(30), async || {
        let v = get(&tasks_url).await;
        let tasks = v["tasks"].as_array()?.clone();
        let creator = tasks.iter().find_map(|t| t["createdBy"].as_str())?;
        let seed = tasks.iter().find(|t| t["id"] == creator)?;
        let no_parents = seed["parentIds"].as_array().is_none_or(|p| p.is_empty());
        (no_parents && seed["isComplete"] == true).then(|| {
            (
                creator.to_string(),
                seed["name"].as_str().unwrap_or_default().to_string(),
            )
        })
    })
    .await
    .expect("the demo seed completes and creates continuations");

    let tmux = start_console(&bin, "crew-test", &base, "");
    tmux.wait_for("CONNECTED", PATIENCE);

    // Open the demo group from the command line, go back to the groups
    // view (demo is the only group, so it is selected), pause it.
    tmux.send(&[":group demo", "Enter"]);
    tmux.wait_for("groups › demo", PATIENCE);
    tmux.send(&["Escape"]);
    tmux.wait_for("Groups (", Duration::from_secs(5));
    tmux.send(&["p"]);
    let paused = poll(PATIENCE, async || {
        let g = get(&format!("{base}/api/v1/task_group/demo")).await;
        (g["isPaused"] == true).then_some(())
    })
    .await;
    assert!(
        paused.is_some(),
        "the group was not paused:\n{}",
        tmux.screen()
    );
    tmux.wait_for("PAUSED", PATIENCE);
    // Pausing lets attempts already sent finish, and a reset refuses while
    // a task it would touch is running: wait, as an operator would, until
    // the paused group has nothing running.
    let idle = poll(Duration::from_secs(20), async || {
        let v = get(&tasks_url).await;
        let tasks = v["tasks"].as_array()?;
        (!tasks.iter().any(|t| t["busyExecuting"] == true)).then_some(())
    })
    .await;
    assert!(idle.is_some(), "tasks kept running in the paused group");

    // Open it, find the seed with the text filter, reset it: a confirm
    // dialog that opens on No and, since the reset reaches the seed's
    // descendants, asks for their count or "yes" typed; then Yes.
    tmux.send(&["Enter"]);
    tmux.wait_for("groups › demo", PATIENCE);
    tmux.send(&["/"]);
    tmux.send(&["-l", &seed_name]);
    tmux.send(&["Enter", "g", "R"]);
    let screen = tmux.wait_for("Confirm", Duration::from_secs(5));
    assert!(screen.contains("Reset task"), "{screen}");
    assert!(screen.contains(&seed_name), "{screen}");
    tmux.send(&["-l", "yes"]);
    tmux.send(&["Tab", "Enter"]);
    tmux.wait_for("reset task", PATIENCE);

    // The daemon did it: the seed is incomplete again (the paused group
    // keeps it from running) and the tasks it created are gone.
    let seed_url = format!("{base}/api/v1/task/{seed_id}");
    let reset = poll(PATIENCE, async || {
        let t = get(&seed_url).await;
        let v = get(&tasks_url).await;
        let continuations = v["tasks"]
            .as_array()?
            .iter()
            .filter(|t| t["createdBy"] == seed_id.as_str())
            .count();
        (t["isComplete"] == false && continuations == 0).then_some(())
    })
    .await;
    assert!(
        reset.is_some(),
        "the seed was not reset:\n{}",
        tmux.screen()
    );

    tmux.quit().await;
}

/// The README's first command: `crew-tui --demo` starts its own daemon and
/// opens the demo group at once (the daemon seeds it before it answers).
#[tokio::test(flavor = "multi_thread")]
async fn the_demo_command_opens_the_demo_group() {
    let Some(bin) = binaries().await else { return };
    let (tmux, tmp) = start_demo(&bin, "crew-demo-test");
    tmux.quit().await;
    // Its database, journal and log went with it.
    assert_eq!(entries(tmp.path()), 0, "files left behind by the demo");
}

/// The terminal hangs up on a demo console (an SSH session dropped): it
/// ends as on `q`, and its daemon's files go too.
#[tokio::test(flavor = "multi_thread")]
async fn a_demo_console_that_loses_its_terminal_leaves_nothing_behind() {
    let Some(bin) = binaries().await else { return };
    let (tmux, tmp) = start_demo(&bin, "crew-hangup-test");
    let status = tmux
        .cmd()
        .args(["kill-session", "-t", "crew"])
        .status()
        .expect("tmux kill-session");
    assert!(status.success());
    let cleaned = poll(PATIENCE, async || (entries(tmp.path()) == 0).then_some(())).await;
    assert!(cleaned.is_some(), "files left behind by the demo");
}

/// How many entries the directory `dir` has.
fn entries(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

/// Creates a paused group `id` (named so) of one task at the daemon at
/// `base`.
async fn create_paused_group(base: &str, id: &str) {
    let body = serde_json::json!({"id": id, "name": id, "isPaused": true,
        "tasks": [{"id": format!("{id}-t"), "worker": "w"}]});
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/task_groups"))
        .json(&body)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 201);
}

/// `crew-tui --server base` (and `args`) in a tmux session on a server of
/// its own, named after `socket`.
fn start_console(bin: &std::path::Path, socket: &str, base: &str, args: &str) -> Tmux {
    let tmux = Tmux {
        socket: format!("{socket}-{}", std::process::id()),
    };
    tmux.start(&format!(
        "env LANG=C.UTF-8 TERM=xterm-256color {} --server {base}{args}",
        bin.join("crew-tui").display()
    ));
    tmux
}

/// `crew-tui --demo` in a tmux session on `socket`, with its TMPDIR a
/// directory of its own (returned), once it shows the demo group's tasks.
fn start_demo(bin: &std::path::Path, socket: &str) -> (Tmux, tempfile::TempDir) {
    let tmux = Tmux {
        socket: format!("{socket}-{}", std::process::id()),
    };
    // The demo daemon's files go under TMPDIR: this test's own.
    let tmp = tempfile::tempdir().expect("temp dir");
    tmux.start(&format!(
        "env LANG=C.UTF-8 TERM=xterm-256color TMPDIR={} {} --demo",
        tmp.path().display(),
        bin.join("crew-tui").display()
    ));
    let screen = tmux.wait_for("groups › demo", Duration::from_secs(30));
    assert!(screen.contains("CONNECTED"), "{screen}");
    // The group's tasks are listed (the seed's name is on screen).
    let screen = tmux.wait_for("list ad accounts", PATIENCE);
    assert!(!screen.contains("no group named"), "{screen}");
    assert_eq!(entries(tmp.path()), 1, "the demo daemon's directory");
    (tmux, tmp)
}

/// A wrong token: the console says the daemon refused it, rather than
/// that the connection keeps dropping.
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_is_reported_as_refused() {
    let Some(bin) = binaries().await else { return };
    let tmp = tempfile::tempdir().expect("temp dir");
    let (_daemon, base) =
        start_daemon(&bin, tmp.path(), &["--token", "the-right-token-4f1c"]).await;

    let tmux = start_console(&bin, "crew-token-test", &base, " --token wrong-token");
    let screen = tmux.wait_for("TOKEN REFUSED", PATIENCE);
    assert!(!screen.contains("CONNECTED"), "{screen}");
    // The status line says why (the stream's refusal or the REST API's,
    // whichever came last).
    tmux.wait_for("401", Duration::from_secs(5));
    tmux.quit().await;
}

/// The daemon comes back with another store (replaced, or restored from a
/// backup, so its event log is behind what the console saw): the console
/// reconnects, is told to resync, and shows the new store's groups.
#[tokio::test(flavor = "multi_thread")]
async fn a_console_follows_a_daemon_that_comes_back_with_another_store() {
    let Some(bin) = binaries().await else { return };
    let (first, second) = (
        tempfile::tempdir().expect("temp dir"),
        tempfile::tempdir().expect("temp dir"),
    );
    let port = free_port();

    let (daemon, base) = start_daemon_on(&bin, first.path(), port, &[]).await;
    let tmux = start_console(&bin, "crew-restore-test", &base, "");
    tmux.wait_for("CONNECTED", PATIENCE);
    // Created while the console watches: it has seen their events, and
    // resumes after the last one when it reconnects.
    for id in ["old-1", "old-2", "old-3"] {
        create_paused_group(&base, id).await;
    }
    tmux.wait_for("old-3", PATIENCE);

    drop(daemon);
    tmux.wait_for("RECONNECTING", PATIENCE);
    let (_daemon, base) = start_daemon_on(&bin, second.path(), port, &[]).await;
    create_paused_group(&base, "new-1").await;
    let screen = tmux.wait_for("new-1", Duration::from_secs(20));
    assert!(!screen.contains("old-"), "{screen}");
    // Live events flow again: a group created now shows up, which only its
    // events make the console fetch (the new log's sequence numbers are
    // below those the console saw before).
    tokio::time::sleep(Duration::from_secs(3)).await;
    create_paused_group(&base, "new-2").await;
    tmux.wait_for("new-2", PATIENCE);
    tmux.quit().await;
}

/// A key acts at once: `j` and `k` move the selection in the groups list
/// while nothing else happens (no daemon events, so only the key can wake
/// the console). Keys used to wait for the next clock tick, up to half a
/// second; the median of ten presses must be well under that.
#[tokio::test(flavor = "multi_thread")]
async fn keys_act_at_once() {
    let Some(bin) = binaries().await else { return };
    let tmp = tempfile::tempdir().expect("temp dir");
    let (_daemon, base) = start_daemon(&bin, tmp.path(), &[]).await;
    for i in 0..3 {
        create_paused_group(&base, &format!("quick-{i}")).await;
    }

    let tmux = start_console(&bin, "crew-keys-test", &base, "");
    tmux.wait_for("CONNECTED", PATIENCE);
    tmux.wait_for("quick-2", PATIENCE);
    // Let the console settle: the start's requests answered, no event
    // left to wake it.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let selected = |screen: &str| {
        screen
            .lines()
            .find(|l| l.starts_with('▶'))
            .map(str::to_string)
    };
    let mut took = Vec::new();
    for press in 0..10 {
        let before = selected(&tmux.screen()).expect("a selected row");
        let key = if press % 2 == 0 { "j" } else { "k" };
        let start = Instant::now();
        let status = tmux
            .cmd()
            .args(["send-keys", "-t", "crew", key])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
        loop {
            let screen = tmux.screen();
            if selected(&screen).is_some_and(|s| s != before) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(3),
                "{key} did not move the selection:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        took.push(start.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    took.sort();
    let median = took[took.len() / 2];
    assert!(
        median < Duration::from_millis(200),
        "a key took {median:?} to act (median of {took:?})"
    );
    tmux.quit().await;
}
