//! The `crew-tui` binary where it cannot start: a clear error and a
//! failing exit status, never a panic.

use std::process::{Command, Output, Stdio};

/// Runs `crew-tui` with `args`, its output a pipe (not a terminal).
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crew-tui"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("running crew-tui")
}

fn refused(out: &Output, why: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(why), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn without_a_terminal_it_says_so() {
    let out = run(&["--server", "http://127.0.0.1:9"]);
    refused(&out, "needs a terminal");
    // Nothing was drawn, not even the escape that leaves the alternate
    // screen.
    assert!(out.stdout.is_empty(), "{:?}", out.stdout);
}

#[test]
fn a_keys_file_with_bindings_outside_keys_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("keys.toml");
    std::fs::write(&path, "pause = \"P\"\n").expect("writing the keys file");
    let out = run(&["--keys", path.to_str().expect("a UTF-8 path")]);
    refused(&out, "keys file");
    refused(&out, "pause");
}

/// A key given to two commands of one view stops the console at start,
/// naming the key and both commands (`q` for pause paused the group when
/// quit was meant).
#[test]
fn a_keys_file_binding_one_key_twice_in_a_view_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("keys.toml");
    std::fs::write(&path, "[keys]\npause = \"q\"\n").expect("writing the keys file");
    let out = run(&["--keys", path.to_str().expect("a UTF-8 path")]);
    refused(
        &out,
        "key q is bound to both \"quit\" (built in) and \"pause\" (keys file)",
    );
}
