//! The run directory: `runs/` is the database.
//!
//! ```text
//! runs/<run-id>/  config.toml   resolved config, frozen at creation
//!                 status.json   state, pid, stage, step, exit reason
//!                 events.jsonl  append-only events, increasing seq
//!                 checkpoints/  <stage>-eEEEE-sSSSSSS/{weights.safetensors,state.json}; `latest`
//!                 samples/      PNG grids of generated images
//!                 worker.log
//!                 .lock         held (flock) by whoever works the run: pid host since
//! ```

mod atomic;
mod checkpoints;
mod control;
mod events;
pub mod lock;
pub mod space;
mod status;
mod time;

pub use atomic::{
    save_png_atomic, save_png_batched, sync_dir, sync_filesystem, temp_sibling, write_atomic,
    write_atomic_private, write_atomic_with,
};
pub use checkpoints::{BestRecord, CheckpointDir, CheckpointState};
pub use control::ControlRequest;
pub use events::{
    COLLAPSE_MARGIN, Event, EventHistory, EventRecord, EventWriter, REJECTED_FILE, Retained,
    collapsed_classes, is_collapsed, read_events,
};
pub use status::{RunState, Status};
pub use time::{compact_utc, unix_now};

use crate::config::{KnownRuns, RunSpec};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: damaged: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "{path}: not a run directory (no config.toml); expected a folder under runs/ made by `scintigan run`"
    )]
    NotARun { path: PathBuf },
    #[error("{path}: frozen config is invalid: {message}")]
    BadConfig { path: PathBuf, message: String },
    #[error(
        "disk full: {} free in {}, a checkpoint needs about {}; free some space there, then continue the run",
        space::human_bytes(*free),
        dir.display(),
        space::human_bytes(*needed)
    )]
    DiskFull {
        dir: PathBuf,
        free: u64,
        needed: u64,
    },
}

impl StoreError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// One run's directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// Create a new run directory under `runs_root` for `spec`, named
    /// `<name>-<YYYYmmdd-HHMMSS>` (with a suffix if taken), and freeze the
    /// config and an initial `queued` status in it.
    pub fn create(runs_root: &Path, spec: &RunSpec) -> Result<Self, StoreError> {
        std::fs::create_dir_all(runs_root).map_err(|e| StoreError::io(runs_root, e))?;
        let base = format!("{}-{}", spec.name, compact_utc(unix_now()));
        let mut root = runs_root.join(&base);
        let mut n = 1;
        loop {
            match std::fs::create_dir(&root) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    n += 1;
                    root = runs_root.join(format!("{base}-{n}"));
                }
                Err(e) => return Err(StoreError::io(&root, e)),
            }
        }
        let run = RunDir { root };
        for dir in [run.checkpoints_dir(), run.samples_dir()] {
            std::fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        }
        let text = spec.to_toml().map_err(|e| StoreError::BadConfig {
            path: run.config_path(),
            message: e.to_string(),
        })?;
        let header =
            "# Frozen by scintigan when this run was created; edit configs/, not this file.\n";
        write_atomic(&run.config_path(), format!("{header}{text}").as_bytes())
            .map_err(|e| StoreError::io(&run.config_path(), e))?;
        Status::new(&spec.name).write(&run.status_path())?;
        Ok(run)
    }

    /// Open an existing run directory.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let run = RunDir {
            root: root.to_path_buf(),
        };
        if !run.config_path().is_file() {
            return Err(StoreError::NotARun {
                path: root.to_path_buf(),
            });
        }
        Ok(run)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The run id: the directory's name.
    pub fn id(&self) -> String {
        self.root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn status_path(&self) -> PathBuf {
        self.root.join("status.json")
    }
    pub fn events_path(&self) -> PathBuf {
        self.root.join("events.jsonl")
    }
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
    pub fn samples_dir(&self) -> PathBuf {
        self.root.join("samples")
    }
    pub fn log_path(&self) -> PathBuf {
        self.root.join("worker.log")
    }
    /// Requests from the daemon to the worker (pause, release, cancel).
    pub fn control_path(&self) -> PathBuf {
        self.root.join("control.json")
    }

    /// The frozen config.
    pub fn spec(&self) -> Result<RunSpec, StoreError> {
        let path = self.config_path();
        crate::config::load_config(&path, &KnownRuns::permissive()).map_err(|errs| {
            StoreError::BadConfig {
                path: path.clone(),
                message: errs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            }
        })
    }

    pub fn status(&self) -> Result<Status, StoreError> {
        Status::read(&self.status_path())
    }

    pub fn checkpoints(&self) -> CheckpointDir {
        CheckpointDir::new(self.checkpoints_dir())
    }
}

/// Every run directory directly under `runs_root` (skipping `.daemon` and
/// anything without a config), sorted by id.
pub fn list_runs(runs_root: &Path) -> Vec<RunDir> {
    let mut runs: Vec<RunDir> = std::fs::read_dir(runs_root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| RunDir::open(&e.path()).ok())
        .collect();
    runs.sort_by_key(RunDir::id);
    runs
}

/// Names of the runs recorded under `runs_root`.
pub fn recorded_run_names(runs_root: &Path) -> Vec<String> {
    list_runs(runs_root)
        .iter()
        .filter_map(|r| r.status().ok().map(|s| s.name))
        .collect()
}

/// The newest finished run called `name`, for `init_from = "run:NAME"`.
pub fn latest_done_run(runs_root: &Path, name: &str) -> Option<RunDir> {
    list_runs(runs_root)
        .into_iter()
        .filter_map(|r| r.status().ok().map(|s| (r, s)))
        .filter(|(_, s)| s.name == name && s.state == RunState::Done)
        .max_by(|(_, a), (_, b)| a.updated_at.total_cmp(&b.updated_at))
        .map(|(r, _)| r)
}
