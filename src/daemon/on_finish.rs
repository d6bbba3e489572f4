//! `on_finish = ["prog", "arg", ...]` in `daemon.toml`: a program the
//! daemon runs, without a shell, each time one of its runs ends (done,
//! failed or cancelled), as pueue's callback does. It gets the run in its
//! environment (`SCINTIGAN_RUN_ID`, `SCINTIGAN_RUN_NAME`,
//! `SCINTIGAN_RUN_STATE`, `SCINTIGAN_RUN_REASON`, `SCINTIGAN_RUN_DIR`), no
//! stdin, and `daemon.log` for its output; it is killed after
//! `on_finish_timeout_seconds`. Run configs never run code: only the
//! daemon's own settings file can name a program.
//!
//! The daemon follows the runs it queues, starts or submits, and looks at
//! their status at most once a second; a run that ended while no daemon
//! was running is not reported.

use crate::store::{RunDir, RunState};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A followed run that has ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub id: String,
    pub name: String,
    pub state: RunState,
    pub reason: Option<String>,
    pub dir: PathBuf,
}

impl Finished {
    /// The program's environment.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SCINTIGAN_RUN_ID", self.id.clone()),
            ("SCINTIGAN_RUN_NAME", self.name.clone()),
            ("SCINTIGAN_RUN_STATE", self.state.to_string()),
            (
                "SCINTIGAN_RUN_REASON",
                self.reason.clone().unwrap_or_default(),
            ),
            ("SCINTIGAN_RUN_DIR", self.dir.display().to_string()),
        ]
    }
}

/// The runs the daemon saw queued or live, until their status says they ended.
#[derive(Debug, Default)]
pub struct FinishWatch {
    followed: BTreeSet<String>,
    last_look: Option<Instant>,
}

impl FinishWatch {
    /// Follow these runs (queued, started or submitted ones) from now on.
    pub fn follow<'a>(&mut self, ids: impl IntoIterator<Item = &'a String>) {
        for id in ids {
            if !self.followed.contains(id) {
                self.followed.insert(id.clone());
            }
        }
    }

    /// Followed runs under `runs_dir` whose status says they ended, at most
    /// once a second (an empty list in between); they are followed no
    /// more (a retry queues, and so follows, a run again).
    pub fn collect(&mut self, runs_dir: &Path) -> Vec<Finished> {
        if self
            .last_look
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return Vec::new();
        }
        self.last_look = Some(Instant::now());
        let mut ended = Vec::new();
        self.followed.retain(|id| {
            let dir = runs_dir.join(id);
            let Ok(status) = RunDir::open(&dir).and_then(|r| r.status()) else {
                // Unreadable for now: look again; gone (deleted by
                // hand): nothing to report.
                return dir.exists();
            };
            if !status.state.has_ended() {
                return true;
            }
            ended.push(Finished {
                id: id.clone(),
                name: status.name.clone(),
                state: status.state,
                reason: status.exit_reason.clone(),
                dir,
            });
            false
        });
        ended
    }
}

/// Run `command` for `run` on a thread of its own, its output appended to
/// `log`, killed after `timeout`; how it went is logged.
pub fn spawn_hook(command: &[String], run: &Finished, timeout: Duration, log: &Path) {
    let Some((program, args)) = command.split_first() else {
        return;
    };
    let output = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null())
    };
    let spawned = Command::new(program)
        .args(args)
        .envs(run.environment())
        .stdin(Stdio::null())
        .stdout(output())
        .stderr(output())
        .spawn();
    let id = run.id.clone();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            tracing::error!("on_finish for {id}: cannot run {program}: {e}");
            return;
        }
    };
    let program = program.clone();
    std::thread::spawn(move || {
        let started = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => {
                    tracing::info!("on_finish for {id}: {program} exited 0");
                    return;
                }
                Ok(Some(status)) => {
                    tracing::warn!(
                        "on_finish for {id}: {program} ended with {}",
                        super::process::describe_exit(status)
                    );
                    return;
                }
                Ok(None) if started.elapsed() >= timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    tracing::warn!(
                        "on_finish for {id}: {program} killed after {:.0} s \
                         (on_finish_timeout_seconds)",
                        timeout.as_secs_f64()
                    );
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => {
                    tracing::error!("on_finish for {id}: cannot wait for {program}: {e}");
                    return;
                }
            }
        }
    });
}
