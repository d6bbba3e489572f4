//! The commands that talk to the daemon: `daemon`, `status`, `pause`,
//! `resume`, `cancel`, `move`, `priority`, `retry`, `logs`, `events`,
//! `submit`, and `sweep`, which writes configs for the daemon to queue.

use crate::daemon::client::{self, Client};
use crate::daemon::protocol::{MoveTo, Reply, Request, RunInfo, Snapshot};
use crate::daemon::{self, DaemonExit, Paths};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// The options every command takes, in both binaries.
#[derive(clap::Args)]
pub struct GlobalArgs {
    /// The runs directory (the tool's database).
    #[arg(long, global = true, default_value = "runs", env = "SCINTIGAN_RUNS")]
    pub runs_dir: std::path::PathBuf,
    /// The watched folder of run configs (top-level *.toml) the daemon queues.
    #[arg(
        long,
        global = true,
        default_value = "configs",
        env = "SCINTIGAN_CONFIGS"
    )]
    pub configs_dir: std::path::PathBuf,
}

/// Send this process's log (tracing) to `path`, appending.
pub fn log_to_file(path: &Path) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .try_init();
    Ok(())
}

#[derive(Subcommand)]
pub enum QueueCommand {
    /// Start the daemon for the runs directory (detached), or stop it.
    ///
    /// One daemon serves one runs directory; starting a second says so and
    /// exits 0. Other commands start it by themselves when it is absent.
    Daemon {
        /// Stay in the foreground (for systemd); log to runs/.daemon/daemon.log.
        #[arg(long)]
        foreground: bool,
        #[command(subcommand)]
        action: Option<DaemonAction>,
    },
    /// The queue and every run: state, stage, step, device, reason.
    Status {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Hold a run at its next step boundary (a queued run: keep it from starting).
    Pause {
        /// Run id, unique id prefix, or config name (its newest run).
        run: String,
        /// Checkpoint and end the worker, freeing its device; `resume` continues
        /// from that checkpoint.
        #[arg(long)]
        release: bool,
    },
    /// Continue a paused run.
    Resume { run: String },
    /// Stop a run after writing a checkpoint (a queued run: drop it).
    Cancel {
        run: String,
        /// Kill the worker at once, without a checkpoint.
        #[arg(long)]
        now: bool,
    },
    /// Move a queued run in the start order.
    Move {
        run: String,
        #[arg(value_enum)]
        to: MoveTo,
    },
    /// Set a queued run's priority (higher starts first; default 0).
    Priority {
        run: String,
        #[arg(allow_hyphen_values = true)]
        priority: i32,
    },
    /// Queue a failed or cancelled run again, continuing from its last checkpoint.
    Retry { run: String },
    /// A run's worker.log.
    Logs {
        run: String,
        /// Keep printing new lines.
        #[arg(short, long)]
        follow: bool,
        /// Lines of history to show first.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
    },
    /// A run's events as JSON lines (from the first), through the daemon.
    Events {
        run: String,
        /// Keep printing live events.
        #[arg(short, long)]
        follow: bool,
    },
    /// Validate a config and copy it into configs/, where the daemon queues it.
    Submit { file: std::path::PathBuf },
    /// The dashboard (also what `scintigan` with no command opens).
    Tui,
    /// Every scalar series of a run as CSV, and its confusion matrices.
    Export {
        run_dir: std::path::PathBuf,
        /// Output folder.
        #[arg(long)]
        csv: std::path::PathBuf,
    },
    /// Write one config per combination of values (and per seed) into the
    /// configs folder, where the daemon queues them.
    ///
    /// Each is the source with its values set (comments kept) and a name
    /// saying what varies, e.g. cls-lr3e-4-s1. Every file is validated
    /// before any is written; sweeping again writes nothing new.
    Sweep {
        /// The config to vary.
        config: std::path::PathBuf,
        /// KEY=V1,V2,...: a dotted key (train.lr; in a [[stage]] file the
        /// stage first, classifier.train.lr) and its values. Repeat for a grid.
        #[arg(long = "set", value_name = "KEY=V1,V2")]
        set: Vec<String>,
        /// Also one config per seed 1..=N (train.seed and data.split_seed of
        /// every stage).
        #[arg(long, value_name = "N")]
        seeds: Option<usize>,
        /// Where to write (default: the configs folder).
        #[arg(long, value_name = "DIR")]
        out: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum DaemonAction {
    /// Stop the daemon. Workers go on and the next daemon adopts them.
    Stop {
        /// Checkpoint and stop the running workers first (they show as
        /// paused and continue on `scintigan resume`).
        #[arg(long)]
        stop_runs: bool,
    },
}

pub fn dispatch(command: &QueueCommand, runs_dir: &Path, configs_dir: &Path) -> Result<ExitCode> {
    let paths = Paths::new(runs_dir, configs_dir);
    match command {
        QueueCommand::Daemon { foreground, action } => {
            daemon_command(&paths, *foreground, action.as_ref())
        }
        QueueCommand::Status { json } => status(&paths, *json),
        QueueCommand::Pause { run, release } => simple(
            &paths,
            Request::Pause {
                run: run.clone(),
                release: *release,
            },
        ),
        QueueCommand::Resume { run } => simple(&paths, Request::Resume { run: run.clone() }),
        QueueCommand::Cancel { run, now } => simple(
            &paths,
            Request::Cancel {
                run: run.clone(),
                now: *now,
            },
        ),
        QueueCommand::Move { run, to } => simple(
            &paths,
            Request::Move {
                run: run.clone(),
                to: *to,
            },
        ),
        QueueCommand::Priority { run, priority } => simple(
            &paths,
            Request::Priority {
                run: run.clone(),
                priority: *priority,
            },
        ),
        QueueCommand::Retry { run } => simple(&paths, Request::Retry { run: run.clone() }),
        QueueCommand::Logs { run, follow, lines } => logs(&paths, run, *follow, *lines),
        QueueCommand::Events { run, follow } => events(&paths, run, *follow),
        QueueCommand::Tui => {
            crate::tui::run_dashboard(&paths)?;
            Ok(ExitCode::SUCCESS)
        }
        QueueCommand::Export { run_dir, csv } => {
            let n = crate::tui::export::export_run(run_dir, csv).map_err(anyhow::Error::msg)?;
            println!("wrote {n} CSV files to {}", csv.display());
            Ok(ExitCode::SUCCESS)
        }
        QueueCommand::Sweep {
            config,
            set,
            seeds,
            out,
        } => sweep(config, set, *seeds, out.as_deref(), configs_dir, runs_dir),
        QueueCommand::Submit { file } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let file_name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            simple(&paths, Request::Submit { file_name, text })
        }
    }
}

fn init_daemon_logging(paths: &Paths) -> Result<()> {
    paths.make_private_dir()?;
    log_to_file(&paths.log_file())
}

fn daemon_command(
    paths: &Paths,
    foreground: bool,
    action: Option<&DaemonAction>,
) -> Result<ExitCode> {
    if let Some(DaemonAction::Stop { stop_runs }) = action {
        let Ok(mut c) = Client::connect(paths) else {
            println!("no daemon is running for {}", paths.runs.display());
            return Ok(ExitCode::SUCCESS);
        };
        let pid = paths.recorded_pid();
        let reply = c.request(Request::Shutdown {
            stop_runs: *stop_runs,
        })?;
        let code = print_reply(reply)?;
        // Wait until it has gone, so a following start finds the lock free.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(150);
        while std::time::Instant::now() < deadline {
            let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
            if !alive && Client::connect(paths).is_err() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        return Ok(code);
    }
    if foreground {
        init_daemon_logging(paths)?;
        return match daemon::run_foreground(paths)? {
            DaemonExit::AlreadyRunning(pid) => {
                println!("{}", already_running(paths, pid));
                Ok(ExitCode::SUCCESS)
            }
            DaemonExit::Stopped => Ok(ExitCode::SUCCESS),
        };
    }
    if Client::connect(paths).is_ok() {
        println!("{}", already_running(paths, paths.recorded_pid()));
        return Ok(ExitCode::SUCCESS);
    }
    let pid = client::start_detached(paths)?;
    println!(
        "daemon started (pid {pid}) for {}; log: {}",
        paths.runs.display(),
        paths.log_file().display()
    );
    Ok(ExitCode::SUCCESS)
}

fn already_running(paths: &Paths, pid: Option<u32>) -> String {
    let pid = pid.map_or_else(|| "pid unknown".to_string(), |p| format!("pid {p}"));
    format!(
        "a daemon is already running for {} ({pid})",
        paths.runs.display()
    )
}

fn print_reply(reply: Reply) -> Result<ExitCode> {
    match reply {
        Reply::Ok { message } => {
            println!("{message}");
            Ok(ExitCode::SUCCESS)
        }
        Reply::Error { message } => bail!("{message}"),
        other => bail!("unexpected reply from the daemon: {other:?}"),
    }
}

fn simple(paths: &Paths, request: Request) -> Result<ExitCode> {
    let mut c = Client::connect_or_start(paths)?;
    print_reply(c.request(request)?)
}

fn snapshot(paths: &Paths) -> Result<Snapshot> {
    let mut c = Client::connect_or_start(paths)?;
    match c.request(Request::List)? {
        Reply::List(s) => Ok(s),
        Reply::Error { message } => bail!("{message}"),
        other => bail!("unexpected reply from the daemon: {other:?}"),
    }
}

fn status(paths: &Paths, json: bool) -> Result<ExitCode> {
    let snap = snapshot(paths)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&snap)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "daemon {} · runs {} · configs {}",
        snap.daemon_pid, snap.runs_dir, snap.configs_dir
    );
    if snap.runs.is_empty() {
        println!("no runs yet; put a config into {}", snap.configs_dir);
    } else {
        println!(
            "{:<4} {:<34} {:<10} {:<14} {:>5} {:>8} {:<7} REASON",
            "#", "RUN", "STATE", "STAGE", "EPOCH", "STEP", "DEVICE"
        );
        for r in &snap.runs {
            println!("{}", status_line(r));
        }
    }
    for bad in &snap.invalid_configs {
        println!("invalid config {}:", bad.file);
        for e in &bad.errors {
            println!("  {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn status_line(r: &RunInfo) -> String {
    let place = r
        .position
        .map_or_else(|| "-".to_string(), |p| p.to_string());
    let state = if r.stalled {
        format!("{} (stalled)", r.state)
    } else {
        r.state.clone()
    };
    // A run on Slurm: its job and node before the reason.
    let job = r.job_id.as_deref().map(|id| {
        let node = r
            .node
            .as_deref()
            .map(|n| format!(" on {n}"))
            .unwrap_or_default();
        format!("[slurm job {id}{node}] ")
    });
    format!(
        "{:<4} {:<34} {:<10} {:<14} {:>5} {:>8} {:<7} {}{}",
        place,
        r.id,
        state,
        r.stage.as_deref().unwrap_or("-"),
        r.epoch,
        r.step,
        r.device.as_deref().unwrap_or("-"),
        job.unwrap_or_default(),
        r.reason.as_deref().unwrap_or("")
    )
}

fn logs(paths: &Paths, run: &str, follow: bool, lines: usize) -> Result<ExitCode> {
    let mut c = Client::connect_or_start(paths)?;
    c.send(Request::Logs {
        run: run.to_string(),
        lines,
        follow,
    })?;
    let mut out = std::io::stdout().lock();
    loop {
        match c.next(None)? {
            Reply::Log { text, .. } => {
                out.write_all(text.as_bytes())?;
                out.flush()?;
                if !follow {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            Reply::Error { message } => bail!("{message}"),
            other => bail!("unexpected reply from the daemon: {other:?}"),
        }
    }
}

fn events(paths: &Paths, run: &str, follow: bool) -> Result<ExitCode> {
    match print_events(paths, run, follow) {
        // A reader such as `head` closing the pipe is a normal end.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(ExitCode::SUCCESS)
        }
        other => other,
    }
}

/// How many lines of a run's event log were left out because they do not
/// parse: in `events.jsonl` now, and moved to `events.rejected.jsonl` by
/// resumes. `None` when there are none.
fn unreadable_lines_note(run_dir: &std::path::Path) -> Option<String> {
    let log = run_dir.join("events.jsonl");
    let skipped = crate::store::read_events(&log).map_or(0, |h| h.skipped_lines);
    let rejected_path = run_dir.join(crate::store::REJECTED_FILE);
    let moved = std::fs::read_to_string(&rejected_path).map_or(0, |t| t.lines().count());
    (skipped + moved > 0).then(|| {
        format!(
            "note: {skipped} line(s) of {} do not parse and were left out; {moved} more kept in {}",
            log.display(),
            rejected_path.display()
        )
    })
}

fn print_events(paths: &Paths, run: &str, follow: bool) -> Result<ExitCode> {
    let mut c = Client::connect_or_start(paths)?;
    c.send(Request::Subscribe {
        run: run.to_string(),
    })?;
    let mut out = std::io::stdout().lock();
    loop {
        match c.next(None)? {
            Reply::Events { events, .. } => {
                for e in events {
                    writeln!(out, "{}", e.get())?;
                }
                out.flush()?;
            }
            Reply::CaughtUp { run } => {
                if let Some(note) = unreadable_lines_note(&paths.runs.join(&run)) {
                    eprintln!("{note}");
                }
                if !follow {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            Reply::Reset { run } => {
                eprintln!("{run}: event log rewritten by a resume; history follows again")
            }
            Reply::Error { message } => bail!("{message}"),
            other => bail!("unexpected reply from the daemon: {other:?}"),
        }
    }
}

/// `scintigan sweep`: expand, validate every member, refuse to overwrite a
/// different file, then write the new ones.
fn sweep(
    source: &Path,
    set: &[String],
    seeds: Option<usize>,
    out: Option<&Path>,
    configs_dir: &Path,
    runs_dir: &Path,
) -> Result<ExitCode> {
    use crate::config::{self, KnownRuns, sweep};
    if set.is_empty() && seeds.is_none() {
        bail!("nothing to sweep: give --set KEY=V1,V2 (repeatable) and/or --seeds N");
    }
    let text = std::fs::read_to_string(source)
        .with_context(|| format!("cannot read {}", source.display()))?;
    let source_dir = source
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let spec = match config::load_config(source, &KnownRuns::scan(source_dir, Some(runs_dir))) {
        Ok(spec) => spec,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let axes = set
        .iter()
        .map(|s| sweep::Axis::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    // Relative paths mean the source's folder; the written file may sit
    // elsewhere, so they become absolute there. The configs folder's files
    // resolve against the project root, as the daemon reads them.
    let from = config::config_base_dir(source);
    let to = match out {
        Some(dir) => config::config_base_dir(&dir.join("x.toml")),
        None => Paths::new(runs_dir, &std::path::absolute(configs_dir)?).project_root(),
    };
    let out = out.unwrap_or(configs_dir);
    let rebase = |p: &str| {
        let path = Path::new(p);
        (from != to && path.is_relative()).then(|| from.join(path).display().to_string())
    };
    // The header names the source the same way however it was typed, so
    // that sweeping again from elsewhere writes nothing new.
    let shown = std::fs::canonicalize(source).unwrap_or_else(|_| source.to_path_buf());
    let members = sweep::expand(&shown, &text, &spec.name, &axes, seeds, &rebase)?;
    let known = KnownRuns::scan(out, Some(runs_dir));
    let (mut new, mut unchanged, mut problems) = (Vec::new(), 0, 0);
    for m in &members {
        let file = out.join(format!("{}.toml", m.name));
        let shown = file.display().to_string();
        if let Err(errors) = config::parse_config(&shown, &m.text, &to, &m.name, &known) {
            problems += 1;
            for e in errors {
                eprintln!("{e}");
            }
            continue;
        }
        match std::fs::read(&file) {
            Ok(old) if old == m.text.as_bytes() => unchanged += 1,
            Ok(_) => {
                problems += 1;
                eprintln!(
                    "{shown}: exists and differs from what this sweep writes; remove it or sweep into another --out"
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => new.push((file, m)),
            Err(e) => {
                problems += 1;
                eprintln!("{shown}: cannot read to compare: {e}");
            }
        }
    }
    if problems > 0 {
        eprintln!(
            "sweep of {}: {problems} of {} configs cannot be written; nothing was written",
            source.display(),
            members.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (i, (file, m)) in new.iter().enumerate() {
        if let Err(e) = crate::store::write_atomic(file, m.text.as_bytes()) {
            let written: Vec<&str> = new[..i].iter().map(|(_, m)| m.name.as_str()).collect();
            bail!(
                "cannot write {}: {e}; written before it: {}",
                file.display(),
                if written.is_empty() {
                    "none".to_string()
                } else {
                    written.join(", ")
                }
            );
        }
    }
    let names: Vec<&str> = new.iter().map(|(_, m)| m.name.as_str()).collect();
    println!(
        "sweep of {}: wrote {} configs to {} ({unchanged} already there){}{}",
        source.display(),
        new.len(),
        out.display(),
        if names.is_empty() { "" } else { ": " },
        names.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
