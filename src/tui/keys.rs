//! Key bindings: built-in defaults, overridable in
//! `$XDG_CONFIG_HOME/scintigan/keys.toml` (or `~/.config/scintigan/keys.toml`):
//!
//! ```toml
//! pause = "p"            # one key
//! quit = ["q", "ctrl-c"] # or several
//! ```
//! Keys: a character, `space`, `tab`, `backtab`, `enter`, `esc`, `up`,
//! `down`, `left`, `right`, `pageup`, `pagedown`, `home`, `end`, `f1`..`f12`,
//! optionally prefixed `ctrl-`.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Quit,
    Help,
    FocusNext,
    FocusPrev,
    Zoom,
    Up,
    Down,
    Left,
    Right,
    Mark,
    Pause,
    Cancel,
    Retry,
    MoveUp,
    MoveDown,
    Edit,
    Smooth,
    SmoothMore,
    SmoothLess,
    LogY,
    XAxis,
    LogLevel,
    Export,
}

impl Action {
    pub const ALL: [Action; 23] = [
        Action::Quit,
        Action::Help,
        Action::FocusNext,
        Action::FocusPrev,
        Action::Zoom,
        Action::Up,
        Action::Down,
        Action::Left,
        Action::Right,
        Action::Mark,
        Action::Pause,
        Action::Cancel,
        Action::Retry,
        Action::MoveUp,
        Action::MoveDown,
        Action::Edit,
        Action::Smooth,
        Action::SmoothMore,
        Action::SmoothLess,
        Action::LogY,
        Action::XAxis,
        Action::LogLevel,
        Action::Export,
    ];

    /// The name used in keys.toml.
    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::FocusNext => "focus_next",
            Action::FocusPrev => "focus_prev",
            Action::Zoom => "zoom",
            Action::Up => "up",
            Action::Down => "down",
            Action::Left => "left",
            Action::Right => "right",
            Action::Mark => "mark",
            Action::Pause => "pause",
            Action::Cancel => "cancel",
            Action::Retry => "retry",
            Action::MoveUp => "move_up",
            Action::MoveDown => "move_down",
            Action::Edit => "edit",
            Action::Smooth => "smooth",
            Action::SmoothMore => "smooth_more",
            Action::SmoothLess => "smooth_less",
            Action::LogY => "log_y",
            Action::XAxis => "x_axis",
            Action::LogLevel => "log_level",
            Action::Export => "export",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Action::Quit => "detach (runs go on)",
            Action::Help => "this help",
            Action::FocusNext => "focus the next pane (or 1-7)",
            Action::FocusPrev => "focus the previous pane",
            Action::Zoom => "zoom the focused pane to the full screen",
            Action::Up => "select the previous run / scroll",
            Action::Down => "select the next run / scroll",
            Action::Left => "previous epoch (confusion matrix)",
            Action::Right => "next epoch (confusion matrix)",
            Action::Mark => "mark a run for chart overlay",
            Action::Pause => "pause or resume the selected run",
            Action::Cancel => "cancel the selected run (asks first)",
            Action::Retry => "retry a failed/cancelled run, resume a paused one",
            Action::MoveUp => "move a queued run up",
            Action::MoveDown => "move a queued run down",
            Action::Edit => "edit the run's config in $EDITOR (re-queues)",
            Action::Smooth => "smoothing (EMA) on/off",
            Action::SmoothMore => "stronger smoothing",
            Action::SmoothLess => "weaker smoothing",
            Action::LogY => "logarithmic y axis on/off",
            Action::XAxis => "x axis: step, epoch, wall time",
            Action::LogLevel => "log filter: all, info, warn, error",
            Action::Export => "export CSV and PNG charts of the run",
        }
    }

    fn defaults(self) -> &'static [&'static str] {
        match self {
            Action::Quit => &["q", "ctrl-c"],
            Action::Help => &["?", "f1"],
            Action::FocusNext => &["tab"],
            Action::FocusPrev => &["backtab"],
            Action::Zoom => &["enter", "z"],
            Action::Up => &["up", "k"],
            Action::Down => &["down", "j"],
            Action::Left => &["left", "h"],
            Action::Right => &["right"],
            Action::Mark => &["space"],
            Action::Pause => &["p"],
            Action::Cancel => &["c"],
            Action::Retry => &["r"],
            Action::MoveUp => &["+"],
            Action::MoveDown => &["-"],
            Action::Edit => &["e"],
            Action::Smooth => &["s"],
            Action::SmoothMore => &["]"],
            Action::SmoothLess => &["["],
            Action::LogY => &["l"],
            Action::XAxis => &["x"],
            Action::LogLevel => &["f"],
            Action::Export => &["E"],
        }
    }
}

/// A key as written in keys.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub code: KeyCodeOrd,
    pub ctrl: bool,
}

/// KeyCode subset with an order, for maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyCodeOrd {
    Char(char),
    F(u8),
    Tab,
    BackTab,
    Enter,
    Esc,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
}

pub fn parse_key(text: &str) -> Option<Key> {
    let (ctrl, rest) = match text.strip_prefix("ctrl-") {
        Some(r) => (true, r),
        None => (false, text),
    };
    let code = match rest {
        "space" => KeyCodeOrd::Char(' '),
        "tab" => KeyCodeOrd::Tab,
        "backtab" => KeyCodeOrd::BackTab,
        "enter" => KeyCodeOrd::Enter,
        "esc" => KeyCodeOrd::Esc,
        "up" => KeyCodeOrd::Up,
        "down" => KeyCodeOrd::Down,
        "left" => KeyCodeOrd::Left,
        "right" => KeyCodeOrd::Right,
        "pageup" => KeyCodeOrd::PageUp,
        "pagedown" => KeyCodeOrd::PageDown,
        "home" => KeyCodeOrd::Home,
        "end" => KeyCodeOrd::End,
        f if f.len() >= 2 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
            KeyCodeOrd::F(f[1..].parse().ok()?)
        }
        c if c.chars().count() == 1 => KeyCodeOrd::Char(c.chars().next()?),
        _ => return None,
    };
    Some(Key { code, ctrl })
}

pub fn key_of(event: &KeyEvent) -> Option<Key> {
    let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
    let code = match event.code {
        KeyCode::Char(c) => KeyCodeOrd::Char(c),
        KeyCode::F(n) => KeyCodeOrd::F(n),
        KeyCode::Tab => KeyCodeOrd::Tab,
        KeyCode::BackTab => KeyCodeOrd::BackTab,
        KeyCode::Enter => KeyCodeOrd::Enter,
        KeyCode::Esc => KeyCodeOrd::Esc,
        KeyCode::Up => KeyCodeOrd::Up,
        KeyCode::Down => KeyCodeOrd::Down,
        KeyCode::Left => KeyCodeOrd::Left,
        KeyCode::Right => KeyCodeOrd::Right,
        KeyCode::PageUp => KeyCodeOrd::PageUp,
        KeyCode::PageDown => KeyCodeOrd::PageDown,
        KeyCode::Home => KeyCodeOrd::Home,
        KeyCode::End => KeyCodeOrd::End,
        _ => return None,
    };
    Some(Key { code, ctrl })
}

/// Shown in the help overlay: "ctrl-c", "space", "p".
pub fn key_name(key: &Key) -> String {
    let base = match key.code {
        KeyCodeOrd::Char(' ') => "space".to_string(),
        KeyCodeOrd::Char(c) => c.to_string(),
        KeyCodeOrd::F(n) => format!("F{n}"),
        other => format!("{other:?}").to_lowercase(),
    };
    if key.ctrl {
        format!("ctrl-{base}")
    } else {
        base
    }
}

#[derive(Debug, Clone)]
pub struct Bindings {
    map: BTreeMap<Key, Action>,
}

impl Default for Bindings {
    fn default() -> Self {
        let mut map = BTreeMap::new();
        for action in Action::ALL {
            for k in action.defaults() {
                if let Some(key) = parse_key(k) {
                    map.insert(key, action);
                }
            }
        }
        Self { map }
    }
}

impl Bindings {
    pub fn action(&self, key: &Key) -> Option<Action> {
        self.map.get(key).copied()
    }

    /// The keys bound to `action`.
    /// The keys bound to `action`, plain keys before ctrl- ones.
    pub fn keys_for(&self, action: Action) -> Vec<String> {
        let mut keys: Vec<&Key> = self
            .map
            .iter()
            .filter(|(_, a)| **a == action)
            .map(|(k, _)| k)
            .collect();
        keys.sort_by_key(|k| (k.ctrl, !matches!(k.code, KeyCodeOrd::Char(_))));
        keys.into_iter().map(key_name).collect()
    }

    /// The defaults with the overrides of `path` applied; an invalid file is
    /// an error naming the file, the entry and what is accepted.
    pub fn load(path: &Path) -> Result<Self, String> {
        let mut bindings = Self::default();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(bindings),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let table: toml::Table = toml::from_str(&text).map_err(|e| {
            format!(
                "{}: {}",
                path.display(),
                e.message().lines().next().unwrap_or("invalid TOML")
            )
        })?;
        for (name, value) in table {
            let action = Action::ALL
                .into_iter()
                .find(|a| a.name() == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
                    format!(
                        "{}: unknown action '{name}'; expected one of: {}",
                        path.display(),
                        names.join(", ")
                    )
                })?;
            let keys: Vec<String> = match value {
                toml::Value::String(s) => vec![s],
                toml::Value::Array(a) => a
                    .into_iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect(),
                _ => {
                    return Err(format!(
                        "{}: {name}: expected a key or a list of keys",
                        path.display()
                    ));
                }
            };
            bindings.map.retain(|_, a| *a != action);
            for k in keys {
                let key = parse_key(&k).ok_or_else(|| {
                    format!("{}: {name}: unknown key '{k}'; expected a character, space, tab, enter, esc, arrows, f1-f12, optionally ctrl-", path.display())
                })?;
                bindings.map.insert(key, action);
            }
        }
        Ok(bindings)
    }

    /// keys.toml's place: `$XDG_CONFIG_HOME/scintigan/` or `~/.config/scintigan/`.
    pub fn default_path() -> Option<std::path::PathBuf> {
        config_dir().map(|d| d.join("keys.toml"))
    }
}

/// `$XDG_CONFIG_HOME/scintigan` (or `~/.config/scintigan`): where the
/// dashboard's own files live.
pub fn config_dir() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")))?;
    Some(base.join("scintigan"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_the_defaults_of_their_action() {
        let dir = std::env::temp_dir().join(format!("scintigan-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys.toml");
        std::fs::write(&path, "pause = \"P\"\nquit = [\"x\", \"ctrl-q\"]\n").unwrap();
        let b = Bindings::load(&path).unwrap();
        let key = |s: &str| parse_key(s).unwrap();
        assert_eq!(b.action(&key("P")), Some(Action::Pause));
        assert_eq!(b.action(&key("p")), None);
        assert_eq!(b.action(&key("ctrl-q")), Some(Action::Quit));
        assert_eq!(
            b.action(&key("x")),
            Some(Action::Quit),
            "x now quits instead of cycling the axis"
        );
        std::fs::write(&path, "paws = \"p\"\n").unwrap();
        assert!(
            Bindings::load(&path)
                .unwrap_err()
                .contains("unknown action 'paws'")
        );
        std::fs::write(&path, "pause = \"meta-p\"\n").unwrap();
        assert!(
            Bindings::load(&path)
                .unwrap_err()
                .contains("unknown key 'meta-p'")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
