//! A project folder (`configs/`, `runs/`) with a daemon, for the tests that
//! drive the daemon through its CLI and socket.

use super::*;
use scintigan::daemon::Paths;
use scintigan::daemon::client::Client;
use scintigan::daemon::protocol::{Reply, Request, RunInfo, Snapshot};
use scintigan::store::{EventRecord, RunDir};
use std::path::PathBuf;
use std::time::Duration;

/// A project folder with `configs/` and a daemon that is stopped (and its
/// workers killed) when the test ends, however it ends.
pub struct Project {
    pub dir: PathBuf,
    _guard: std::sync::MutexGuard<'static, ()>,
}

/// One daemon test at a time: several libtorch workers on two cores slow
/// each other down by orders of magnitude (OpenMP threads spin).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Project {
    pub fn new(name: &str, settings: &str) -> Self {
        let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let dir = scratch(name);
        std::fs::create_dir_all(dir.join("configs")).expect("configs");
        std::fs::create_dir_all(dir.join("runs/.daemon")).expect("runs");
        std::fs::write(dir.join("runs/.daemon/daemon.toml"), settings).expect("settings");
        Self { dir, _guard: guard }
    }
    pub fn paths(&self) -> Paths {
        Paths::new(&self.dir.join("runs"), &self.dir.join("configs"))
    }
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        run_in(&self.dir, args)
    }
    /// Run a CLI command that must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "scintigan {args:?} failed: {}",
            stderr(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    /// `status --json` through the CLI.
    pub fn cli_status(&self) -> Snapshot {
        serde_json::from_str(&self.ok(&["status", "--json"])).expect("status --json")
    }
    /// The same through the client library: polling by spawning the CLI
    /// (which loads libtorch) would starve the workers on a small machine.
    /// (Empty while no daemon answers.)
    pub fn status(&self) -> Snapshot {
        let Ok(mut client) = Client::connect(&self.paths()) else {
            return Snapshot::default();
        };
        match client.request(Request::List) {
            Ok(Reply::List(s)) => s,
            _ => Snapshot::default(),
        }
    }
    pub fn run_named(&self, name: &str) -> Option<RunInfo> {
        self.status().runs.into_iter().find(|r| r.name == name)
    }
    pub fn wait_state(&self, name: &str, state: &str, secs: u64) -> RunInfo {
        self.wait_run(name, secs, state, |r| r.state == state)
    }
    /// Run `name` as listed once `cond` holds for it; fails the test,
    /// saying `what` it waited for, after `secs`.
    pub fn wait_run(
        &self,
        name: &str,
        secs: u64,
        what: &str,
        cond: impl Fn(&RunInfo) -> bool,
    ) -> RunInfo {
        let mut last = None;
        let ok = wait_for(secs, || {
            std::thread::sleep(Duration::from_millis(80));
            last = self.run_named(name);
            last.as_ref().is_some_and(&cond)
        });
        assert!(ok, "{name} never became {what}; last seen {last:?}");
        last.expect("run")
    }
    pub fn config(&self, file: &str, text: &str) {
        // Written beside and renamed in, as an editor would.
        let tmp = self.dir.join(format!(".{file}.part"));
        std::fs::write(&tmp, text).expect("write config");
        std::fs::rename(&tmp, self.dir.join("configs").join(file)).expect("rename config");
    }
    pub fn run_dir(&self, id: &str) -> RunDir {
        RunDir::open(&self.dir.join("runs").join(id)).expect("run dir")
    }
    pub fn daemon_pid(&self) -> Option<u32> {
        self.paths().recorded_pid()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        // Every process working in this project: its daemon and workers.
        kill_processes_mentioning(&self.dir);
    }
}

/// A tiny GAN run that checkpoints every few milliseconds, so a stop at
/// any moment loses nothing.
pub fn long_config(name: &str, epochs: u32) -> String {
    tiny_gan_config(
        name,
        epochs,
        "checkpoint_minutes = 0.0015\ncheckpoint_every = 1000",
    )
}

/// Each GAN step 1..=steps logged exactly once, in order.
pub fn assert_each_step_once(records: &[EventRecord], steps: u64) {
    let got: Vec<u64> = gan_losses(records).iter().map(|(s, _)| *s).collect();
    assert_eq!(
        got,
        (1..=steps).collect::<Vec<u64>>(),
        "every step exactly once"
    );
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "seq increasing");
}
