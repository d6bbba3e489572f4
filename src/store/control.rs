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
    /// The request in `path`: none (all false) when there is no file; an
    /// error naming the file when it is there but cannot be read or is not
    /// a request (the caller keeps the last request it understood).
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
        };
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}: not a control request ({e}); expected e.g. {{\"pause\": true}}",
                path.display()
            )
        })
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
    fn a_missing_file_is_no_request_and_a_damaged_one_an_error() {
        let dir = std::env::temp_dir().join(format!("scintigan-control-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("control.json");
        assert_eq!(ControlRequest::read(&path), Ok(ControlRequest::default()));
        std::fs::write(&path, "{not json").unwrap();
        let err = ControlRequest::read(&path).unwrap_err();
        assert!(err.contains("control.json: not a control request"), "{err}");
        let req = ControlRequest {
            pause: true,
            release: true,
            cancel: false,
        };
        req.write(&path).unwrap();
        assert_eq!(ControlRequest::read(&path), Ok(req));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
