//! Every pane of the dashboard at 80x24 and 160x48, drawn from a fixture
//! run (a real two-stage run's events, worker log and sample grids) in the
//! empty, running, paused, failed and done states. Text snapshots
//! (`tests/snapshots/`); review changes with `cargo insta review`.

use scintigan::daemon::protocol::{InvalidConfig, RunInfo, Snapshot};
use scintigan::store::{EventRecord, read_events};
use scintigan::tui::app::{App, Pane};
use scintigan::tui::keys::Bindings;
use scintigan::tui::system::SystemInfo;
use scintigan::tui::{buffer_text, render};
use std::path::Path;

const RUN: &str = "demo-fixture";

fn fixture_runs() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tui/runs")
        .display()
        .to_string()
}

fn records() -> Vec<EventRecord> {
    read_events(&Path::new(&fixture_runs()).join(RUN).join("events.jsonl"))
        .expect("fixture events")
        .records
}

fn info(
    state: &str,
    reason: Option<&str>,
    pid: Option<u32>,
    created: f64,
    updated: f64,
) -> RunInfo {
    RunInfo {
        id: RUN.into(),
        name: "demo".into(),
        state: state.into(),
        position: None,
        priority: 0,
        reason: reason.map(String::from),
        stalled: false,
        pid,
        device: Some("cpu".into()),
        stage: Some("gan".into()),
        epoch: 10,
        step: 60,
        stage_steps: 0,
        retries: 0,
        config_file: Some("demo.toml".into()),
        created_at: created,
        updated_at: updated,
        heartbeat: None,
        executor: Some("local".into()),
        job_id: None,
        node: None,
        job_state: None,
    }
}

/// The app in `state`, with a queued run and an invalid config beside the
/// fixture run where one is shown.
fn app_in(state: &str) -> App {
    let mut app = App::new(Bindings::default(), false);
    app.system = SystemInfo {
        cpu_percent: Some(37.0),
        cores: 2,
        mem_used_bytes: 3 << 30,
        mem_total_bytes: 24 << 30,
        disk_free_bytes: 60 << 30,
        disk_total_bytes: 252 << 30,
        gpus: Vec::new(),
        gpu_note: Some("no GPU (no NVIDIA driver on this machine)".into()),
    };
    let all = records();
    let t0 = all[0].t;
    let mut snapshot = Snapshot {
        daemon_pid: 4242,
        runs_dir: fixture_runs(),
        configs_dir: "configs".into(),
        runs: Vec::new(),
        invalid_configs: Vec::new(),
    };
    let (run_info, events): (Option<RunInfo>, Vec<EventRecord>) = match state {
        "empty" => (None, Vec::new()),
        "running" => (
            Some(info("running", None, Some(999), t0, t0 + 1.0)),
            all[..90].to_vec(),
        ),
        "paused" => (
            Some(info("paused", None, Some(999), t0, t0 + 1.0)),
            all[..90].to_vec(),
        ),
        "failed" => (
            Some(info(
                "failed",
                Some(
                    "stage 'gan': g_loss became NaN at step 61; stopped with the last good checkpoint kept (try a lower lr)",
                ),
                None,
                t0,
                t0 + 2.0,
            )),
            all[..90].to_vec(),
        ),
        "done" => (Some(info("done", None, None, t0, t0 + 3.4)), all),
        other => panic!("unknown state {other}"),
    };
    if let Some(r) = run_info {
        snapshot.runs.push(r);
        let mut queued = info(
            "queued",
            Some("waiting for 'demo' (demo-fixture, running)"),
            None,
            t0,
            t0,
        );
        queued.id = "classifier-fixture".into();
        queued.name = "classifier".into();
        queued.position = Some(1);
        queued.stage = None;
        (queued.epoch, queued.step) = (0, 0);
        snapshot.runs.push(queued);
        snapshot.invalid_configs.push(InvalidConfig {
            file: "bad.toml".into(),
            errors: vec![
                "configs/bad.toml:12:10: invalid type: string \"many\", expected an integer".into(),
            ],
        });
    }
    app.state.snapshot = snapshot;
    app.state.apply_events(RUN, &events);
    app.state.now = t0 + 5.0;
    app
}

fn screen(app: &mut App, w: u16, h: u16) -> String {
    buffer_text(&render(app, w, h))
}

#[test]
fn whole_screen_in_every_state_at_both_sizes() {
    for state in ["empty", "running", "paused", "failed", "done"] {
        for (w, h) in [(80u16, 24u16), (160, 48)] {
            let mut app = app_in(state);
            insta::assert_snapshot!(format!("screen_{state}_{w}x{h}"), screen(&mut app, w, h));
        }
    }
}

#[test]
fn every_pane_zoomed_at_both_sizes() {
    for pane in Pane::ALL {
        for (w, h) in [(80u16, 24u16), (160, 48)] {
            let mut app = app_in("done");
            app.focus = pane;
            app.zoomed = true;
            let name = pane.title().to_lowercase().replace(' ', "_");
            insta::assert_snapshot!(format!("pane_{name}_{w}x{h}"), screen(&mut app, w, h));
        }
    }
}

#[test]
fn chart_settings_and_overlays_change_what_is_drawn() {
    let mut app = app_in("done");
    app.focus = Pane::Charts;
    app.zoomed = true;
    let plain = screen(&mut app, 100, 30);
    app.smoothing = Some(0.9);
    let smooth = screen(&mut app, 100, 30);
    assert_ne!(plain, smooth, "EMA changes the curves");
    assert!(smooth.contains("EMA 0.90"));
    app.log_y = true;
    app.x_axis = scintigan::tui::state::XAxis::Epoch;
    let log = screen(&mut app, 100, 30);
    assert!(log.contains("log y") && log.contains("x: epoch"), "{log}");
    // The confusion pane steps back through epochs.
    let mut app = app_in("done");
    app.focus = Pane::Confusion;
    app.zoomed = true;
    assert!(screen(&mut app, 100, 30).contains("epoch 30 (30/30)"));
    app.eval_back = 29;
    assert!(screen(&mut app, 100, 30).contains("epoch 1 (1/30)"));
}

#[test]
fn help_lists_every_action_and_a_cancel_asks_first() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let key = |c: char| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
    let mut app = app_in("running");
    app.on_key(&key('?'));
    let help = screen(&mut app, 100, 40);
    for action in scintigan::tui::keys::Action::ALL {
        assert!(help.contains(action.describe()), "help lacks {action:?}");
    }
    app.on_key(&key('x'));
    assert!(!app.help);
    assert_eq!(
        app.on_key(&key('c')),
        None,
        "cancel waits for a confirmation"
    );
    assert!(screen(&mut app, 100, 40).contains("Cancel demo-fixture?"));
    let cmd = app.on_key(&key('y'));
    assert!(matches!(
        cmd,
        Some(scintigan::tui::app::Command::Send(
            scintigan::daemon::protocol::Request::Cancel { now: false, .. }
        ))
    ));
    // p pauses a running run and resumes a paused one.
    let cmd = app.on_key(&key('p'));
    assert!(matches!(
        cmd,
        Some(scintigan::tui::app::Command::Send(
            scintigan::daemon::protocol::Request::Pause { .. }
        ))
    ));
    let mut paused = app_in("paused");
    let cmd = paused.on_key(&key('p'));
    assert!(matches!(
        cmd,
        Some(scintigan::tui::app::Command::Send(
            scintigan::daemon::protocol::Request::Resume { .. }
        ))
    ));
}

#[test]
fn a_run_on_slurm_shows_its_job_node_and_pending_reason_and_the_system_pane_says_whose_figures() {
    let mut app = app_in("running");
    let run = &mut app.state.snapshot.runs[0];
    run.executor = Some("slurm".into());
    run.job_id = Some("4711".into());
    run.node = Some("gpu07".into());
    run.job_state = Some("RUNNING".into());
    let mut pending = app.state.snapshot.runs[1].clone();
    pending.executor = Some("slurm".into());
    pending.state = "pending".into();
    pending.job_id = Some("4712".into());
    pending.job_state = Some("PENDING".into());
    pending.reason = Some("pending in Slurm: Resources".into());
    app.state.snapshot.runs[1] = pending;

    app.focus = Pane::Runs;
    app.zoomed = true;
    let runs = screen(&mut app, 160, 48);
    assert!(
        runs.contains("⎈ slurm job 4711 · RUNNING on gpu07"),
        "{runs}"
    );
    app.selected = 1;
    let runs = screen(&mut app, 160, 48);
    assert!(runs.contains("⎈ slurm job 4712 · PENDING"), "{runs}");
    assert!(runs.contains("↳ pending in Slurm: Resources"), "{runs}");
    assert!(runs.contains("pending"), "{runs}");

    app.selected = 0;
    app.focus = Pane::System;
    let system = screen(&mut app, 160, 48);
    assert!(
        system.contains("these figures are this machine's only; demo runs on gpu07"),
        "{system}"
    );
}

/// An SSIM event that finds `benign` collapsed, after the fixture's history.
fn collapse_event(seq: u64, t: f64, benign_diversity: f64) -> EventRecord {
    EventRecord {
        seq,
        t,
        event: scintigan::store::Event::Ssim {
            stage: "gan".into(),
            epoch: 40,
            step: 240,
            classes: vec!["healthy".into(), "metastasis".into(), "benign".into()],
            ssim: vec![0.31, 0.33, 0.35],
            diversity: vec![0.36, 0.40, benign_diversity],
            real: vec![0.32, 0.35, 0.36],
        },
    }
}

#[test]
fn a_collapsed_class_badges_its_run_and_the_ssim_chart_draws_all_three_scores() {
    let last = records().last().map(|r| (r.seq, r.t)).expect("records");
    let mut app = app_in("done");
    app.state
        .apply_events(RUN, &[collapse_event(last.0 + 1, last.1 + 1.0, 0.97)]);
    let whole = screen(&mut app, 160, 48);
    assert!(whole.contains("⚠ demo"), "{whole}");
    assert!(
        whole.contains("⚠ mode collapse in gan: benign"),
        "the selected run says which class: {whole}"
    );
    app.focus = Pane::Charts;
    app.zoomed = true;
    // Tall enough for the chart's legend of nine series.
    let charts = screen(&mut app, 200, 80);
    for label in ["benign gen-real", "benign gen-gen", "benign real-real"] {
        assert!(charts.contains(label), "{label} missing:\n{charts}");
    }
    // A later score in which the class recovered clears the badge.
    app.zoomed = false;
    app.state
        .apply_events(RUN, &[collapse_event(last.0 + 2, last.1 + 2.0, 0.40)]);
    let whole = screen(&mut app, 160, 48);
    assert!(
        !whole.contains("collapse") && !whole.contains("⚠"),
        "{whole}"
    );
}
