//! The control protocol on `runs/.daemon/control.sock`.
//!
//! A message is a frame: a 4-byte big-endian length, then that many bytes of
//! UTF-8 JSON. Every request carries the protocol version `v`; a request with
//! another version, malformed JSON or a frame over [`MAX_REQUEST`] bytes gets
//! an [`Reply::Error`] and the connection is closed. Streams (`subscribe`,
//! `logs` with `follow`) take over their connection until the client leaves.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::io::{self, Read, Write};

pub const PROTOCOL_VERSION: u32 = 1;
/// Largest request frame the daemon reads (bytes).
pub const MAX_REQUEST: usize = 1 << 20;
/// Largest reply frame a client reads (bytes).
pub const MAX_REPLY: usize = 256 << 20;

/// A request as sent: `{"v": 1, "cmd": "pause", "run": "...", ...}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    #[serde(flatten)]
    pub request: Request,
}

/// Where `move` puts a queued run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum MoveTo {
    Up,
    Down,
    Top,
    Bottom,
}

/// A run is named by its id (the run directory's name), a unique prefix of
/// one, or its config name (the newest run of that name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Every run, the queue order and the invalid config files.
    List,
    /// The run's events from the first, then live ones as they come.
    Subscribe {
        run: String,
    },
    /// Hold at the next step boundary; with `release`, checkpoint and exit
    /// so the device is free, to resume later from that checkpoint.
    Pause {
        run: String,
        release: bool,
    },
    Resume {
        run: String,
    },
    /// Checkpoint and stop; with `now`, kill the worker at once.
    Cancel {
        run: String,
        now: bool,
    },
    Move {
        run: String,
        to: MoveTo,
    },
    /// Higher starts first; default 0.
    Priority {
        run: String,
        priority: i32,
    },
    /// Queue a failed or cancelled run again; it continues from its last
    /// checkpoint.
    Retry {
        run: String,
    },
    /// The last `lines` lines of `worker.log`, then (with `follow`) new text.
    Logs {
        run: String,
        lines: usize,
        follow: bool,
    },
    /// Write `text` as `configs/<file_name>` (atomically), to be queued.
    Submit {
        file_name: String,
        text: String,
    },
    /// Stop the daemon; with `stop_runs`, checkpoint and stop the workers
    /// first (they resume on `scintigan resume`).
    Shutdown {
        stop_runs: bool,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Ok {
        message: String,
    },
    Error {
        message: String,
    },
    List(Snapshot),
    /// Whole lines of `events.jsonl`, in order.
    Events {
        run: String,
        events: Vec<Box<RawValue>>,
    },
    /// Everything recorded so far has been sent; what follows is live.
    CaughtUp {
        run: String,
    },
    /// The run's event log was rewritten (a resume dropped events after its
    /// checkpoint): forget what was received; the history follows again.
    Reset {
        run: String,
    },
    /// Text of `worker.log`.
    Log {
        run: String,
        text: String,
    },
}

/// What `list` returns.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub daemon_pid: u32,
    pub runs_dir: String,
    pub configs_dir: String,
    /// Every run, queued ones first in start order, then the others by id.
    pub runs: Vec<RunInfo>,
    pub invalid_configs: Vec<InvalidConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub id: String,
    pub name: String,
    /// queued, running, paused, done, failed or cancelled.
    pub state: String,
    /// 1-based place in the start order, for queued runs.
    pub position: Option<usize>,
    pub priority: i32,
    /// Why a queued run does not start (a dependency), or why a run stopped.
    pub reason: Option<String>,
    /// A running worker whose heartbeat is older than the daemon's limit.
    pub stalled: bool,
    pub pid: Option<u32>,
    pub device: Option<String>,
    pub stage: Option<String>,
    pub epoch: u64,
    pub step: u64,
    /// Steps of the current stage in all (0: unknown yet); `step` of it is
    /// at most a few seconds old while the run is live.
    #[serde(default)]
    pub stage_steps: u64,
    pub retries: u32,
    pub config_file: Option<String>,
    pub created_at: f64,
    pub updated_at: f64,
    pub heartbeat: Option<f64>,
    /// `local` or `slurm`.
    #[serde(default)]
    pub executor: Option<String>,
    /// Slurm job id of its latest submission.
    #[serde(default)]
    pub job_id: Option<String>,
    /// Node(s) Slurm runs it on.
    #[serde(default)]
    pub node: Option<String>,
    /// Slurm's state of the job while the daemon follows it (PENDING, ...).
    #[serde(default)]
    pub job_state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvalidConfig {
    pub file: String,
    /// One `file:line:col: what; expected ...` line per error.
    pub errors: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("message of {len} bytes is over the limit of {limit} bytes")]
    TooLarge { len: usize, limit: usize },
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("malformed message: {0}")]
    Json(#[from] serde_json::Error),
}

/// The frame holding `body`.
pub fn encode(body: &impl Serialize) -> Result<Vec<u8>, serde_json::Error> {
    let json = serde_json::to_vec(body)?;
    let mut frame = Vec::with_capacity(json.len() + 4);
    frame.extend_from_slice(&(json.len() as u32).to_be_bytes());
    frame.extend_from_slice(&json);
    Ok(frame)
}

/// Read one frame's body (blocking).
pub fn read_frame(reader: &mut impl Read, limit: usize) -> Result<Vec<u8>, FrameError> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > limit {
        return Err(FrameError::TooLarge { len, limit });
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    Ok(body)
}

/// Write `body` as one frame (blocking).
pub fn write_frame(writer: &mut impl Write, body: &impl Serialize) -> Result<(), FrameError> {
    writer.write_all(&encode(body)?)?;
    writer.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_with_their_version() {
        let env = Envelope {
            v: PROTOCOL_VERSION,
            request: Request::Pause {
                run: "a".into(),
                release: true,
            },
        };
        let frame = encode(&env).unwrap();
        let body = read_frame(&mut frame.as_slice(), MAX_REQUEST).unwrap();
        let text = String::from_utf8(body.clone()).unwrap();
        assert_eq!(text, r#"{"v":1,"cmd":"pause","run":"a","release":true}"#);
        let back: Envelope = serde_json::from_slice(&body).unwrap();
        assert!(matches!(back.request, Request::Pause { release: true, .. }));
    }

    #[test]
    fn oversized_and_truncated_frames_are_errors() {
        let mut big = (u32::MAX).to_be_bytes().to_vec();
        big.extend_from_slice(b"xx");
        assert!(matches!(
            read_frame(&mut big.as_slice(), MAX_REQUEST),
            Err(FrameError::TooLarge { .. })
        ));
        let half = [0u8, 0, 0, 10, b'{'];
        assert!(matches!(
            read_frame(&mut half.as_slice(), MAX_REQUEST),
            Err(FrameError::Io(_))
        ));
        assert!(matches!(
            read_frame(&mut [].as_slice(), MAX_REQUEST),
            Err(FrameError::Closed)
        ));
    }
}
