//! The daemon's event loop: the executor thread (config scans, worker
//! reaping and starting), the file watcher, and the control socket.

use super::Paths;
use super::core::Core;
use super::protocol::{Envelope, FrameError, MAX_REQUEST, PROTOCOL_VERSION, Reply, Request};
use super::settings::Settings;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// How long a started frame may take to arrive in full.
const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a stream waits before looking at its file again.
const STREAM_POLL_MAX: Duration = Duration::from_millis(200);
/// Lines per `events` frame at most.
const EVENTS_PER_FRAME: usize = 8192;

struct Shared {
    core: Mutex<Core>,
    wake: Mutex<mpsc::Sender<()>>,
    stopping: AtomicBool,
    /// With the stop: checkpoint and stop the workers first.
    stop_runs: AtomicBool,
}

impl Shared {
    fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn wake(&self) {
        let _ = self.wake.lock().unwrap_or_else(|e| e.into_inner()).send(());
    }
}

pub fn serve(paths: Paths, settings: Settings) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut core = Core::new(paths.clone(), settings).map_err(anyhow::Error::msg)?;
    core.adopt();
    let (wake_tx, wake_rx) = mpsc::channel::<()>();
    let shared = Arc::new(Shared {
        core: Mutex::new(core),
        wake: Mutex::new(wake_tx.clone()),
        stopping: AtomicBool::new(false),
        stop_runs: AtomicBool::new(false),
    });
    // Terminal hang-ups never reach a daemon; SIGTERM and SIGINT stop it
    // (leaving the workers running).
    // SAFETY: setting a signal disposition to "ignore".
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&term))?;
    }

    let rescan = Arc::new(AtomicBool::new(true));
    let _watcher = watch_configs(&paths.configs, Arc::clone(&rescan), wake_tx.clone());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let socket = paths.socket();
    let _ = std::fs::remove_file(&socket);
    let listener = {
        let _guard = runtime.enter();
        tokio::net::UnixListener::bind(&socket).with_context(|| {
            format!(
                "cannot listen on {} (socket paths must be under 108 bytes; use a shorter --runs-dir path)",
                socket.display()
            )
        })?
    };
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
    tracing::info!(
        "daemon {} serving {} (configs {})",
        std::process::id(),
        paths.runs.display(),
        paths.configs.display()
    );
    let accept_shared = Arc::clone(&shared);
    runtime.spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let shared = Arc::clone(&accept_shared);
                    tokio::spawn(async move { connection(stream, shared).await });
                }
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });

    executor_loop(&shared, &wake_rx, &rescan, &term);

    if shared.stop_runs.load(Ordering::SeqCst) {
        shared.core().stop_all_runs();
        // Give the workers time to write their checkpoints.
        for _ in 0..1200 {
            let mut core = shared.core();
            core.tick();
            if core.live_workers() == 0 {
                break;
            }
            drop(core);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    tracing::info!("daemon {} stopping", std::process::id());
    runtime.shutdown_timeout(Duration::from_millis(200));
    Ok(())
}

/// Scan configs when told to (or every few seconds in case a change was
/// missed), reap and start workers; until a stop.
fn executor_loop(
    shared: &Shared,
    wake: &mpsc::Receiver<()>,
    rescan: &AtomicBool,
    term: &AtomicBool,
) {
    let mut settle_wait: Option<Duration> = None;
    let mut since_scan = std::time::Instant::now();
    loop {
        if term.load(Ordering::SeqCst) || shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let busy = {
            let mut core = shared.core();
            let due = settle_wait.is_some_and(|w| since_scan.elapsed() >= w)
                || since_scan.elapsed() >= Duration::from_secs(5);
            if rescan.swap(false, Ordering::SeqCst) || due {
                settle_wait = core.scan_configs();
                since_scan = std::time::Instant::now();
            }
            core.tick();
            core.busy()
        };
        let mut wait = if busy {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(1)
        };
        if let Some(w) = settle_wait {
            wait = wait.min(w.saturating_sub(since_scan.elapsed()));
        }
        match wake.recv_timeout(wait) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        // Let a burst of file events settle into one scan.
        if rescan.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
            while wake.try_recv().is_ok() {}
        }
    }
}

/// Watch `configs/` (top level) and flag a rescan on any change.
fn watch_configs(
    dir: &Path,
    rescan: Arc<AtomicBool>,
    wake: mpsc::Sender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let wake = Mutex::new(wake);
    let handler = move |res: notify::Result<notify::Event>| {
        // Reads (the daemon's own scans among them) change nothing.
        let changed = res.is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_)));
        if changed {
            rescan.store(true, Ordering::SeqCst);
            let _ = wake.lock().unwrap_or_else(|e| e.into_inner()).send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(
                "cannot watch {}: {e}; scanning every 5 s instead",
                dir.display()
            );
            return None;
        }
    };
    if let Err(e) = watcher.watch(dir, notify::RecursiveMode::NonRecursive) {
        tracing::warn!(
            "cannot watch {}: {e}; scanning every 5 s instead",
            dir.display()
        );
        return None;
    }
    Some(watcher)
}

async fn send(writer: &mut OwnedWriteHalf, reply: &Reply) -> Result<(), FrameError> {
    let frame = super::protocol::encode(reply)?;
    writer.write_all(&frame).await?;
    Ok(())
}

async fn send_error(writer: &mut OwnedWriteHalf, message: String) {
    let _ = send(writer, &Reply::Error { message }).await;
}

/// Read one request frame; `Ok(None)` when the client closed cleanly.
async fn read_request(reader: &mut OwnedReadHalf) -> Result<Option<Vec<u8>>, FrameError> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_REQUEST {
        return Err(FrameError::TooLarge {
            len,
            limit: MAX_REQUEST,
        });
    }
    let mut body = vec![0u8; len];
    match tokio::time::timeout(FRAME_TIMEOUT, reader.read_exact(&mut body)).await {
        Ok(Ok(_)) => Ok(Some(body)),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(FrameError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "a message did not arrive in full within 10 s",
        ))),
    }
}

async fn connection(stream: UnixStream, shared: Arc<Shared>) {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let peer = stream.peer_cred().map(|c| c.uid());
    let (mut reader, mut writer) = stream.into_split();
    match peer {
        Ok(uid) if uid == me => {}
        Ok(uid) => {
            tracing::warn!("refused a connection from uid {uid}");
            send_error(
                &mut writer,
                format!("permission denied: this daemon serves uid {me} only"),
            )
            .await;
            return;
        }
        Err(e) => {
            tracing::warn!("refused a connection without peer credentials: {e}");
            return;
        }
    }
    loop {
        let body = match read_request(&mut reader).await {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return,
            Err(e) => {
                tracing::warn!("bad request: {e}");
                send_error(&mut writer, format!("bad request: {e}")).await;
                return;
            }
        };
        let envelope: Envelope = match serde_json::from_slice(&body) {
            Ok(e) => e,
            Err(e) => {
                let version = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("v").and_then(serde_json::Value::as_u64));
                let message = match version {
                    Some(v) if v != u64::from(PROTOCOL_VERSION) => format!(
                        "protocol version {v} is not supported; this daemon speaks version {PROTOCOL_VERSION} (restart it with the same scintigan build)"
                    ),
                    _ => format!("malformed request: {e}"),
                };
                tracing::warn!("{message}");
                send_error(&mut writer, message).await;
                return;
            }
        };
        if envelope.v != PROTOCOL_VERSION {
            send_error(
                &mut writer,
                format!(
                    "protocol version {} is not supported; this daemon speaks version {PROTOCOL_VERSION}",
                    envelope.v
                ),
            )
            .await;
            return;
        }
        match envelope.request {
            Request::Subscribe { run } => {
                let dir = shared.core().resolve(&run);
                match dir {
                    Ok(dir) => stream_events(reader, writer, dir.id(), dir.events_path()).await,
                    Err(message) => send_error(&mut writer, message).await,
                }
                return;
            }
            Request::Logs { run, lines, follow } => {
                let dir = shared.core().resolve(&run);
                match dir {
                    Ok(dir) => {
                        stream_log(reader, writer, dir.id(), dir.log_path(), lines, follow).await
                    }
                    Err(message) => send_error(&mut writer, message).await,
                }
                return;
            }
            request => {
                let reply = handle(&shared, request);
                shared.wake();
                if send(&mut writer, &reply).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A request that gets one reply.
fn handle(shared: &Shared, request: Request) -> Reply {
    let result = {
        let mut core = shared.core();
        core.mark_changed();
        match request {
            Request::List => return Reply::List(core.snapshot()),
            Request::Pause { run, release } => core.pause(&run, release),
            Request::Resume { run } => core.resume(&run),
            Request::Cancel { run, now } => core.cancel(&run, now),
            Request::Move { run, to } => core.move_run(&run, to),
            Request::Priority { run, priority } => core.set_priority(&run, priority),
            Request::Retry { run } => core.retry(&run),
            Request::Submit { file_name, text } => core.submit(&file_name, &text),
            Request::Shutdown { stop_runs } => {
                shared.stop_runs.store(stop_runs, Ordering::SeqCst);
                shared.stopping.store(true, Ordering::SeqCst);
                Ok(if stop_runs {
                    "daemon stopping after its workers checkpoint and exit".to_string()
                } else {
                    "daemon stopping; workers go on and the next daemon adopts them".to_string()
                })
            }
            Request::Subscribe { .. } | Request::Logs { .. } => {
                Err("internal: streams are served elsewhere".into())
            }
        }
    };
    match result {
        Ok(message) => Reply::Ok { message },
        Err(message) => Reply::Error { message },
    }
}

/// A file followed from the start: reopened from scratch when it is
/// replaced (a resume rewrites `events.jsonl`) or shrinks.
struct Tail {
    path: PathBuf,
    file: Option<std::fs::File>,
    inode: u64,
    offset: u64,
    partial: Vec<u8>,
}

enum TailRead {
    Data(Vec<u8>),
    Nothing,
    Replaced,
}

impl Tail {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            file: None,
            inode: 0,
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// Complete lines appended since the last call (up to about 4 MiB).
    fn read(&mut self) -> TailRead {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return TailRead::Nothing;
        };
        if self.file.is_some() && (meta.ino() != self.inode || meta.len() < self.offset) {
            self.file = None;
            self.offset = 0;
            self.partial.clear();
            return TailRead::Replaced;
        }
        if self.file.is_none() {
            match std::fs::File::open(&self.path) {
                Ok(f) => {
                    self.inode = f.metadata().map(|m| m.ino()).unwrap_or(0);
                    self.file = Some(f);
                }
                Err(_) => return TailRead::Nothing,
            }
        }
        let Some(file) = self.file.as_mut() else {
            return TailRead::Nothing;
        };
        if meta.len() <= self.offset {
            return TailRead::Nothing;
        }
        let want = (meta.len() - self.offset).min(4 << 20) as usize;
        let mut buf = vec![0u8; want];
        let got = file
            .seek(SeekFrom::Start(self.offset))
            .and_then(|_| file.read(&mut buf))
            .unwrap_or(0);
        buf.truncate(got);
        self.offset += got as u64;
        self.partial.extend_from_slice(&buf);
        match self.partial.iter().rposition(|&b| b == b'\n') {
            Some(end) => {
                let rest = self.partial.split_off(end + 1);
                TailRead::Data(std::mem::replace(&mut self.partial, rest))
            }
            None => TailRead::Nothing,
        }
    }
}

/// Wait up to `wait` for the client to send anything or leave; true when
/// it left (or broke the protocol by sending while subscribed).
async fn client_left(reader: &mut (impl AsyncRead + Unpin), wait: Duration) -> bool {
    let mut byte = [0u8; 1];
    // Any read that completes (data, end of stream, error) ends the stream.
    tokio::time::timeout(wait, reader.read(&mut byte))
        .await
        .is_ok()
}

async fn stream_events(
    mut reader: OwnedReadHalf,
    mut writer: OwnedWriteHalf,
    run: String,
    path: PathBuf,
) {
    let mut tail = Tail::new(path);
    let mut caught_up = false;
    let mut idle = Duration::from_millis(5);
    loop {
        match tail.read() {
            TailRead::Replaced => {
                caught_up = false;
                if send(&mut writer, &Reply::Reset { run: run.clone() })
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
            TailRead::Data(bytes) => {
                idle = Duration::from_millis(5);
                let text = String::from_utf8_lossy(&bytes);
                let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
                for chunk in lines.chunks(EVENTS_PER_FRAME) {
                    let frame = events_frame(&run, chunk);
                    if writer.write_all(&frame).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            TailRead::Nothing => {}
        }
        if !caught_up {
            caught_up = true;
            if send(&mut writer, &Reply::CaughtUp { run: run.clone() })
                .await
                .is_err()
            {
                return;
            }
        }
        if client_left(&mut reader, idle).await {
            return;
        }
        idle = (idle * 2).min(STREAM_POLL_MAX);
    }
}

/// One `events` frame of whole JSON lines, built without re-serialising
/// them; a damaged line is left out.
fn events_frame(run: &str, lines: &[&str]) -> Vec<u8> {
    let run_json = serde_json::to_string(run).unwrap_or_else(|_| "\"\"".into());
    let mut body = format!("{{\"reply\":\"events\",\"run\":{run_json},\"events\":[").into_bytes();
    let mut first = true;
    for line in lines {
        if serde_json::from_str::<&serde_json::value::RawValue>(line).is_err() {
            continue;
        }
        if !first {
            body.push(b',');
        }
        first = false;
        body.extend_from_slice(line.as_bytes());
    }
    body.extend_from_slice(b"]}");
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

async fn stream_log(
    mut reader: OwnedReadHalf,
    mut writer: OwnedWriteHalf,
    run: String,
    path: PathBuf,
    lines: usize,
    follow: bool,
) {
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let mut head = all[start..].join("\n");
    if !head.is_empty() {
        head.push('\n');
    }
    if send(
        &mut writer,
        &Reply::Log {
            run: run.clone(),
            text: head,
        },
    )
    .await
    .is_err()
        || !follow
    {
        return;
    }
    let mut tail = Tail::new(path);
    tail.offset = text.len() as u64;
    tail.file = std::fs::File::open(&tail.path).ok();
    tail.inode = tail
        .file
        .as_ref()
        .and_then(|f| f.metadata().ok())
        .map_or(0, |m| m.ino());
    let mut idle = Duration::from_millis(20);
    loop {
        if let TailRead::Data(bytes) = tail.read() {
            idle = Duration::from_millis(20);
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if send(
                &mut writer,
                &Reply::Log {
                    run: run.clone(),
                    text,
                },
            )
            .await
            .is_err()
            {
                return;
            }
            continue;
        }
        if client_left(&mut reader, idle).await {
            return;
        }
        idle = (idle * 2).min(STREAM_POLL_MAX);
    }
}
