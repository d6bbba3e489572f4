//! `checkpoints/`: one folder per checkpoint, written whole or not at all.
//!
//! A checkpoint folder `<stage>-eEEEE-sSSSSSS/` holds `weights.safetensors`
//! (models and optimizer state) and `state.json` ([`CheckpointState`]). It is
//! written under a hidden temp name and renamed into place; then the text
//! file `latest` is replaced atomically with the folder's name.

use super::{StoreError, atomic, space};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where training stood when a checkpoint was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    pub stage: String,
    /// 1-based epoch the step belongs to.
    pub epoch: u64,
    /// Optimizer steps taken in the stage so far.
    pub step: u64,
    /// Steps of `epoch` already taken (equal to the epoch's length at its end).
    pub step_in_epoch: u64,
    /// The stage's last checkpoint: its final weights.
    pub stage_complete: bool,
    /// Unix seconds.
    pub written_at: f64,
}

const STATE_FILE: &str = "state.json";
const LATEST_FILE: &str = "latest";

/// What `checkpoints/best/<stage>/best.json` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestRecord {
    pub epoch: u64,
    pub step: u64,
    /// Test-split accuracy of these weights.
    pub accuracy: f64,
}

/// Create `dir` afresh with the weights file (written by `write_weights`,
/// then fsynced) and `json_name` holding `record`.
fn fill_folder(
    dir: &Path,
    write_weights: impl FnOnce(&Path) -> Result<(), String>,
    json_name: &str,
    record: &impl Serialize,
) -> Result<(), StoreError> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    let weights = dir.join(CheckpointDir::WEIGHTS);
    write_weights(&weights).map_err(|message| StoreError::Corrupt {
        path: weights.clone(),
        message: format!("cannot write weights: {message}"),
    })?;
    std::fs::File::open(&weights)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::io(&weights, e))?;
    let json = serde_json::to_vec_pretty(record).map_err(|e| StoreError::Corrupt {
        path: dir.join(json_name),
        message: e.to_string(),
    })?;
    atomic::write_atomic(&dir.join(json_name), &json).map_err(|e| StoreError::io(dir, e))
}

/// [`fill_folder`] into the temp folder `tmp` inside `dir`, after checking
/// that `dir`'s disk has room for `bytes`. On any failure the temp folder
/// is removed; one that ran out of space part-way (ENOSPC, or the disk
/// found all but full before the clean-up, whatever words the writer used)
/// becomes [`StoreError::DiskFull`] with the space free after the clean-up.
fn fill_or_clean(
    dir: &Path,
    tmp: &Path,
    bytes: u64,
    write_weights: impl FnOnce(&Path) -> Result<(), String>,
    json_name: &str,
    record: &impl Serialize,
) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    space::ensure_space(dir, bytes)?;
    let result = fill_folder(tmp, write_weights, json_name, record);
    if let Err(e) = result {
        let out_of_space = space::is_out_of_space(&e)
            || space::disk_space(dir).is_some_and(|(free, _)| free < space::with_margin(0));
        let _ = std::fs::remove_dir_all(tmp);
        if out_of_space {
            let free = space::disk_space(dir).map_or(0, |(free, _)| free);
            return Err(StoreError::DiskFull {
                dir: dir.to_path_buf(),
                free,
                needed: space::with_margin(bytes).max(free + 1),
            });
        }
        return Err(e);
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct CheckpointDir {
    dir: PathBuf,
}

impl CheckpointDir {
    /// The safetensors file inside each checkpoint folder.
    pub const WEIGHTS: &'static str = "weights.safetensors";

    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Folder name for a checkpoint at `step` of `epoch` in `stage`.
    pub fn name_for(stage: &str, epoch: u64, step: u64) -> String {
        format!("{stage}-e{epoch:04}-s{step:07}")
    }

    /// Write a checkpoint of about `bytes` (its tensors' size):
    /// `write_weights` receives the path of the safetensors file to create.
    /// Returns the finished folder.
    ///
    /// Refused with [`StoreError::DiskFull`] before anything is written when
    /// the disk lacks the space; a write that fails part-way leaves no temp
    /// folder behind, and the previous checkpoints and `latest` untouched.
    pub fn write(
        &self,
        state: &CheckpointState,
        bytes: u64,
        write_weights: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<PathBuf, StoreError> {
        let name = Self::name_for(&state.stage, state.epoch, state.step);
        let final_dir = self.dir.join(&name);
        let tmp = self.dir.join(format!(".tmp-{name}-{}", std::process::id()));
        fill_or_clean(&self.dir, &tmp, bytes, write_weights, STATE_FILE, state)?;
        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir).map_err(|e| StoreError::io(&final_dir, e))?;
        }
        std::fs::rename(&tmp, &final_dir).map_err(|e| StoreError::io(&final_dir, e))?;
        atomic::sync_dir(&self.dir).map_err(|e| StoreError::io(&self.dir, e))?;
        let latest = self.dir.join(LATEST_FILE);
        atomic::write_atomic(&latest, format!("{name}\n").as_bytes())
            .map_err(|e| StoreError::io(&latest, e))?;
        Ok(final_dir)
    }

    /// Where the best weights of `stage` live: `checkpoints/best/<stage>/`
    /// (`weights.safetensors` and `best.json`). Not listed, pruned or
    /// resumed from like the others.
    pub fn best_dir(&self, stage: &str) -> PathBuf {
        self.dir.join("best").join(stage)
    }

    /// Replace the best weights of `stage`: written beside, then swapped in.
    pub fn write_best(
        &self,
        stage: &str,
        record: &BestRecord,
        bytes: u64,
        write_weights: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<PathBuf, StoreError> {
        let parent = self.dir.join("best");
        std::fs::create_dir_all(&parent).map_err(|e| StoreError::io(&parent, e))?;
        let pid = std::process::id();
        let tmp = parent.join(format!(".tmp-{stage}-{pid}"));
        fill_or_clean(&parent, &tmp, bytes, write_weights, "best.json", record)?;
        let target = self.best_dir(stage);
        let old = parent.join(format!(".old-{stage}-{pid}"));
        if target.exists() {
            std::fs::rename(&target, &old).map_err(|e| StoreError::io(&target, e))?;
        }
        std::fs::rename(&tmp, &target).map_err(|e| StoreError::io(&target, e))?;
        let _ = std::fs::remove_dir_all(&old);
        atomic::sync_dir(&parent).map_err(|e| StoreError::io(&parent, e))?;
        Ok(target)
    }

    /// The record of the best weights of `stage`, if any were written.
    /// The stage's best record: `None` before its first evaluation, an
    /// error when `best.json` is there but unreadable or damaged.
    pub fn read_best(&self, stage: &str) -> Result<Option<BestRecord>, StoreError> {
        let path = self.best_dir(stage).join("best.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                path,
                message: format!(
                    "{e}; the best weights beside it are kept: fix the file, or remove it to count the best accuracy anew"
                ),
            })
    }

    /// The newest checkpoint, if any, with its state.
    pub fn latest(&self) -> Result<Option<(PathBuf, CheckpointState)>, StoreError> {
        let latest = self.dir.join(LATEST_FILE);
        let name = match std::fs::read_to_string(&latest) {
            Ok(text) => text.trim().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(&latest, e)),
        };
        let dir = self.dir.join(&name);
        Ok(Some((dir.clone(), Self::read_state(&dir)?)))
    }

    pub fn read_state(dir: &Path) -> Result<CheckpointState, StoreError> {
        let path = dir.join(STATE_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| StoreError::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            path,
            message: e.to_string(),
        })
    }

    /// Every complete checkpoint folder with its state, oldest first.
    pub fn list(&self) -> Vec<(PathBuf, CheckpointState)> {
        let mut all: Vec<(PathBuf, CheckpointState)> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.is_dir()
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .filter_map(|p| Self::read_state(&p).ok().map(|s| (p, s)))
            .collect();
        all.sort_by(|a, b| a.1.written_at.total_cmp(&b.1.written_at));
        all
    }

    /// The final checkpoint of `stage`, if the stage finished.
    pub fn stage_final(&self, stage: &str) -> Option<PathBuf> {
        self.list()
            .into_iter()
            .rev()
            .find(|(_, s)| s.stage == stage && s.stage_complete)
            .map(|(p, _)| p)
    }

    /// Delete older checkpoints, keeping the `keep` newest and every stage's
    /// final one. Leftover temp folders of dead writers go too.
    pub fn prune(&self, keep: usize) -> Result<(), StoreError> {
        let all = self.list();
        let cut = all.len().saturating_sub(keep);
        for (path, state) in all.into_iter().take(cut) {
            if !state.stage_complete {
                std::fs::remove_dir_all(&path).map_err(|e| StoreError::io(&path, e))?;
            }
        }
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let mine = name.ends_with(&format!("-{}", std::process::id()));
            if name.starts_with(".tmp-") && !mine {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_that_runs_out_of_space_leaves_no_temp_and_keeps_the_last_checkpoint() {
        let dir = std::env::temp_dir().join(format!("scintigan-enospc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let checkpoints = CheckpointDir::new(dir.clone());
        let state = |step| CheckpointState {
            stage: "gan".into(),
            epoch: 1,
            step,
            step_in_epoch: step,
            stage_complete: false,
            written_at: 0.0,
        };
        checkpoints
            .write(&state(1), 4, |p| {
                std::fs::write(p, b"good").map_err(|e| e.to_string())
            })
            .unwrap();
        // The writer got half-way, then the disk filled (in its own words).
        let err = checkpoints
            .write(&state(2), 4, |p| {
                std::fs::write(p, b"ha").map_err(|e| e.to_string())?;
                Err("I/O error: No space left on device (os error 28)".into())
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::DiskFull { .. }), "{err}");
        assert!(err.to_string().starts_with("disk full: "), "{err}");
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.starts_with(".tmp-")), "{names:?}");
        let (_, latest) = checkpoints.latest().unwrap().expect("kept");
        assert_eq!(latest.step, 1);
        // Any other failure stays what it was, and is cleaned up too.
        let err = checkpoints
            .write(&state(3), 4, |_| Err("tensor on a lost device".into()))
            .unwrap_err();
        assert!(err.to_string().contains("tensor on a lost device"), "{err}");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            2,
            "the checkpoint and latest"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_damaged_best_record_is_an_error_not_a_fresh_start() {
        let dir = std::env::temp_dir().join(format!("scintigan-best-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let checkpoints = CheckpointDir::new(dir.clone());
        assert!(checkpoints.read_best("cls").unwrap().is_none(), "none yet");
        let record = BestRecord {
            epoch: 3,
            step: 30,
            accuracy: 0.75,
        };
        checkpoints
            .write_best("cls", &record, 7, |p| {
                std::fs::write(p, b"weights").map_err(|e| e.to_string())
            })
            .unwrap();
        let read = checkpoints.read_best("cls").unwrap().expect("written");
        assert_eq!(read.accuracy, 0.75);
        std::fs::write(
            checkpoints.best_dir("cls").join("best.json"),
            "{\"epoch\": 3,",
        )
        .unwrap();
        let err = checkpoints.read_best("cls").unwrap_err().to_string();
        assert!(
            err.contains("best.json: damaged")
                && err.contains("the best weights beside it are kept"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
