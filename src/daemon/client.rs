//! Talking to the daemon: connect (starting it detached when absent), send
//! requests, read replies and streams.

use super::Paths;
use super::protocol::{
    Envelope, FrameError, MAX_REPLY, PROTOCOL_VERSION, Reply, Request, write_frame,
};
use serde_json::value::RawValue;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the daemon at {socket}: {source}")]
    Connect {
        socket: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the daemon: {0}")]
    Start(String),
    #[error("daemon connection: {0}")]
    Frame(#[from] FrameError),
    #[error("daemon sent an unreadable reply: {0}")]
    Reply(#[from] serde_json::Error),
}

pub struct Client {
    stream: UnixStream,
    /// Bytes of a frame header read before a timeout.
    header: Vec<u8>,
}

impl Client {
    /// Connect to the running daemon of `paths`.
    pub fn connect(paths: &Paths) -> Result<Self, ClientError> {
        let socket = paths.socket();
        UnixStream::connect(&socket)
            .map(|stream| Self {
                stream,
                header: Vec::new(),
            })
            .map_err(|source| ClientError::Connect {
                socket: socket.display().to_string(),
                source,
            })
    }

    /// Connect, first starting the daemon (detached) when none answers.
    pub fn connect_or_start(paths: &Paths) -> Result<Self, ClientError> {
        if let Ok(c) = Self::connect(paths) {
            return Ok(c);
        }
        start_detached(paths)?;
        Self::connect(paths)
    }

    pub fn send(&mut self, request: Request) -> Result<(), ClientError> {
        let envelope = Envelope {
            v: PROTOCOL_VERSION,
            request,
        };
        write_frame(&mut self.stream, &envelope)?;
        Ok(())
    }

    /// The next reply or stream message; `timeout` None waits for ever.
    /// A timeout only ever interrupts the wait for a frame to begin: once
    /// its header has come, the frame is read whole, so a slow link never
    /// leaves the stream out of step.
    pub fn next(&mut self, timeout: Option<Duration>) -> Result<Reply, ClientError> {
        use std::io::Read;
        self.stream
            .set_read_timeout(timeout)
            .map_err(FrameError::Io)?;
        while self.header.len() < 4 {
            let mut byte = [0u8; 4];
            let want = 4 - self.header.len();
            match self.stream.read(&mut byte[..want]) {
                Ok(0) => return Err(FrameError::Closed.into()),
                Ok(n) => self.header.extend_from_slice(&byte[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(FrameError::Io(e).into()),
            }
        }
        let mut len = [0u8; 4];
        len.copy_from_slice(&self.header);
        self.header.clear();
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_REPLY {
            return Err(FrameError::TooLarge {
                len,
                limit: MAX_REPLY,
            }
            .into());
        }
        self.stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(FrameError::Io)?;
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body).map_err(FrameError::Io)?;
        parse_reply(&body)
    }

    /// Send `request` and wait for its one reply.
    pub fn request(&mut self, request: Request) -> Result<Reply, ClientError> {
        self.send(request)?;
        self.next(Some(Duration::from_secs(120)))
    }
}

/// An `events` frame, read without parsing each event.
#[derive(serde::Deserialize)]
struct EventsFrame<'a> {
    run: String,
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

/// Decode a reply frame. `events` frames are read directly (serde cannot
/// keep raw JSON inside an internally tagged enum).
pub fn parse_reply(body: &[u8]) -> Result<Reply, ClientError> {
    if body.starts_with(br#"{"reply":"events""#) {
        let frame: EventsFrame<'_> = serde_json::from_slice(body)?;
        return Ok(Reply::Events {
            run: frame.run,
            events: frame.events.into_iter().map(RawValue::to_owned).collect(),
        });
    }
    Ok(serde_json::from_slice(body)?)
}

/// Start `scintigan daemon --foreground` for `paths` in a new session (so no
/// terminal hang-up reaches it), with no terminal I/O, and wait until its
/// socket answers.
pub fn start_detached(paths: &Paths) -> Result<u32, ClientError> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| ClientError::Start(e.to_string()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--runs-dir")
        .arg(&paths.runs)
        .arg("--configs-dir")
        .arg(&paths.configs)
        .arg("daemon")
        .arg("--foreground")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| ClientError::Start(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    // A daemon that was just killed may hold its lock for a moment while
    // its last threads exit: a new one then exits at once (status 0,
    // "already running") with no socket to answer. Try again for a while.
    let lock_retry_until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if UnixStream::connect(paths.socket()).is_ok() {
            // Its stderr pipe is dropped here; the daemon logs to daemon.log.
            return Ok(child.id());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut text = String::new();
            if let Some(mut err) = child.stderr.take() {
                use std::io::Read;
                let _ = err.read_to_string(&mut text);
            }
            // Another client may have started one at the same moment.
            if UnixStream::connect(paths.socket()).is_ok() {
                return Ok(paths.recorded_pid().unwrap_or(0));
            }
            if status.success() {
                if Instant::now() < lock_retry_until {
                    std::thread::sleep(Duration::from_millis(100));
                    child = cmd.spawn().map_err(|e| ClientError::Start(e.to_string()))?;
                    continue;
                }
                return Err(ClientError::Start(format!(
                    "another process holds {} (pid file says {}) but nothing answers on {}; stop it, or remove the lock once it is gone",
                    paths.lock_file().display(),
                    paths
                        .recorded_pid()
                        .map_or_else(|| "nothing".to_string(), |p| p.to_string()),
                    paths.socket().display()
                )));
            }
            return Err(ClientError::Start(format!(
                "it exited ({status}): {}",
                text.trim()
            )));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(ClientError::Start(format!(
        "no answer on {} within 20 s; see {}",
        paths.socket().display(),
        paths.log_file().display()
    )))
}
