//! The keymap is data: every command, the keys bound to it, where it applies
//! and whether it changes anything on the daemon. The key handler and the
//! help overlay read the same table, so help cannot drift from the keys.
//! Bindings can be overridden from a TOML or JSON file.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a command applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Everywhere.
    Global,
    /// The groups list.
    Groups,
    /// A group's task tree.
    Dag,
    /// The task detail.
    Task,
    /// The workgroups list.
    Workgroups,
    /// The event log.
    Events,
}

impl Scope {
    /// A title for the help overlay.
    pub fn title(&self) -> &'static str {
        match self {
            Scope::Global => "Global",
            Scope::Groups => "Groups",
            Scope::Dag => "Group tree",
            Scope::Task => "Task",
            Scope::Workgroups => "Workgroups",
            Scope::Events => "Events",
        }
    }
}

macro_rules! commands {
    ($( $variant:ident = $name:literal, $desc:literal, $danger:literal, [$($scope:ident),*], [$($key:literal),*] ;)*) => {
        /// Everything a key can do.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Command {
            $(
                #[doc = $desc]
                $variant,
            )*
        }

        impl Command {
            /// Every command, in help order.
            pub const ALL: &'static [Command] = &[$(Command::$variant),*];

            /// The name used in the keys file.
            pub fn name(&self) -> &'static str {
                match self { $(Command::$variant => $name),* }
            }

            /// What it does, for the help overlay.
            pub fn description(&self) -> &'static str {
                match self { $(Command::$variant => $desc),* }
            }

            /// Whether it changes state on the daemon (hidden and refused in
            /// read-only mode).
            pub fn dangerous(&self) -> bool {
                match self { $(Command::$variant => $danger),* }
            }

            /// Where it applies.
            pub fn scopes(&self) -> &'static [Scope] {
                match self { $(Command::$variant => &[$(Scope::$scope),*]),* }
            }

            fn default_keys(&self) -> &'static [&'static str] {
                match self { $(Command::$variant => &[$($key),*]),* }
            }
        }
    };
}

commands! {
    Help = "help", "this help", false, [Global], ["?"];
    Quit = "quit", "quit", false, [Global], ["q", "ctrl-c"];
    CommandMode = "command", "command (:group N :wg N)", false, [Global], [":"];
    Filter = "filter", "filter by text", false, [Global], ["/"];
    Back = "back", "back, or clear the filter", false, [Global], ["esc"];
    Open = "open", "open, or jump to a reference", false, [Global], ["enter"];
    Up = "up", "move up", false, [Global], ["k", "up"];
    Down = "down", "move down", false, [Global], ["j", "down"];
    Top = "top", "go to the top", false, [Global], ["g", "home"];
    Bottom = "bottom", "go to the bottom", false, [Global], ["G", "end"];
    PageUp = "page_up", "page up", false, [Global], ["pageup", "ctrl-b"];
    PageDown = "page_down", "page down", false, [Global], ["pagedown", "ctrl-f"];
    NextPane = "next_pane", "next pane", false, [Global], ["tab"];
    Refresh = "refresh", "refetch everything", false, [Global], ["ctrl-r"];
    Groups = "groups", "groups view", false, [Global], ["1"];
    Workgroups = "workgroups", "workgroups view", false, [Global], ["2"];
    Events = "events", "event log", false, [Global], ["3"];
    Sort = "sort", "cycle the sort order", false, [Groups], ["s"];
    ToggleExpand = "toggle", "fold / unfold the node", false, [Dag], ["space", "o"];
    ExpandAll = "expand_all", "expand every node", false, [Dag], ["E"];
    CollapseAll = "collapse_all", "collapse every node", false, [Dag], ["C"];
    StatusFilter = "status_filter", "cycle the status filter", false, [Dag], ["f"];
    Lineage = "lineage", "only up/downstream of task", false, [Dag], ["u"];
    BulkTarget = "bulk", "act on task / all filtered", false, [Dag], ["a"];
    Pause = "pause", "pause", true, [Groups, Dag, Task, Workgroups], ["p"];
    Resume = "resume", "resume", true, [Groups, Dag, Task, Workgroups], ["r"];
    Reset = "reset", "reset (asks first)", true, [Groups, Dag, Task], ["R"];
    Retry = "retry", "retry (new attempts)", true, [Groups, Dag, Task], ["t"];
    Delete = "delete", "delete (asks first)", true, [Groups, Dag, Task], ["d"];
    Cancel = "cancel", "cancel a running call", true, [Dag, Task], ["c"];
    Limit = "limit", "set limits (concurrency, rate)", true, [Workgroups], ["l"];
    Schedule = "schedule", "set the group's cron schedule", true, [Groups, Dag, Task], ["S"];
    MineOnly = "mine", "show only my own actions", false, [Events], ["m"];
}

/// One key with its modifiers, as written in the keys file (`q`, `G`,
/// `ctrl-c`, `enter`, `esc`, `tab`, `space`, `up`, `pagedown`, `f1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// The key.
    pub code: KeyCode,
    /// Only CONTROL and ALT are kept; SHIFT is in the character.
    pub mods: KeyModifiers,
}

impl Key {
    /// Normalises a terminal key event.
    pub fn from_event(e: &KeyEvent) -> Self {
        let mods = e.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
        Key { code: e.code, mods }
    }

    /// A compact form for the help and the key bar (`^c`, `pgdn`).
    pub fn short(&self) -> String {
        let mut s = self.to_string();
        for (long, short) in [("pagedown", "pgdn"), ("pageup", "pgup")] {
            s = s.replace(long, short);
        }
        s.replace("ctrl-", "^")
    }

    /// Parses the keys-file notation.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut mods = KeyModifiers::NONE;
        let mut rest = s;
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-") {
                mods |= KeyModifiers::CONTROL;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-") {
                mods |= KeyModifiers::ALT;
                rest = r;
            } else {
                break;
            }
        }
        let code = match rest {
            "enter" => KeyCode::Enter,
            "esc" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "space" => KeyCode::Char(' '),
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            "backspace" => KeyCode::Backspace,
            "delete" => KeyCode::Delete,
            f if f.len() > 1 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
                KeyCode::F(f[1..].parse::<u8>().unwrap_or(1))
            }
            c if c.chars().count() == 1 => KeyCode::Char(c.chars().next().unwrap_or(' ')),
            _ => return Err(format!("unknown key {s:?}")),
        };
        Ok(Key { code, mods })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("backtab"),
            KeyCode::Up => f.write_str("up"),
            KeyCode::Down => f.write_str("down"),
            KeyCode::Left => f.write_str("left"),
            KeyCode::Right => f.write_str("right"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::PageUp => f.write_str("pageup"),
            KeyCode::PageDown => f.write_str("pagedown"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Delete => f.write_str("delete"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// The bindings in force.
#[derive(Clone, Debug)]
pub struct KeyMap {
    keys: BTreeMap<Command, Vec<Key>>,
    read_only: bool,
}

/// The keys file: command name to one key or a list of keys, under
/// `[keys]` (anything else is refused, so that bindings written outside
/// it are not silently ignored).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(default)]
    keys: BTreeMap<String, OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl Default for KeyMap {
    fn default() -> Self {
        Self::defaults(false)
    }
}

impl KeyMap {
    /// The built-in bindings. In read-only mode every dangerous command is
    /// removed, from the handler and the help alike.
    pub fn defaults(read_only: bool) -> Self {
        let keys = Command::ALL
            .iter()
            .map(|c| {
                let ks = c
                    .default_keys()
                    .iter()
                    .filter_map(|k| Key::parse(k).ok())
                    .collect();
                (*c, ks)
            })
            .collect();
        KeyMap { keys, read_only }
    }

    /// Applies overrides from a keys file's text: TOML, or JSON when `json`.
    /// A command named in the file gets exactly the keys listed there.
    pub fn apply_overrides(&mut self, text: &str, json: bool) -> Result<(), String> {
        let file: KeysFile = if json {
            serde_json::from_str(text).map_err(|e| e.to_string())?
        } else {
            toml::from_str(text).map_err(|e| e.to_string())?
        };
        let mut from_file = Vec::new();
        for (name, keys) in file.keys {
            let cmd = Command::ALL
                .iter()
                .find(|c| c.name() == name)
                .ok_or_else(|| format!("unknown command {name:?} in keys file"))?;
            let list = match keys {
                OneOrMany::One(k) => vec![k],
                OneOrMany::Many(v) => v,
            };
            let parsed = list
                .iter()
                .map(|k| Key::parse(k))
                .collect::<Result<Vec<_>, _>>()?;
            // ctrl-c quits before the keymap is asked: bound to anything
            // else it would be shown for that and still quit.
            if *cmd != Command::Quit && parsed.iter().any(|k| k.to_string() == "ctrl-c") {
                return Err(format!(
                    "key ctrl-c always quits: it cannot be bound to {name:?} in keys file"
                ));
            }
            self.keys.insert(*cmd, parsed);
            from_file.push(*cmd);
        }
        self.conflicts(&from_file)
    }

    /// Refuses a key bound to two commands that can apply in the same
    /// view (a global command applies in every view): one of them would
    /// never run, or not the one the help shows.
    pub fn check_conflicts(&self) -> Result<(), String> {
        self.conflicts(&[])
    }

    /// [`KeyMap::check_conflicts`], the error saying which of the two
    /// bindings come from the keys file (`from_file`) and which are built
    /// in, and a view where they meet.
    fn conflicts(&self, from_file: &[Command]) -> Result<(), String> {
        let origin = |c: &Command| {
            if from_file.contains(c) {
                "keys file"
            } else {
                "built in"
            }
        };
        for (i, a) in Command::ALL.iter().enumerate() {
            for b in &Command::ALL[i + 1..] {
                let (Some(ka), Some(kb)) = (self.keys.get(a), self.keys.get(b)) else {
                    continue;
                };
                let Some(k) = ka.iter().find(|k| kb.contains(k)) else {
                    continue;
                };
                if let Some(view) = shared_scope(*a, *b) {
                    let view = match view {
                        Scope::Global => "every view".to_string(),
                        v => format!("the {} view", v.title().to_lowercase()),
                    };
                    return Err(format!(
                        "key {k} is bound to both {:?} ({}) and {:?} ({}), which both apply in {view}: give one of them another key",
                        a.name(),
                        origin(a),
                        b.name(),
                        origin(b),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Loads the defaults plus the overrides in `path` (TOML, or JSON for a
    /// `.json` file). A missing file at the default location is not an error.
    pub fn load(path: Option<&Path>, read_only: bool) -> Result<Self, String> {
        let mut map = Self::defaults(read_only);
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => match default_keys_path() {
                Some(p) => (p, false),
                None => return Ok(map),
            },
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let json = path.extension().is_some_and(|e| e == "json");
                map.apply_overrides(&text, json)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        Ok(map)
    }

    /// Whether dangerous commands are removed.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Removes (or restores) every dangerous command: the console turns
    /// read-only by itself when its token is read-only.
    pub fn set_read_only(&mut self, read_only: bool) {
        self.read_only = read_only;
    }

    /// The command a key triggers in a scope: the scope's own bindings
    /// first, then the global ones.
    pub fn lookup(&self, scope: Scope, key: Key) -> Option<Command> {
        let find = |want: Scope| {
            self.keys.iter().find_map(|(cmd, keys)| {
                (cmd.scopes().contains(&want)
                    && keys.contains(&key)
                    && !(self.read_only && cmd.dangerous()))
                .then_some(*cmd)
            })
        };
        if scope != Scope::Global {
            if let Some(c) = find(scope) {
                return Some(c);
            }
        }
        find(Scope::Global)
    }

    /// The first key bound to a command, for the key bar.
    pub fn first_key(&self, cmd: Command) -> Option<Key> {
        self.keys.get(&cmd).and_then(|k| k.first().copied())
    }

    /// The keys bound to a command, compactly, for display (`k up`,
    /// `pgdn ^f`).
    pub fn keys_of(&self, cmd: Command) -> String {
        self.keys
            .get(&cmd)
            .map(|ks| ks.iter().map(|k| k.short()).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    }

    /// The commands a scope offers (not the global ones), as help rows.
    pub fn help_rows(&self, scope: Scope) -> Vec<(String, &'static str)> {
        Command::ALL
            .iter()
            .filter(|c| c.scopes().contains(&scope))
            .filter(|c| !(self.read_only && c.dangerous()))
            .filter(|c| self.keys.get(c).is_some_and(|k| !k.is_empty()))
            .map(|c| (self.keys_of(*c), c.description()))
            .collect()
    }
}

/// A view where both commands apply, if any (a global command applies in
/// every view).
fn shared_scope(a: Command, b: Command) -> Option<Scope> {
    let global = |c: Command| c.scopes().contains(&Scope::Global);
    match (global(a), global(b)) {
        (true, true) => Some(Scope::Global),
        (true, false) => b.scopes().first().copied(),
        (false, true) => a.scopes().first().copied(),
        (false, false) => a.scopes().iter().find(|s| b.scopes().contains(s)).copied(),
    }
}

/// `$XDG_CONFIG_HOME/crew/keys.toml`, else `~/.config/crew/keys.toml`.
pub fn default_keys_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("crew").join("keys.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Key {
        Key::parse(s).unwrap()
    }

    #[test]
    fn parses_and_prints_keys() {
        for s in [
            "q", "G", "ctrl-c", "enter", "esc", "space", "pagedown", "f5", "alt-x",
        ] {
            assert_eq!(k(s).to_string(), s);
        }
        assert!(Key::parse("nope").is_err());
    }

    #[test]
    fn scope_bindings_come_before_global_ones() {
        let m = KeyMap::default();
        assert_eq!(
            m.lookup(Scope::Dag, k("space")),
            Some(Command::ToggleExpand)
        );
        assert_eq!(m.lookup(Scope::Groups, k("space")), None);
        assert_eq!(m.lookup(Scope::Groups, k("q")), Some(Command::Quit));
        assert_eq!(m.lookup(Scope::Groups, k("R")), Some(Command::Reset));
        assert_eq!(m.lookup(Scope::Events, k("R")), None);
    }

    #[test]
    fn read_only_removes_every_dangerous_command() {
        let m = KeyMap::defaults(true);
        for key in ["p", "r", "R", "t", "d"] {
            assert_eq!(m.lookup(Scope::Dag, k(key)), None, "{key}");
        }
        let help = m.help_rows(Scope::Dag);
        assert!(help.iter().all(|(_, d)| !d.contains("pause")));
    }

    #[test]
    fn overrides_from_toml_and_json() {
        let mut m = KeyMap::default();
        m.apply_overrides("[keys]\nquit = [\"x\", \"ctrl-q\"]\npause = \"P\"\n", false)
            .unwrap();
        assert_eq!(m.lookup(Scope::Groups, k("x")), Some(Command::Quit));
        assert_eq!(m.lookup(Scope::Groups, k("q")), None);
        assert_eq!(m.lookup(Scope::Dag, k("P")), Some(Command::Pause));
        m.apply_overrides(r#"{"keys": {"help": ["h"]}}"#, true)
            .unwrap();
        assert_eq!(m.lookup(Scope::Dag, k("h")), Some(Command::Help));
        assert!(m.apply_overrides("[keys]\nfly = \"z\"\n", false).is_err());
        assert!(m
            .apply_overrides("[keys]\nquit = \"ctrl-nothing\"\n", false)
            .is_err());
        // Bindings outside `[keys]` are refused, not ignored.
        let e = m.apply_overrides("pause = \"P\"\n", false).unwrap_err();
        assert!(e.contains("pause"), "{e}");
        assert!(m.apply_overrides(r#"{"pause": "P"}"#, true).is_err());
    }

    /// ctrl-c always quits: bound to help it showed `^c:help` and quit.
    #[test]
    fn ctrl_c_is_bound_to_quit_only() {
        let e = KeyMap::default()
            .apply_overrides("[keys]\nquit = \"q\"\nhelp = [\"?\", \"ctrl-c\"]\n", false)
            .unwrap_err();
        assert!(e.contains("ctrl-c") && e.contains("\"help\""), "{e}");
        let e = KeyMap::default()
            .apply_overrides(r#"{"keys": {"quit": "q", "pause": "ctrl-c"}}"#, true)
            .unwrap_err();
        assert!(e.contains("always quits"), "{e}");
        let mut m = KeyMap::default();
        m.apply_overrides("[keys]\nquit = [\"x\", \"ctrl-c\"]\n", false)
            .unwrap();
        assert_eq!(m.lookup(Scope::Groups, k("ctrl-c")), Some(Command::Quit));
    }

    /// A key the file gives to two commands of one view: `q` for pause
    /// paused the group when quit was meant, and help showed both.
    #[test]
    fn a_key_bound_twice_in_one_view_is_refused() {
        let mut m = KeyMap::default();
        let e = m
            .apply_overrides("[keys]\npause = \"q\"\n", false)
            .unwrap_err();
        assert!(
            e.contains("key q") && e.contains("quit") && e.contains("pause"),
            "{e}"
        );
        // Which binding is the file's, and where they meet.
        assert_eq!(
            e,
            "key q is bound to both \"quit\" (built in) and \"pause\" (keys file), \
             which both apply in the groups view: give one of them another key"
        );
        let e = KeyMap::default()
            .apply_overrides("[keys]\nretry = \"c\"\n", false)
            .unwrap_err();
        assert!(e.contains("the group tree view"), "{e}");
        // Moving quit away first is fine; views that never meet may share.
        let mut m = KeyMap::default();
        m.apply_overrides("[keys]\nquit = \"Q\"\npause = \"q\"\n", false)
            .unwrap();
        let mut m = KeyMap::default();
        m.apply_overrides("[keys]\nmine = \"s\"\n", false).unwrap();
        assert!(KeyMap::default().check_conflicts().is_ok());
    }

    #[test]
    fn defaults_do_not_collide_within_a_scope() {
        let m = KeyMap::default();
        for scope in [
            Scope::Groups,
            Scope::Dag,
            Scope::Task,
            Scope::Workgroups,
            Scope::Events,
        ] {
            let mut seen = std::collections::HashMap::new();
            for c in Command::ALL {
                if !(c.scopes().contains(&scope) || c.scopes().contains(&Scope::Global)) {
                    continue;
                }
                for key in m.keys.get(c).into_iter().flatten() {
                    if let Some(prev) = seen.insert(*key, *c) {
                        // A scope binding may shadow a global one on purpose.
                        assert!(
                            prev.scopes().contains(&Scope::Global)
                                != c.scopes().contains(&Scope::Global),
                            "{key} bound to {prev:?} and {c:?} in {scope:?}"
                        );
                    }
                }
            }
        }
    }
}
