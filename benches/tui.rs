//! Dashboard costs.
//!
//! 1. Render time per frame at 200x60 with 4 charts of 1,000,000 points
//!    each (full screen, and the charts pane zoomed), in-process.
//! 2. The real dashboard's CPU while it watches a live run (inside tmux).
//! 3. Its resident memory with 100 runs of history (each 2,000 step events,
//!    30 evaluations), all marked for overlay so every history is loaded.
//!
//! `cargo bench --bench tui` (parts 2 and 3 need tmux; skipped without it).

use scintigan::config::{KnownRuns, parse_config};
use scintigan::daemon::Paths;
use scintigan::daemon::protocol::{RunInfo, Snapshot};
use scintigan::store::{Event, EventRecord, EventWriter, RunDir, RunState};
use scintigan::tui::app::{App, Pane};
use scintigan::tui::keys::Bindings;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn gan_step(seq: u64, step: u64) -> EventRecord {
    let x = step as f64;
    EventRecord {
        seq,
        t: 1.0e9 + x * 0.01,
        event: Event::GanStep {
            stage: "gan".into(),
            epoch: 1 + step / 1000,
            step,
            g_loss: 1.0
                + (x * 0.001).sin()
                + if step.is_multiple_of(99_991) {
                    5.0
                } else {
                    0.0
                },
            d_loss: 0.7 + 0.1 * (x * 0.0003).cos(),
            d_real_acc: 0.5 + 0.4 * (x * 0.0001).sin(),
            d_fake_acc: 0.5,
            d_class_acc: 0.6,
            images_per_sec: 100.0,
        },
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn render_bench() {
    let points = 1_000_000u64;
    let mut app = App::new(Bindings::default(), true);
    let id = "bench-run".to_string();
    app.state.snapshot = Snapshot {
        runs_dir: "/nonexistent".into(),
        runs: vec![RunInfo {
            id: id.clone(),
            name: "bench".into(),
            state: "running".into(),
            position: None,
            priority: 0,
            reason: None,
            stalled: false,
            pid: Some(1),
            device: Some("cpu".into()),
            stage: Some("gan".into()),
            epoch: 1000,
            step: points,
            stage_steps: points,
            retries: 0,
            config_file: None,
            created_at: 1.0e9,
            updated_at: 1.0e9,
            heartbeat: None,
            executor: Some("local".into()),
            job_id: None,
            node: None,
            job_state: None,
        }],
        ..Default::default()
    };
    let start = Instant::now();
    let records: Vec<EventRecord> = (1..=points).map(|s| gan_step(s, s)).collect();
    app.state.apply_events(&id, &records);
    // A fourth chart: classifier loss, also a million points.
    let cls: Vec<EventRecord> = (1..=points)
        .map(|s| EventRecord {
            seq: points + s,
            t: 2.0e9 + s as f64,
            event: Event::TrainStep {
                stage: "cls".into(),
                epoch: 1 + s / 1000,
                step: s,
                loss: 1.0 / (1.0 + s as f64 * 1e-4),
                accuracy: 0.9,
                images_per_sec: 100.0,
            },
        })
        .collect();
    app.state.apply_events(&id, &cls);
    let fold = start.elapsed().as_secs_f64();
    let total: usize = app.state.runs[&id]
        .metrics
        .values()
        .map(|m| m.raw.len())
        .sum();
    println!(
        "fold: {} events into {} metric points in {fold:.2} s ({:.0} events/s)",
        2 * points,
        total,
        2.0 * points as f64 / fold
    );
    for (label, zoom) in [("full screen", false), ("charts zoomed", true)] {
        app.zoomed = zoom;
        app.focus = Pane::Charts;
        // One terminal for all frames, as the dashboard keeps one.
        let backend = ratatui::backend::TestBackend::new(200, 60);
        let mut terminal = ratatui::Terminal::new(backend).expect("terminal");
        terminal
            .draw(|f| scintigan::tui::draw(f, &mut app))
            .expect("draw");
        let mut times = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            terminal
                .draw(|f| scintigan::tui::draw(f, &mut app))
                .expect("draw");
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "render 200x60, {label}, 4 charts, 7 series of 1,000,000 points each: median {:.2} ms, max {:.2} ms over 200 frames",
            median(times.clone()),
            times.iter().copied().fold(0.0, f64::max)
        );
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn tui_pid(marker: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<String> = cmd
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        (args.len() == 3
            && args[0].ends_with("scintigan")
            && args[1] == "--runs-dir"
            && args[2].contains(marker))
        .then_some(pid)
    })
}

fn tmux(socket: &str, args: &[&str]) {
    let _ = Command::new("tmux")
        .arg("-L")
        .arg(socket)
        .args(args)
        .output();
}

fn live_benches() {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("dashboard CPU and RSS: skipped (no tmux)");
        return;
    }
    let bin = env!("CARGO_BIN_EXE_scintigan");
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-tui");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("configs")).expect("scratch");
    let paths = Paths::new(&root.join("runs"), &root.join("configs"));
    // 100 finished runs of history.
    let spec = parse_config(
        "h.toml",
        "name = \"hist\"\nkind = \"classifier\"\n",
        &root,
        "hist",
        &KnownRuns::default(),
    )
    .expect("config");
    for r in 0..100 {
        let run = RunDir::create(&paths.runs, &spec).expect("run");
        let mut w = EventWriter::open(&run.events_path()).expect("events");
        for s in 1..=2000u64 {
            let _ = w.append(Event::TrainStep {
                stage: "hist".into(),
                epoch: 1 + s / 67,
                step: s,
                loss: 1.0 / (1.0 + s as f64 * 1e-3) + r as f64 * 1e-3,
                accuracy: 0.8,
                images_per_sec: 50.0,
            });
        }
        for e in 1..=30u64 {
            let _ = w.append(Event::Eval {
                stage: "hist".into(),
                epoch: e,
                step: e * 67,
                loss: 0.5,
                accuracy: 0.8,
                classes: vec!["healthy".into(), "metastasis".into(), "benign".into()],
                confusion: vec![vec![8, 1, 1], vec![1, 7, 2], vec![0, 1, 3]],
                precision: vec![0.9, 0.8, 0.5],
                recall: vec![0.8, 0.7, 0.75],
                specificity: vec![0.9, 0.9, 0.9],
                f1: vec![0.85, 0.75, 0.6],
                macro_precision: 0.73,
                macro_recall: 0.75,
                macro_specificity: 0.9,
                macro_f1: 0.73,
            });
        }
        let mut status = run.status().expect("status");
        status.state = RunState::Done;
        status.write(&run.status_path()).expect("status");
    }
    let marker = root.display().to_string();
    let socket = format!("scintigan-bench-{}", std::process::id());
    let shell = format!(
        "'{bin}' --runs-dir '{}' --configs-dir '{}'",
        paths.runs.display(),
        paths.configs.display()
    );
    // The dashboard itself: the command line is `scintigan --runs-dir X` ... so
    // find it by its arguments.
    let shell = format!("cd '{}' && exec {shell}", root.display());
    tmux(
        &socket,
        &[
            "new-session",
            "-d",
            "-s",
            "b",
            "-x",
            "200",
            "-y",
            "60",
            &shell,
        ],
    );
    std::thread::sleep(Duration::from_secs(4));
    let pid = (0..50)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
                let pid: u32 = e.file_name().to_str()?.parse().ok()?;
                let cmd = String::from_utf8_lossy(&std::fs::read(e.path().join("cmdline")).ok()?)
                    .into_owned();
                (cmd.contains(&marker)
                    && !cmd.contains("daemon")
                    && !cmd.contains("tmux")
                    && !cmd.contains("worker")
                    && !cmd.starts_with("sh"))
                .then_some(pid)
            })
        })
        .or_else(|| tui_pid(&marker));
    let Some(pid) = pid else {
        println!("dashboard CPU and RSS: could not find the dashboard process");
        tmux(&socket, &["kill-server"]);
        return;
    };
    println!(
        "dashboard RSS, 100 runs listed, one selected: {:.1} MB",
        rss_kib(pid).unwrap_or(0) as f64 / 1024.0
    );
    for _ in 0..100 {
        tmux(&socket, &["send-keys", "-t", "b", "Space", "Down"]);
    }
    std::thread::sleep(Duration::from_secs(8));
    println!(
        "dashboard RSS, 100 runs of history all loaded (marked for overlay; 2,000 steps and 30 evaluations each): {:.1} MB",
        rss_kib(pid).unwrap_or(0) as f64 / 1024.0
    );
    for _ in 0..100 {
        tmux(&socket, &["send-keys", "-t", "b", "Space", "Up"]);
    }
    // A live run to watch.
    let live = "name = \"live\"\nkind = \"gan\"\n[data]\nsource = \"phantom-bone\"\nimage_size = [32, 16]\nper_class = 10\n[model]\narch = \"acgan\"\nlatent_dim = 8\nbase_channels = 4\n[train]\nepochs = 2000\nbatch_size = 4\ndevice = \"cpu\"\nlog_every = 1\n";
    std::fs::write(root.join("configs/live.toml"), live).expect("config");
    std::thread::sleep(Duration::from_secs(5));
    tmux(&socket, &["send-keys", "-t", "b", "Home"]);
    for _ in 0..3 {
        tmux(&socket, &["send-keys", "-t", "b", "Up"]);
    }
    std::thread::sleep(Duration::from_secs(3));
    let secs = 30.0;
    let c0 = scintigan::daemon::cpu_seconds(pid).unwrap_or(0.0);
    std::thread::sleep(Duration::from_secs_f64(secs));
    let c1 = scintigan::daemon::cpu_seconds(pid).unwrap_or(0.0);
    let screen = Command::new("tmux")
        .args(["-L", &socket, "capture-pane", "-p", "-t", "b"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let watching = screen
        .lines()
        .any(|l| l.contains(" live ") && l.contains("running"));
    println!(
        "dashboard CPU while watching a live run{}: {:.2} % of a core ({:.2} s in {secs} s)",
        if watching {
            ""
        } else {
            " (live run not confirmed on screen)"
        },
        100.0 * (c1 - c0) / secs,
        c1 - c0
    );
    tmux(&socket, &["kill-server"]);
    let _ = Command::new(bin)
        .args([
            "--runs-dir",
            &paths.runs.display().to_string(),
            "cancel",
            "live",
            "--now",
        ])
        .output();
    let _ = Command::new(bin)
        .args([
            "--runs-dir",
            &paths.runs.display().to_string(),
            "daemon",
            "stop",
        ])
        .output();
}

fn main() {
    render_bench();
    live_benches();
}
