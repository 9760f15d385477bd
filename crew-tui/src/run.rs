//! The main loop: terminal input first, then server messages, then the
//! clock; the state is drawn once per batch, inside a synchronized update.

use crate::app::msg::Msg;
use crate::app::state::AppState;
use crate::app::update::update;
use crate::net::rest::{self, Rest};
use crate::net::stream;
use crew_core::Timestamp;
use crossterm::event::{Event as TermEvent, EventStream};
use crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};
use futures_util::StreamExt;
use ratatui::DefaultTerminal;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::Duration;
use tokio::sync::mpsc;

/// Largest number of server messages applied before a frame is drawn.
const BATCH: usize = 4096;

/// Terminal events read ahead of the loop.
const INPUT_QUEUE: usize = 1024;

static UI_THREAD: OnceLock<ThreadId> = OnceLock::new();
static BACKGROUND_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Installs a panic hook over ratatui's: a panic on the UI thread restores
/// the terminal (ratatui's hook) and reports; a panic in a background task
/// leaves the screen alone (the UI still owns it) and is shown in the status
/// line instead of garbling the screen.
pub fn install_panic_hook() {
    let _ = UI_THREAD.set(std::thread::current().id());
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if UI_THREAD.get() == Some(&std::thread::current().id()) {
            previous(info);
        } else if let Ok(mut v) = BACKGROUND_PANICS.lock() {
            v.push(info.to_string());
        }
    }));
}

fn take_background_panics() -> Vec<String> {
    BACKGROUND_PANICS
        .lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default()
}

fn translate(ev: TermEvent) -> Option<Msg> {
    match ev {
        TermEvent::Key(k) => Some(Msg::Key(k)),
        TermEvent::Resize(w, h) => Some(Msg::Resize(w, h)),
        _ => None,
    }
}

fn draw(terminal: &mut DefaultTerminal, state: &AppState) -> std::io::Result<()> {
    crossterm::queue!(terminal.backend_mut(), BeginSynchronizedUpdate)?;
    terminal.draw(|f| crate::view::draw(f, state))?;
    crossterm::execute!(terminal.backend_mut(), EndSynchronizedUpdate)?;
    Ok(())
}

/// A background task that is stopped when the loop ends, however it ends.
struct Stopped(tokio::task::JoinHandle<()>);

impl Drop for Stopped {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads the terminal on a task of its own and hands its events over.
/// The loop waits on the channel, which wakes it at once: crossterm's
/// `EventStream` keeps the waker of its first pending poll only, so
/// polling it both in the loop's `select!` and once more to drain it
/// left a key to wait for the next tick.
fn read_terminal() -> (Stopped, mpsc::Receiver<std::io::Result<TermEvent>>) {
    let (tx, rx) = mpsc::channel(INPUT_QUEUE);
    let task = tokio::spawn(async move {
        let mut input = EventStream::new();
        while let Some(ev) = input.next().await {
            if tx.send(ev).await.is_err() {
                break;
            }
        }
    });
    (Stopped(task), rx)
}

/// The signals that end the console like `q`: a hang-up, a terminate.
struct Ended {
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Ended {
    fn listen() -> std::io::Result<Ended> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Ended {
                hangup: signal(SignalKind::hangup())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Ended {})
    }

    /// Resolves when one of them arrives.
    async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.hangup.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await
    }
}

/// Runs the console until the operator quits.
pub async fn run(
    terminal: &mut DefaultTerminal,
    mut state: AppState,
    rest: Rest,
    token: Option<String>,
) -> anyhow::Result<()> {
    let rest = Arc::new(rest);
    let (tx, mut rx) = mpsc::channel::<Msg>(BATCH * 4);
    let stream_task = tokio::spawn(stream::run(rest.base().to_string(), token, tx.clone()));
    let (_reader, mut input) = read_terminal();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);

    if let Ok(size) = terminal.size() {
        state.size = (size.width, size.height);
    }
    for fx in state.start() {
        rest::execute(&rest, fx, &tx);
    }
    draw(terminal, &state)?;

    let mut ended = Ended::listen()?;
    let mut keys = Vec::new();
    let mut data = Vec::new();
    loop {
        tokio::select! {
            biased;
            // The terminal hung up (an SSH session dropped) or the console
            // was told to stop: end as `q` does, so that the caller
            // restores the terminal and a demo daemon's files are removed.
            _ = ended.recv() => break,
            ev = input.recv() => match ev {
                Some(Ok(e)) => keys.extend(translate(e)),
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
            m = rx.recv() => match m {
                Some(m) => data.push(m),
                None => return Ok(()),
            },
            _ = tick.tick() => data.push(Msg::Tick(Timestamp::now())),
        }
        // Everything already waiting: keys (and resize bursts) first.
        while let Ok(ev) = input.try_recv() {
            match ev {
                Ok(e) => keys.extend(translate(e)),
                Err(e) => return Err(e.into()),
            }
        }
        while data.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => data.push(m),
                Err(_) => break,
            }
        }
        for p in take_background_panics() {
            data.push(Msg::Internal(format!("a background task panicked: {p}")));
        }
        if stream_task.is_finished() && !state.quit {
            data.push(Msg::Internal("the stream client stopped".into()));
        }
        for m in keys.drain(..).chain(data.drain(..)) {
            for fx in update(&mut state, m) {
                if !rest::execute(&rest, fx, &tx) {
                    state.quit = true;
                }
            }
            if state.quit {
                break;
            }
        }
        if state.quit {
            break;
        }
        state.settle();
        draw(terminal, &state)?;
    }
    stream_task.abort();
    Ok(())
}
