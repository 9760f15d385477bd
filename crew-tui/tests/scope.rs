//! The console asks the daemon what its token may do, and turns read-only
//! by itself for a read-only token.

mod common;

use common::{feed, loaded, types, with_demo};
use crew_core::wire::{TokenScope, WhoAmI};
use crew_tui::app::keymap::KeyMap;
use crew_tui::app::msg::Reply;
use crew_tui::app::state::Input;
use crew_tui::theme::Theme;
use crew_tui::{AppState, Effect, Msg};

fn who(name: &str, scope: TokenScope) -> Msg {
    Msg::Reply(Reply::WhoAmI(Ok(WhoAmI {
        name: name.into(),
        scope,
    })))
}

#[test]
fn start_asks_for_the_token_scope() {
    let mut s = AppState::new(
        "http://127.0.0.1:8090",
        KeyMap::defaults(false),
        Theme::default(),
        common::now(),
    );
    assert!(s.start().contains(&Effect::FetchWhoAmI));
}

#[test]
fn a_read_only_token_makes_the_console_read_only() {
    let mut s = with_demo(Theme::default(), false);
    assert!(!s.read_only);
    assert!(feed(&mut s, [who("viewer", TokenScope::ReadOnly)]).is_empty());
    assert!(s.read_only);
    assert!(s.keymap.read_only());
    let status = s.status.clone().expect("the switch is announced");
    assert!(status.text.contains("read-only"), "{}", status.text);
    assert!(status.text.contains("viewer"), "{}", status.text);
    for k in ["p", "r", "R", "t", "d"] {
        assert!(types(&mut s, k).is_empty(), "{k}");
        assert!(s.confirm.is_none(), "{k}");
    }
    let mut s = loaded(Theme::default(), false);
    feed(&mut s, [who("viewer", TokenScope::ReadOnly)]);
    types(&mut s, "2p");
    assert_eq!(s.input, Input::None);
}

#[test]
fn an_admin_token_or_an_old_daemon_changes_nothing() {
    let mut s = loaded(Theme::default(), false);
    feed(&mut s, [who("ops", TokenScope::Admin)]);
    assert!(!s.read_only && !s.keymap.read_only());
    feed(
        &mut s,
        [Msg::Reply(Reply::WhoAmI(Err(
            "404 no such route: GET /api/v1/whoami".into(),
        )))],
    );
    assert!(!s.read_only);
    // --read-only is never lifted by an admin token.
    let mut s = loaded(Theme::default(), true);
    feed(&mut s, [who("default", TokenScope::Admin)]);
    assert!(s.read_only && s.keymap.read_only());
}

/// After a reconnect the console asks again what its token may do (the
/// daemon may be back with other tokens), and the keys follow: a token
/// turned read-only hides the actions, and turned admin again shows them.
#[test]
fn a_reconnect_asks_for_the_token_scope_again() {
    use crew_tui::app::msg::ConnEvent;
    let mut s = loaded(Theme::default(), false);
    let reconnect = |s: &mut AppState| {
        feed(
            s,
            [Msg::Conn(ConnEvent::Disconnected {
                error: "closed by the daemon".into(),
                attempt: 1,
                retry_in_ms: 500,
                refused: false,
            })],
        );
        feed(s, [Msg::Conn(ConnEvent::Connected { resumed: true })])
    };
    assert!(reconnect(&mut s).contains(&Effect::FetchWhoAmI));
    feed(&mut s, [who("ops", TokenScope::ReadOnly)]);
    assert!(s.read_only && s.keymap.read_only());
    assert!(reconnect(&mut s).contains(&Effect::FetchWhoAmI));
    feed(&mut s, [who("ops", TokenScope::Admin)]);
    assert!(!s.read_only && !s.keymap.read_only());
    let status = s.status.clone().expect("the switch is announced");
    assert!(status.text.contains("may act again"), "{}", status.text);
    assert!(!types(&mut s, "p").is_empty());
    // A resumed first connection asks nothing more than start did.
    let mut s = loaded(Theme::default(), false);
    let fx = feed(&mut s, [Msg::Conn(ConnEvent::Connected { resumed: true })]);
    assert!(!fx.contains(&Effect::FetchWhoAmI), "{fx:?}");
}
