//! A private tmux server with one 160x48 session, for the tests that drive
//! the real dashboard on a terminal (`send-keys`, `capture-pane`). The
//! server is killed when the value is dropped.

use super::*;
use std::process::Command;
use std::time::Duration;

pub struct Tmux {
    socket: String,
    session: String,
}

/// Whether tmux can be run here: under `CI=true` a missing tmux fails the
/// test; elsewhere it is skipped, saying so (see [`needs`]).
pub fn tmux_available() -> bool {
    needs(match Command::new("tmux").arg("-V").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!("`tmux -V` failed: {}", stderr(&out).trim())),
        Err(e) => Err(format!(
            "tmux cannot be run ({e}); install it (Debian: apt-get install tmux)"
        )),
    })
}

impl Tmux {
    /// A server named after `tag` and this test process, with session
    /// `session` still to be started.
    pub fn new(tag: &str, session: &str) -> Self {
        Self {
            socket: format!("scintigan-{tag}-{}", std::process::id()),
            session: session.to_string(),
        }
    }
    pub fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux")
    }
    /// Start the session running `shell` on a 160x48 terminal.
    pub fn start(&self, shell: &str) {
        let out = self.cmd(&[
            "new-session",
            "-d",
            "-s",
            &self.session,
            "-x",
            "160",
            "-y",
            "48",
            shell,
        ]);
        assert!(out.status.success(), "tmux new-session: {}", stderr(&out));
    }
    /// Start the dashboard in project folder `dir`.
    pub fn open(&self, dir: &Path) {
        self.open_with(dir, &[]);
    }
    /// Start the dashboard in project folder `dir` with environment `vars`.
    pub fn open_with(&self, dir: &Path, vars: &[(&str, &Path)]) {
        let bin = env!("CARGO_BIN_EXE_scintigan");
        let env: String = vars
            .iter()
            .map(|(k, v)| format!("{k}='{}' ", v.display()))
            .collect();
        self.start(&format!("cd '{}' && {env}'{bin}'", dir.display()));
    }
    /// A tmux format (`#{...}`) of the session's current window.
    pub fn format(&self, format: &str) -> String {
        let out = self.cmd(&["display-message", "-p", "-t", &self.session, format]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
    pub fn capture(&self) -> String {
        String::from_utf8_lossy(
            &self
                .cmd(&["capture-pane", "-p", "-t", &self.session])
                .stdout,
        )
        .into_owned()
    }
    pub fn keys(&self, keys: &str) {
        self.cmd(&["send-keys", "-t", &self.session, keys]);
    }
    /// The screen once `cond` holds for it; panics with the last screen
    /// and the processes running after `secs`.
    pub fn wait_screen(&self, secs: u64, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let ok = wait_for(secs, || {
            std::thread::sleep(Duration::from_millis(100));
            last = self.capture();
            cond(&last)
        });
        if !ok {
            let ps = Command::new("sh")
                .args(["-c", "ps aux | grep -v grep | grep -e scintigan -e tmux"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            panic!("the screen never showed {what}; last screen:\n{last}\n{ps}");
        }
        last
    }
    pub fn alive(&self) -> bool {
        self.cmd(&["has-session", "-t", &self.session])
            .status
            .success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.cmd(&["kill-server"]);
    }
}

/// Kills every process working in a project folder (its daemon and
/// workers) when the test ends, however it ends.
pub struct Cleanup(pub PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        kill_processes_mentioning(&self.0);
    }
}
