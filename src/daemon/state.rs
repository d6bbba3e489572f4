//! `runs/.daemon/state.json`: what the daemon must remember across restarts
//! (queue order, priorities, the config contents already enqueued, the
//! workers it started). Replaced atomically on every change.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueState {
    /// Run ids waiting to start, in order (priorities reorder them at start).
    pub queue: Vec<String>,
    /// Run id -> priority; higher starts first, absent means 0.
    pub priorities: BTreeMap<String, i32>,
    /// Config file name -> the content last enqueued from it.
    pub files: BTreeMap<String, FileEntry>,
    /// `file:hash` of every config content ever enqueued.
    pub enqueued: BTreeSet<String>,
    /// Run id -> the worker started for it (for adoption after a restart).
    pub workers: BTreeMap<String, WorkerRecord>,
    /// Run id -> its Slurm job (submitted, not yet seen to end).
    pub jobs: BTreeMap<String, JobRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub hash: String,
    pub run_id: String,
}

/// Which device slot a worker holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    Cpu,
    Gpu(usize),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRecord {
    pub pid: u32,
    pub slot: Slot,
}

/// A run's Slurm job, as the daemon tracks it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: String,
    /// What the daemon asked of it, so its end is read right.
    #[serde(default)]
    pub requested: Option<JobRequest>,
    /// Unix seconds of the checkpoint-and-stop signal sent for a cancel.
    #[serde(default)]
    pub cancel_sent_at: Option<f64>,
}

/// A request the daemon made of a Slurm job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobRequest {
    /// Checkpoint and end cancelled.
    Cancel,
    /// End at once, no checkpoint (`cancel --now`).
    Kill,
    /// Checkpoint and end paused, to be resubmitted on resume.
    Pause,
}

impl QueueState {
    /// The saved state; an empty one when the file is missing. A damaged
    /// file is an error (the daemon refuses to start rather than forget
    /// which configs it already enqueued).
    pub fn load(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{}: damaged ({e}); move it aside to start with an empty queue",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        crate::store::write_atomic(path, text.as_bytes())
    }

    pub fn priority(&self, id: &str) -> i32 {
        self.priorities.get(id).copied().unwrap_or(0)
    }

    /// Queued ids in the order they may start: higher priority first, then
    /// queue order.
    pub fn start_order(&self) -> Vec<String> {
        let mut order: Vec<(usize, &String)> = self.queue.iter().enumerate().collect();
        order.sort_by_key(|(i, id)| (-self.priority(id), *i));
        order.into_iter().map(|(_, id)| id.clone()).collect()
    }
}

/// FNV-1a, 64 bits, as hex: a stable content hash for config files (not a
/// security measure).
pub fn content_hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        assert_eq!(content_hash(b""), "cbf29ce484222325");
        assert_eq!(content_hash(b"a"), "af63dc4c8601ec8c");
        assert_eq!(content_hash(b"foobar"), "85944171f73967e8");
    }

    #[test]
    fn priority_outranks_queue_order() {
        let mut s = QueueState {
            queue: vec!["a".into(), "b".into(), "c".into()],
            ..Default::default()
        };
        assert_eq!(s.start_order(), ["a", "b", "c"]);
        s.priorities.insert("c".into(), 5);
        s.priorities.insert("a".into(), -1);
        assert_eq!(s.start_order(), ["c", "b", "a"]);
    }
}
