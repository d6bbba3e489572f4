//! `status.json`: where a run stands, replaced atomically on every change.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Queued,
    Running,
    Paused,
    Done,
    Failed,
    Cancelled,
}

impl RunState {
    /// Done, failed or cancelled: states a run does not leave by itself.
    pub fn has_ended(self) -> bool {
        matches!(
            self,
            RunState::Done | RunState::Failed | RunState::Cancelled
        )
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Done => "done",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        };
        f.write_str(text)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub state: RunState,
    /// The config's run name (several runs may share one).
    pub name: String,
    /// The worker's process id while it runs.
    pub pid: Option<u32>,
    /// Device the worker trains on, e.g. `cpu` or `cuda:0`.
    pub device: Option<String>,
    pub stage: Option<String>,
    pub epoch: u64,
    pub step: u64,
    /// Stages finished so far, in order.
    #[serde(default)]
    pub completed_stages: Vec<String>,
    /// Unix seconds.
    pub created_at: f64,
    pub updated_at: f64,
    /// Why the run stopped, when it did not finish.
    pub exit_reason: Option<String>,
    /// Unix seconds of the live worker's last sign of life (it rewrites this
    /// file at least every few seconds while it runs).
    #[serde(default)]
    pub heartbeat: Option<f64>,
    /// Times the daemon restarted a worker that died.
    #[serde(default)]
    pub retries: u32,
    /// Optimizer steps of the current stage in all (0 until it starts).
    #[serde(default)]
    pub stage_steps: u64,
    /// The Slurm job id of the run's latest submission, when it ran
    /// through Slurm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job: Option<String>,
}

/// Serialises this process's writes of status files, so the worker's
/// heartbeat thread never interleaves with its main thread.
static WRITE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Status {
    pub fn new(name: &str) -> Self {
        let now = super::time::unix_now();
        Self {
            state: RunState::Queued,
            name: name.to_string(),
            pid: None,
            device: None,
            stage: None,
            epoch: 0,
            step: 0,
            completed_stages: Vec::new(),
            created_at: now,
            updated_at: now,
            exit_reason: None,
            heartbeat: None,
            retries: 0,
            stage_steps: 0,
            slurm_job: None,
        }
    }

    pub fn read(path: &Path) -> Result<Self, super::StoreError> {
        let text = std::fs::read_to_string(path).map_err(|e| super::StoreError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| super::StoreError::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    pub fn write(&mut self, path: &Path) -> Result<(), super::StoreError> {
        let _guard = WRITE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        self.write_locked(path)
    }

    /// Refresh the heartbeat of the run at `path` if this process is its
    /// worker; read and write happen under one lock so no other change of
    /// this process is undone.
    /// With `progress` = (epoch, step, stage_steps) of the stage running,
    /// also record where it is (between checkpoints).
    pub fn touch_heartbeat(
        path: &Path,
        progress: Option<(u64, u64, u64)>,
    ) -> Result<(), super::StoreError> {
        let _guard = WRITE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut status = Self::read(path)?;
        if status.pid == Some(std::process::id()) {
            if let Some((epoch, step, total)) = progress {
                (status.epoch, status.step, status.stage_steps) = (epoch, step, total);
            }
            status.write_locked(path)?;
        }
        Ok(())
    }

    fn write_locked(&mut self, path: &Path) -> Result<(), super::StoreError> {
        self.updated_at = super::time::unix_now();
        if self.pid == Some(std::process::id()) {
            self.heartbeat = Some(self.updated_at);
        }
        let mut text =
            serde_json::to_string_pretty(self).map_err(|e| super::StoreError::Corrupt {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        text.push('\n');
        super::atomic::write_atomic(path, text.as_bytes())
            .map_err(|e| super::StoreError::io(path, e))
    }
}
