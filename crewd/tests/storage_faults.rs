//! Storage faults: when redb's writes fail, the API answers 503 and nothing
//! is half-applied; once writing works again the daemon reopens the file
//! and carries on by itself.

mod common;

use common::{echo, TestWorkers};
use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};
use serde_json::{json, Value};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A file backend whose writes fail while `broken` is set.
#[derive(Debug)]
struct FlakyDisk {
    file: FileBackend,
    broken: Arc<AtomicBool>,
}

impl FlakyDisk {
    fn check(&self) -> Result<(), std::io::Error> {
        if self.broken.load(Ordering::SeqCst) {
            Err(std::io::Error::other("injected: no space left on device"))
        } else {
            Ok(())
        }
    }
}

impl StorageBackend for FlakyDisk {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.file.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.file.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.check()?;
        self.file.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.check()?;
        self.file.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.check()?;
        self.file.write(offset, data)
    }
    fn close(&self) -> Result<(), std::io::Error> {
        self.file.close()
    }
    fn try_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(s, e)
    }
    fn try_lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(s, e)
    }
    fn lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(s, e)
    }
    fn lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(s, e)
    }
    fn unlock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(s, e)
    }
    fn query_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(s, e)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_disk_answers_503_loses_nothing_and_recovers() {
    let w = TestWorkers::start(echo()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flaky.redb");
    let broken = Arc::new(AtomicBool::new(false));
    let (p, b) = (path.clone(), broken.clone());
    let store = crewd::storage::Store::open_with_backend(&path, Default::default(), move || {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&p)
            .unwrap();
        FlakyDisk {
            file: FileBackend::new(file).unwrap(),
            broken: b.clone(),
        }
    })
    .unwrap();
    let mut config = crewd::config::Config::with_db(&path);
    config.worker_base_url = w.base_url.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/v1", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crewd::server::run_with_store(
        listener,
        config,
        store,
        async move {
            let _ = stopped.await;
        },
    ));
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, v) = post(
        "/task_groups",
        json!({"id": "before", "tasks": [{"id": "a", "worker": "w"}]}),
    )
    .await;
    assert_eq!(s, 201, "{v}");

    broken.store(true, Ordering::SeqCst);
    let (s, v) = post(
        "/task_groups",
        json!({"id": "during", "tasks": [{"id": "b", "worker": "w"}]}),
    )
    .await;
    assert_eq!(s, 503, "{v}");
    assert!(v["error"].is_string(), "{v}");

    broken.store(false, Ordering::SeqCst);
    // The daemon reopens the file by itself; then everything works again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (s, _) = post(
            "/task_groups",
            json!({"id": "after", "tasks": [{"id": "c", "worker": "w"}]}),
        )
        .await;
        if s == 201 {
            break;
        }
        assert_eq!(s, 503);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the daemon never recovered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let get = |path: &str| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let r = http.get(url).send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    // Nothing of the refused request was written.
    assert_eq!(get("/task_group/during").await.0, 404);
    assert_eq!(get("/task/b").await.0, 404);
    // Work from before and after the failure completes.
    for id in ["a", "c"] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (s, t) = get(&format!("/task/{id}")).await;
            if s == 200 && t["isComplete"] == true {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "task {id}: {t}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
