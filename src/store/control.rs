//! `control.json`: what the daemon asks of a running worker.
//!
//! The daemon replaces the file atomically; the worker polls it a few times a
//! second and obeys at its next step boundary. A file is used rather than a
//! pipe so that a worker adopted by a restarted daemon, or one whose daemon
//! is gone, still sees the last request.

use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRequest {
    /// Hold at the next step boundary until cleared.
    #[serde(default)]
    pub pause: bool,
    /// With `pause`: write a checkpoint and exit, freeing the device; the
    /// run is resumed later from that checkpoint.
    #[serde(default)]
    pub release: bool,
    /// Write a checkpoint and stop; the run ends cancelled.
    #[serde(default)]
    pub cancel: bool,
}

impl ControlRequest {
    /// The request in `path`; none (all false) when the file is missing or
    /// unreadable.
    pub fn read(path: &Path) -> Self {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string(self).map_err(std::io::Error::other)?;
        super::write_atomic(path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_damaged_file_means_no_request() {
        let dir = std::env::temp_dir().join(format!("scintigan-control-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("control.json");
        assert_eq!(ControlRequest::read(&path), ControlRequest::default());
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(ControlRequest::read(&path), ControlRequest::default());
        let req = ControlRequest {
            pause: true,
            release: true,
            cancel: false,
        };
        req.write(&path).unwrap();
        assert_eq!(ControlRequest::read(&path), req);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
