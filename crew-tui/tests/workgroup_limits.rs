//! Workgroup limits in the console: the prompt, the action it sends, the
//! columns of the workgroups view, and read-only mode.

mod common;

use common::*;
use crew_core::wire::{Event, StreamMessage};
use crew_core::WorkgroupLimits;
use crew_tui::app::action::{ActionRequest, Target, Verb};
use crew_tui::app::msg::Effect;
use crew_tui::app::state::{Input, View};
use crew_tui::theme::Theme;
use crew_tui::Msg;
use crossterm::event::KeyCode;

/// The workgroups view with `stripe` (the third) selected.
fn on_stripe(read_only: bool) -> crew_tui::AppState {
    let mut s = loaded(Theme::default(), read_only);
    types(&mut s, "2jj");
    assert_eq!(s.view, View::Workgroups);
    s
}

fn limits(spec: &str) -> WorkgroupLimits {
    WorkgroupLimits::parse(spec).unwrap()
}

#[test]
fn the_prompt_starts_with_the_current_limits_and_sends_the_new_ones() {
    let mut s = on_stripe(false);
    types(&mut s, "l");
    assert_eq!(
        s.input,
        Input::Limits {
            workgroup: "stripe".into(),
            text: "concurrency:4,rate:2".into()
        }
    );
    // Edit: drop the rate, raise the concurrency.
    for _ in 0.."concurrency:4,rate:2".len() {
        feed(&mut s, [code(KeyCode::Backspace)]);
    }
    types(&mut s, "concurrency:8, rate:0.5, burst:2");
    let fx = feed(&mut s, [code(KeyCode::Enter)]);
    let want = ActionRequest {
        verb: Verb::Limit,
        target: Target::WorkgroupLimits {
            name: "stripe".into(),
            limits: limits("concurrency:8,rate:0.5,burst:2"),
        },
        seconds: None,
    };
    assert_eq!(fx, vec![Effect::Act(want.clone())]);
    assert_eq!(s.input, Input::None);
    assert_eq!(
        want.describe(),
        "limit workgroup stripe to concurrency:8,rate:0.5,burst:2"
    );
    // In flight until the daemon's event arrives.
    assert_eq!(s.pending.get("wg:stripe"), Some(&Verb::Limit));
    let mut wg = s.workgroups[2].workgroup.clone();
    wg.limits = limits("concurrency:8,rate:0.5,burst:2");
    feed(
        &mut s,
        [Msg::Stream(StreamMessage {
            seq: 7,
            at: Some(now()),
            event: Event::WorkgroupUpdated { workgroup: wg },
        })],
    );
    assert!(s.pending.is_empty());
    assert_eq!(
        s.workgroups[2].workgroup.limits,
        limits("concurrency:8,rate:0.5,burst:2")
    );
}

#[test]
fn an_empty_answer_removes_the_limits() {
    let mut s = on_stripe(false);
    types(&mut s, "l");
    for _ in 0..40 {
        feed(&mut s, [code(KeyCode::Backspace)]);
    }
    let req = sent_limits(&mut s, WorkgroupLimits::default());
    assert_eq!(req.describe(), "remove the limits of workgroup stripe");
}

/// ctrl-u clears the prefilled limits at once, as in a shell (it took a
/// backspace a character).
#[test]
fn ctrl_u_clears_the_prompt() {
    let mut s = on_stripe(false);
    types(&mut s, "l");
    let ctrl_u = Msg::Key(crossterm::event::KeyEvent::new(
        KeyCode::Char('u'),
        crossterm::event::KeyModifiers::CONTROL,
    ));
    feed(&mut s, [ctrl_u]);
    assert!(
        matches!(&s.input, Input::Limits { text, .. } if text.is_empty()),
        "{:?}",
        s.input
    );
    types(&mut s, "concurrency:3");
    sent_limits(&mut s, limits("concurrency:3"));
}

/// The prompt names ctrl-u when the line has room for it whole, and not
/// at 80 columns, where it would cut what is typed or the name; nor once
/// there is nothing left to clear.
#[test]
fn the_prompt_names_ctrl_u_when_there_is_room() {
    let mut s = on_stripe(false);
    types(&mut s, "l");
    let bar = |s: &crew_tui::AppState, w: u16| {
        let screen = render(s, w, 24);
        screen.lines().last().unwrap_or_default().to_string()
    };
    let wide = bar(&s, 120);
    assert!(wide.contains("concurrency:4,rate:2█"), "{wide}");
    assert!(wide.contains("esc: cancel  ^u: clear"), "{wide}");
    let narrow = bar(&s, 80);
    assert!(
        narrow.contains(" limits of workgroup stripe: concurrency:4,rate:2█"),
        "{narrow}"
    );
    assert!(!narrow.contains("^u"), "{narrow}");
    let ctrl_u = Msg::Key(crossterm::event::KeyEvent::new(
        KeyCode::Char('u'),
        crossterm::event::KeyModifiers::CONTROL,
    ));
    feed(&mut s, [ctrl_u]);
    let cleared = bar(&s, 120);
    assert!(!cleared.contains("^u"), "{cleared}");
}

/// Enter on the limits prompt: the request it sends, which must set
/// `expected` on workgroup stripe.
fn sent_limits(s: &mut crew_tui::AppState, expected: WorkgroupLimits) -> ActionRequest {
    let fx = feed(s, [code(KeyCode::Enter)]);
    let [Effect::Act(req)] = &fx[..] else {
        panic!("{fx:?}");
    };
    assert_eq!(
        req.target,
        Target::WorkgroupLimits {
            name: "stripe".into(),
            limits: expected
        }
    );
    req.clone()
}

#[test]
fn bad_limits_are_refused_in_the_console() {
    let mut s = on_stripe(false);
    types(&mut s, "l");
    types(&mut s, ",rate:-1");
    let fx = feed(&mut s, [code(KeyCode::Enter)]);
    assert!(fx.is_empty(), "{fx:?}");
    let status = s.status.clone().expect("an error is shown");
    assert!(
        status.error && status.text.contains("limits not set"),
        "{status:?}"
    );
    // Esc leaves the prompt without sending anything.
    types(&mut s, "l");
    let fx = feed(&mut s, [code(KeyCode::Esc)]);
    assert!(fx.is_empty());
    assert_eq!(s.input, Input::None);
}

#[test]
fn read_only_mode_has_no_limit_key() {
    let mut s = on_stripe(true);
    let fx = types(&mut s, "l");
    assert!(fx.is_empty());
    assert_eq!(s.input, Input::None);
    let help = s.keymap.help_rows(crew_tui::app::keymap::Scope::Workgroups);
    assert!(help.iter().all(|(_, d)| !d.contains("limits")), "{help:?}");
    let help = crew_tui::app::keymap::KeyMap::defaults(false)
        .help_rows(crew_tui::app::keymap::Scope::Workgroups);
    assert!(
        help.iter().any(|(k, d)| k == "l" && d.contains("limits")),
        "{help:?}"
    );
}

#[test]
fn workgroups_view_shows_limits_and_calls_in_flight() {
    let s = on_stripe(false);
    insta::assert_snapshot!("workgroup_limits_80x24", render(&s, 80, 24));
    insta::assert_snapshot!("workgroup_limits_160x48", render(&s, 160, 48));
    let mut s = s;
    types(&mut s, "l");
    insta::assert_snapshot!("workgroup_limits_prompt_80x24", render(&s, 80, 24));
}
