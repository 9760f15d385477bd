//! `crewd --demo`: the demo group is there as soon as the daemon says it
//! is ready, so a console started with the demo opens it at once.

mod common;

use common::TestDaemon;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_group_exists_once_the_daemon_is_ready() {
    // `start` returns as soon as `/healthz` answers 200.
    let d = TestDaemon::start("http://127.0.0.1:9/", |c| c.demo = true).await;
    let (status, group) = d.get("/task_group/demo").await;
    assert_eq!(status, 200, "{group}");
    let (status, tasks) = d.get("/task_group/demo/tasks").await;
    assert_eq!(status, 200, "{tasks}");
    let names: Vec<&str> = tasks["tasks"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(names.contains(&"list ad accounts"), "{names:?}");
    d.stop().await;
}
