//! `crew-tui`: the Crew operator console.

use anyhow::Context;
use clap::Parser;
use crew_core::Timestamp;
use crew_tui::app::keymap::KeyMap;
use crew_tui::app::state::AppState;
use crew_tui::net::rest::Rest;
use crew_tui::theme::Theme;
use std::io::IsTerminal;
use std::path::PathBuf;

/// Watch and steer a Crew daemon from the terminal.
#[derive(Debug, Parser)]
#[command(name = "crew-tui", version, about)]
struct Args {
    /// The daemon's address.
    #[arg(long, env = "CREW_SERVER", default_value = "http://127.0.0.1:8090")]
    server: String,
    /// Bearer token for the daemon.
    #[arg(long, env = "CREW_AUTH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Watch only: every action is hidden and refused.
    #[arg(long)]
    read_only: bool,
    /// Key bindings file (TOML, or JSON when it ends in .json); default
    /// $XDG_CONFIG_HOME/crew/keys.toml.
    #[arg(long)]
    keys: Option<PathBuf>,
    /// Start a private `crewd --demo` and attach to it.
    #[arg(long)]
    demo: bool,
    /// Open this group (name or id) at start.
    #[arg(long)]
    group: Option<String>,
    /// No colours (also with NO_COLOR set).
    #[arg(long)]
    no_color: bool,
    /// ASCII only (also when the locale is not UTF-8).
    #[arg(long)]
    ascii: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let keymap = KeyMap::load(args.keys.as_deref(), args.read_only)
        .map_err(|e| anyhow::anyhow!("keys file: {e}"))?;
    let theme = Theme::detect(args.no_color, args.ascii);
    // The console draws on a terminal: say so plainly where there is none
    // (a pipe, cron), before starting anything.
    if !std::io::stdout().is_terminal() {
        anyhow::bail!("crew-tui needs a terminal: its output is not one");
    }

    // Held to the end: dropping it (also when unwinding) stops the daemon.
    let demo = if args.demo {
        Some(
            crew_tui::demo::start()
                .await
                .context("starting the demo daemon")?,
        )
    } else {
        None
    };
    let server = demo
        .as_ref()
        .map(|d| d.url.clone())
        .unwrap_or_else(|| args.server.clone());
    let rest = Rest::new(&server, args.token.clone()).map_err(anyhow::Error::msg)?;
    let mut state = AppState::new(server, keymap, theme, Timestamp::now());
    if let Some(g) = args.group.as_deref().or(args.demo.then_some("demo")) {
        state.open_group_when_known(g);
    }

    let mut terminal = ratatui::try_init().map_err(|e| {
        let _ = ratatui::try_restore();
        anyhow::anyhow!("cannot set up the terminal: {e}")
    })?;
    crew_tui::run::install_panic_hook();
    let result = crew_tui::run::run(&mut terminal, state, rest, args.token).await;
    // A terminal that hung up cannot be restored, and stderr is that
    // terminal: ratatui's own restore, and the terminal's drop, would print
    // their failure there, which panics. Nothing is left to restore then.
    if ratatui::try_restore().is_err() {
        std::mem::forget(terminal);
    }
    drop(demo);
    result
}
