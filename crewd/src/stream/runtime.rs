//! The stream's own runtime: threads that serve every WebSocket connection
//! once upgraded, at most half the machine's cores.
//!
//! A large commit is one event per task for every client: a 10,000-task
//! creation with a hundred clients attached is a million frames. Served on
//! the main runtime, those writes queued ahead of the API's answers and the
//! worker calls, and the engine idled while clients caught up. On threads
//! of their own, the operating system shares the cores between them and
//! the rest of the daemon, and the stream can take no more than half: a
//! client that falls behind is told to resync ([`super::hub`]), while a
//! task that waits for its call waits for everyone.

/// The running stream runtime; it ends when dropped.
pub struct StreamRuntime {
    /// Taken only by `drop`.
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl StreamRuntime {
    /// Starts the runtime, with half the machine's cores (at least one).
    pub fn start() -> std::io::Result<StreamRuntime> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads((cores / 2).max(1))
            .thread_name("crew-streams")
            .enable_all()
            .build()?;
        Ok(StreamRuntime {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// Where to spawn connections.
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.handle.clone()
    }
}

impl Drop for StreamRuntime {
    fn drop(&mut self) {
        // Without waiting: a runtime may not block its way down from inside
        // another one. Connections still open are dropped.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StreamRuntime;

    #[tokio::test]
    async fn connections_run_on_the_stream_threads_and_it_stops_inside_a_runtime() {
        let streams = StreamRuntime::start().expect("start");
        let name = streams
            .handle()
            .spawn(async { std::thread::current().name().map(str::to_string) })
            .await
            .expect("the task ran");
        assert_eq!(name.as_deref(), Some("crew-streams"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = streams.handle().spawn(async move {
            let _ = rx.await;
        });
        // Dropped from inside another runtime, as the daemon does: no panic,
        // and what it still served is dropped with it.
        drop(streams);
        assert!(served.await.is_err_and(|e| e.is_cancelled()));
        drop(tx);
    }
}
