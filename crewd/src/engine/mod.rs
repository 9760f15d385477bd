//! The engine: the daemon's single writer.
//!
//! Every state change (an API command, a worker result, an attempt start)
//! reaches the engine as a message. The engine drains whatever has arrived,
//! applies it with `crew-core`'s rules inside **one** durable redb write
//! transaction (group commit), and only after that commit returns does it
//! answer callers, publish events and start worker calls.

mod audit;
mod command;
mod idle;
mod ops;
mod run;

pub use audit::Actor;
pub use ops::{EngineError, EngineHandle, Op, OpOutcome};
pub use run::EngineConfig;

use crate::dispatch::client::WorkerClient;
use crate::dispatch::scheduler::Scheduler;
use crate::storage::Store;
use crate::stream::hub::EventHub;
use ops::{Msg, WorkerLoads, WorkgroupLoads};
use std::sync::mpsc;
use std::sync::Arc;

/// The running engine thread.
pub struct EngineThread {
    join: std::thread::JoinHandle<()>,
    tx: mpsc::Sender<Msg>,
}

/// Starts the engine on its own thread: it recovers state from the store
/// (interrupted attempts, timers, ready tasks), then runs until shutdown.
/// Must be called inside a tokio runtime (worker calls run on it).
pub fn start(
    store: Store,
    hub: EventHub,
    client: Arc<WorkerClient>,
    config: EngineConfig,
) -> std::io::Result<(EngineHandle, EngineThread)> {
    let (tx, rx) = mpsc::channel();
    let loads = WorkerLoads::default();
    let workgroup_loads = WorkgroupLoads::default();
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let ready = ops::Ready::default();
    let idle_poll = config.idle_poll;
    let engine = run::Engine {
        store,
        hub,
        client,
        sched: Scheduler::new(config.max_in_flight),
        config,
        rx,
        tx: tx.clone(),
        idle: idle::IdlePoll::new(idle_poll),
        loads: loads.clone(),
        workgroup_loads: workgroup_loads.clone(),
        metrics: metrics.clone(),
        runtime: tokio::runtime::Handle::current(),
        ids: run::IdGen::new(),
        cancels: Default::default(),
        abandoned: Default::default(),
        ready: ready.clone(),
        reopen_store: false,
    };
    let join = std::thread::Builder::new()
        .name("crew-engine".into())
        .spawn(move || {
            // The engine is the only writer: without it the daemon would
            // answer 503 forever. Exit instead, so a supervisor restarts it
            // (every acknowledged write is already in the file).
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.run())).is_err() {
                tracing::error!("the engine panicked; exiting so the daemon can be restarted");
                std::process::exit(70);
            }
        })?;
    Ok((
        EngineHandle {
            commands: tx.clone(),
            loads,
            workgroup_loads,
            metrics,
            ready,
        },
        EngineThread { join, tx },
    ))
}

impl EngineThread {
    /// Stops dispatching, waits for calls in flight up to the grace period,
    /// commits their results, and joins the thread.
    pub async fn shutdown(self) {
        let _ = self.tx.send(Msg::Shutdown);
        let join = self.join;
        let _ = tokio::task::spawn_blocking(move || join.join()).await;
    }
}
