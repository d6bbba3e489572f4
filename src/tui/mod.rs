//! The dashboard: a client of the daemon. Its state is a fold over events
//! (history, then live) plus the daemon's run list; it redraws at most ten
//! times a second and only when something changed. `q` detaches; runs go on.

pub mod app;
mod draw;
pub mod export;
pub mod keys;
pub mod notify;
mod panes;
pub mod series;
pub mod settings;
pub mod state;
pub mod system;

pub use app::App;
pub use draw::draw;

use crate::daemon::Paths;
use crate::daemon::client::Client;
use crate::daemon::protocol::{Reply, Request, Snapshot};
use crate::store::EventRecord;
use anyhow::Context;
use app::Command;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Draw `app` once on an in-memory terminal (tests, benchmarks, captures).
pub fn render(app: &mut App, width: u16, height: u16) -> ratatui::buffer::Buffer {
    let backend = ratatui::backend::TestBackend::new(width, height);
    let mut terminal = match ratatui::Terminal::new(backend) {
        Ok(t) => t,
        Err(never) => match never {},
    };
    let _ = terminal.draw(|f| draw::draw(f, app));
    terminal.backend().buffer().clone()
}

/// A buffer as lines of text (styles dropped).
pub fn buffer_text(buffer: &ratatui::buffer::Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut line = String::new();
        for x in 0..area.width {
            line.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

enum Msg {
    Snapshot(Snapshot),
    Lost(String),
    Events(String, Vec<EventRecord>),
    Reset(String),
    CaughtUp(String),
    SubEnded(String),
}

/// Poll the daemon's run list twice a second.
fn poll_list(paths: Paths, tx: mpsc::Sender<Msg>, quit: Arc<AtomicBool>) {
    let mut client: Option<Client> = None;
    while !quit.load(Ordering::SeqCst) {
        if client.is_none() {
            client = Client::connect(&paths).ok();
        }
        let msg = match client.as_mut().map(|c| c.request(Request::List)) {
            Some(Ok(Reply::List(s))) => Msg::Snapshot(s),
            Some(Ok(other)) => Msg::Lost(format!("unexpected reply {other:?}")),
            Some(Err(e)) => {
                client = None;
                Msg::Lost(e.to_string())
            }
            None => Msg::Lost(format!("no daemon at {}", paths.socket().display())),
        };
        if tx.send(msg).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Stream one run's events until cancelled or the connection ends.
fn subscribe(paths: Paths, run: String, tx: mpsc::Sender<Msg>, cancel: Arc<AtomicBool>) {
    let end = |tx: &mpsc::Sender<Msg>| {
        std::thread::sleep(Duration::from_millis(500));
        let _ = tx.send(Msg::SubEnded(run.clone()));
    };
    let Ok(mut client) = Client::connect(&paths) else {
        return end(&tx);
    };
    if client
        .send(Request::Subscribe { run: run.clone() })
        .is_err()
    {
        return end(&tx);
    }
    while !cancel.load(Ordering::SeqCst) {
        let msg = match client.next(Some(Duration::from_millis(300))) {
            Ok(Reply::Events { events, .. }) => Msg::Events(
                run.clone(),
                events
                    .iter()
                    .filter_map(|e| serde_json::from_str(e.get()).ok())
                    .collect(),
            ),
            Ok(Reply::Reset { .. }) => Msg::Reset(run.clone()),
            Ok(Reply::CaughtUp { .. }) => Msg::CaughtUp(run.clone()),
            Ok(_) => continue,
            Err(crate::daemon::client::ClientError::Frame(
                crate::daemon::protocol::FrameError::Io(e),
            )) if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
            {
                continue;
            }
            Err(_) => return end(&tx),
        };
        if tx.send(msg).is_err() {
            return;
        }
    }
}

/// Restores the terminal however the dashboard ends.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn restore_terminal() {
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = crossterm::execute!(
        std::io::stdout(),
        crossterm::terminal::LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

fn enter_terminal() -> std::io::Result<()> {
    crossterm::terminal::enable_raw_mode()?;
    crossterm::execute!(
        std::io::stdout(),
        crossterm::terminal::EnterAlternateScreen,
        crossterm::cursor::Hide
    )
}

/// Run the dashboard on this terminal until the user detaches.
pub fn run_dashboard(paths: &Paths) -> anyhow::Result<()> {
    let mut control = Client::connect_or_start(paths)?;
    let bindings = match keys::Bindings::default_path() {
        Some(p) => keys::Bindings::load(&p).map_err(anyhow::Error::msg)?,
        None => keys::Bindings::default(),
    };
    let settings = match settings::Settings::default_path() {
        Some(p) => settings::Settings::load(&p).map_err(anyhow::Error::msg)?,
        None => settings::Settings::default(),
    };
    let in_tmux = std::env::var_os("TMUX").is_some_and(|v| !v.is_empty());
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut app = App::new(bindings, color);
    let (tx, rx) = mpsc::channel::<Msg>();
    let quit = Arc::new(AtomicBool::new(false));
    {
        let (paths, tx, quit) = (paths.clone(), tx.clone(), Arc::clone(&quit));
        std::thread::spawn(move || poll_list(paths, tx, quit));
    }
    let mut subs: HashMap<String, Arc<AtomicBool>> = HashMap::new();
    let mut sampler = system::Sampler::default();
    app.system = sampler.sample(&paths.runs);
    app.state.now = crate::store::unix_now();

    enter_terminal().context("cannot set up the terminal")?;
    let _guard = TerminalGuard;
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        default_hook(info);
    }));
    // The alternate screen starts blank, so no clear (which would ask the
    // terminal for the cursor position, and some never answer).
    let backend = ratatui::backend::CrosstermBackend::new(std::io::stdout());
    let mut terminal = ratatui::Terminal::new(backend)?;

    let frame_gap = Duration::from_millis(100);
    let mut last_draw = Instant::now() - frame_gap;
    let mut last_sample = Instant::now();
    let mut message_at: Option<Instant> = None;
    let mut dirty = true;
    loop {
        let timeout = if dirty {
            frame_gap.saturating_sub(last_draw.elapsed())
        } else {
            Duration::from_millis(250)
        };
        if crossterm::event::poll(timeout)? {
            match crossterm::event::read()? {
                crossterm::event::Event::Key(key)
                    if key.kind == crossterm::event::KeyEventKind::Press =>
                {
                    dirty = true;
                    match app.on_key(&key) {
                        Some(Command::Quit) => break,
                        Some(Command::Send(request)) => {
                            app.message = Some(send(paths, &mut control, request));
                            message_at = Some(Instant::now());
                        }
                        Some(Command::Edit(path)) => {
                            app.message = Some(edit(&path, &mut terminal));
                            message_at = Some(Instant::now());
                        }
                        Some(Command::Export(run)) => {
                            let dir = paths.runs.join(&run).join("export");
                            app.message =
                                Some(match export::export_run(&paths.runs.join(&run), &dir) {
                                    Ok(n) => format!("exported {n} files to {}", dir.display()),
                                    Err(e) => format!("export failed: {e}"),
                                });
                            message_at = Some(Instant::now());
                        }
                        None => {}
                    }
                }
                crossterm::event::Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
        while let Ok(msg) = rx.try_recv() {
            dirty = true;
            match msg {
                Msg::Snapshot(s) => {
                    if app.state.connection_lost.take().is_some() {
                        // Streams died with the connection; they restart below.
                        for (_, cancel) in subs.drain() {
                            cancel.store(true, Ordering::SeqCst);
                        }
                    }
                    let ended = notify::ended(&app.state.snapshot, &s);
                    if let Some(last) = ended.last() {
                        app.message = Some(format!("run {}", last.message().1));
                        message_at = Some(Instant::now());
                    }
                    if settings.notifications && !ended.is_empty() {
                        use std::io::Write;
                        let mut out = std::io::stdout();
                        for run in &ended {
                            let _ =
                                out.write_all(notify::escape_sequences(run, in_tmux).as_bytes());
                        }
                        let _ = out.flush();
                    }
                    let selected = app.selected_id();
                    app.state.snapshot = s;
                    if let Some(id) = selected
                        && let Some(i) = app.state.snapshot.runs.iter().position(|r| r.id == id)
                    {
                        app.selected = i;
                    }
                    app.selected = app
                        .selected
                        .min(app.state.snapshot.runs.len().saturating_sub(1));
                }
                Msg::Lost(reason) => {
                    if app.state.connection_lost.is_none() {
                        app.state.connection_lost = Some(reason);
                    }
                }
                Msg::Events(run, records) => app.state.apply_events(&run, &records),
                Msg::Reset(run) => app.state.reset(&run),
                Msg::CaughtUp(run) => {
                    if let Some(d) = app.state.runs.get_mut(&run) {
                        d.caught_up = true;
                    }
                }
                Msg::SubEnded(run) => {
                    subs.remove(&run);
                }
            }
        }
        if app.state.connection_lost.is_none() {
            let wanted = app.watched();
            subs.retain(|run, cancel| {
                let keep = wanted.contains(run);
                if !keep {
                    cancel.store(true, Ordering::SeqCst);
                }
                keep
            });
            for run in wanted {
                if !subs.contains_key(&run) {
                    app.state.reset(&run);
                    let cancel = Arc::new(AtomicBool::new(false));
                    subs.insert(run.clone(), Arc::clone(&cancel));
                    let (paths, tx) = (paths.clone(), tx.clone());
                    std::thread::spawn(move || subscribe(paths, run, tx, cancel));
                }
            }
        }
        if last_sample.elapsed() >= Duration::from_secs(1) {
            last_sample = Instant::now();
            app.system = sampler.sample(&paths.runs);
            app.state.now = crate::store::unix_now();
            dirty = true;
        }
        if message_at.is_some_and(|t| t.elapsed() > Duration::from_secs(5)) {
            app.message = None;
            message_at = None;
            dirty = true;
        }
        if dirty && last_draw.elapsed() >= frame_gap {
            terminal.draw(|f| draw::draw(f, &mut app))?;
            last_draw = Instant::now();
            dirty = false;
        }
    }
    quit.store(true, Ordering::SeqCst);
    for (_, cancel) in subs {
        cancel.store(true, Ordering::SeqCst);
    }
    Ok(())
}

/// Send a control request; the reply as one line.
fn send(paths: &Paths, control: &mut Client, request: Request) -> String {
    let mut reply = control.request(request.clone());
    if reply.is_err() {
        match Client::connect(paths) {
            Ok(c) => {
                *control = c;
                reply = control.request(request);
            }
            Err(e) => return e.to_string(),
        }
    }
    match reply {
        Ok(Reply::Ok { message }) => message,
        Ok(Reply::Error { message }) => message,
        Ok(other) => format!("unexpected reply {other:?}"),
        Err(e) => e.to_string(),
    }
}

/// Open `path` in `$VISUAL`/`$EDITOR` (vi by default), suspending the dashboard.
fn edit(
    path: &std::path::Path,
    terminal: &mut ratatui::Terminal<ratatui::backend::CrosstermBackend<std::io::Stdout>>,
) -> String {
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    restore_terminal();
    let mut parts = editor.split_whitespace();
    let program = parts.next().unwrap_or("vi");
    let status = std::process::Command::new(program)
        .args(parts)
        .arg(path)
        .status();
    let _ = enter_terminal();
    // A fresh terminal forgets the last frame, so the next draw is complete.
    if let Ok(fresh) =
        ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))
    {
        *terminal = fresh;
    }
    match status {
        Ok(s) if s.success() => format!(
            "saved {}; the daemon re-queues it if it changed",
            path.display()
        ),
        Ok(s) => format!("{editor} exited with {s}"),
        Err(e) => format!("cannot run {editor}: {e}"),
    }
}
