//! Dashboard settings, `$XDG_CONFIG_HOME/scintigan/dashboard.toml` (or
//! `~/.config/scintigan/dashboard.toml`), beside `keys.toml`:
//!
//! ```toml
//! notifications = false  # no bell or desktop notification when a run ends
//! ```

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Ring the bell and send a desktop notification when a run the
    /// dashboard saw queued or running ends ([`super::notify`]).
    pub notifications: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            notifications: true,
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    notifications: Option<bool>,
}

impl Settings {
    /// The settings in `path`; the defaults when it does not exist. A bad
    /// file is an error naming it, the line and what is wrong.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let raw: RawSettings = toml::from_str(&text).map_err(|e| {
            let file = path.to_string_lossy();
            let src = crate::config::Source {
                file: &file,
                text: &text,
            };
            let at = e.span().map(|s| src.line_col(s.start));
            let what = e.message().lines().next().unwrap_or("invalid TOML");
            match at {
                Some((line, col)) => format!("{}:{line}:{col}: {what}", path.display()),
                None => format!("{}: {what}", path.display()),
            }
        })?;
        Ok(Self {
            notifications: raw.notifications.unwrap_or(true),
        })
    }

    pub fn default_path() -> Option<PathBuf> {
        super::keys::config_dir().map(|d| d.join("dashboard.toml"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Settings, String> {
        let dir = std::env::temp_dir().join(format!(
            "scintigan-settings-{}-{}",
            std::process::id(),
            text.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dashboard.toml");
        std::fs::write(&path, text).unwrap();
        let got = Settings::load(&path);
        let _ = std::fs::remove_dir_all(&dir);
        got
    }

    #[test]
    fn notifications_default_on_and_a_key_turns_them_off() {
        let missing = Settings::load(Path::new("/nonexistent/scintigan/dashboard.toml"));
        assert_eq!(missing, Ok(Settings::default()));
        assert!(Settings::default().notifications);
        assert!(!load("notifications = false\n").unwrap().notifications);
        assert!(load("# nothing set\n").unwrap().notifications);
    }

    #[test]
    fn a_bad_file_names_the_place_and_the_problem() {
        let err = load("\nnotification = false\n").unwrap_err();
        assert!(
            err.contains("dashboard.toml:2:1:")
                && err.contains("unknown field `notification`, expected `notifications`"),
            "{err}"
        );
        let err = load("notifications = \"no\"\n").unwrap_err();
        assert!(
            err.contains("dashboard.toml:1:17:") && err.contains("expected a boolean"),
            "{err}"
        );
    }
}
