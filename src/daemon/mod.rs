//! The daemon: one per `runs/` directory. It watches `configs/`, owns the
//! queue, starts and adopts workers and serves the control socket.
//!
//! ```text
//! runs/.daemon/  lock, pid, control.sock (0600; the folder is 0700),
//!                state.json (queue, priorities, enqueued config hashes),
//!                daemon.toml (settings, optional), daemon.log
//! ```

pub mod client;
mod core;
pub mod on_finish;
mod process;
pub mod protocol;
mod server;
pub mod settings;
pub mod slurm;
mod state;

pub use core::UNDER_DAEMON;
pub use process::cpu_seconds;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where one daemon keeps its files, all absolute.
#[derive(Debug, Clone)]
pub struct Paths {
    pub runs: PathBuf,
    pub configs: PathBuf,
}

impl Paths {
    pub fn new(runs: &Path, configs: &Path) -> Self {
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        Self {
            runs: abs(runs),
            configs: abs(configs),
        }
    }
    pub fn dir(&self) -> PathBuf {
        self.runs.join(".daemon")
    }
    pub fn socket(&self) -> PathBuf {
        self.dir().join("control.sock")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.dir().join("pid")
    }
    pub fn lock_file(&self) -> PathBuf {
        self.dir().join("lock")
    }
    pub fn state_file(&self) -> PathBuf {
        self.dir().join("state.json")
    }
    pub fn settings_file(&self) -> PathBuf {
        self.dir().join("daemon.toml")
    }
    pub fn log_file(&self) -> PathBuf {
        self.dir().join("daemon.log")
    }
    /// Relative paths in configs resolve against the folder holding
    /// `configs/`.
    pub fn project_root(&self) -> PathBuf {
        self.configs
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.configs.clone())
    }

    /// Create `runs/.daemon` with mode 0700 (tightening it if it exists).
    pub fn make_private_dir(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(self.dir())?;
        std::fs::set_permissions(self.dir(), std::fs::Permissions::from_mode(0o700))
    }

    /// The pid in the pid file, if any.
    pub fn recorded_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.pid_file())
            .ok()
            .and_then(|t| t.trim().parse().ok())
    }
}

/// How `scintigan daemon --foreground` ended.
#[derive(Debug, PartialEq, Eq)]
pub enum DaemonExit {
    /// Another daemon holds the lock for this runs directory.
    AlreadyRunning(Option<u32>),
    Stopped,
}

/// Hold the daemon lock of `paths` for the life of the returned file.
fn take_lock(paths: &Paths) -> std::io::Result<Option<std::fs::File>> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(paths.lock_file())?;
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    Ok((rc == 0).then_some(file))
}

/// Run the daemon in this process until it is told to stop.
pub fn run_foreground(paths: &Paths) -> anyhow::Result<DaemonExit> {
    use anyhow::Context;
    paths
        .make_private_dir()
        .with_context(|| format!("cannot create {}", paths.dir().display()))?;
    let Some(lock) =
        take_lock(paths).with_context(|| format!("{}", paths.lock_file().display()))?
    else {
        return Ok(DaemonExit::AlreadyRunning(paths.recorded_pid()));
    };
    crate::store::write_atomic(
        &paths.pid_file(),
        format!("{}\n", std::process::id()).as_bytes(),
    )
    .with_context(|| format!("{}", paths.pid_file().display()))?;
    std::fs::create_dir_all(&paths.configs)
        .with_context(|| format!("cannot create {}", paths.configs.display()))?;
    let settings = settings::Settings::load(&paths.settings_file()).map_err(anyhow::Error::msg)?;
    let result = server::serve(paths.clone(), settings);
    let _ = std::fs::remove_file(paths.socket());
    let _ = std::fs::remove_file(paths.pid_file());
    drop(lock);
    result.map(|()| DaemonExit::Stopped)
}
