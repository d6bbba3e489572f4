//! The real dashboard inside tmux (`send-keys`, `capture-pane`): a run
//! starts, the loss chart fills, `p` pauses and resumes it, `q` detaches
//! while it goes on, and attaching again shows the whole curve.

mod common;

use common::tmux::{Cleanup, Tmux, tmux_available};
use common::*;
use scintigan::daemon::Paths;
use std::process::Command;

/// The runs-pane row of run `name`.
fn run_row<'a>(screen: &'a str, name: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(&format!(" {name} ")))
        .unwrap_or("")
}

#[test]
fn the_dashboard_watches_pauses_detaches_and_reattaches_in_tmux() {
    if !tmux_available() {
        return;
    }
    let dir = scratch("tui-tmux");
    let _cleanup = Cleanup(dir.clone());
    std::fs::create_dir_all(dir.join("configs")).expect("configs");
    let tmux = Tmux::new("test", "dash");
    // The dashboard starts the daemon; the config is queued and runs.
    tmux.open(&dir);
    write(
        &dir.join("configs"),
        "watch.toml",
        &tiny_gan_config("watch", 300, ""),
    );
    tmux.wait_screen(60, "a running run with a loss chart", |s| {
        run_row(s, "watch").contains("running") && s.contains("G and D loss") && s.contains('⣿')
    });

    tmux.keys("p");
    tmux.wait_screen(30, "the run paused", |s| {
        run_row(s, "watch").contains("paused")
    });
    tmux.keys("p");
    tmux.wait_screen(30, "the run running again", |s| {
        run_row(s, "watch").contains("running")
    });

    tmux.keys("q");
    assert!(
        wait_for(10, || !tmux.alive()),
        "q did not end the dashboard"
    );
    let paths = Paths::new(&dir.join("runs"), &dir.join("configs"));
    let run = only_run(&dir);
    let status = run.status().expect("status");
    assert!(
        matches!(
            status.state,
            scintigan::store::RunState::Running | scintigan::store::RunState::Done
        ),
        "detaching stopped the run: {status:?}"
    );
    assert!(paths.recorded_pid().is_some(), "daemon gone after detach");

    // Wait for the end, then attach again: the whole curve, to the last step.
    assert!(
        wait_for(180, || run
            .status()
            .is_ok_and(|s| s.state == scintigan::store::RunState::Done)),
        "the run did not finish after the detach"
    );
    let last_step = gan_losses(&events(&run))
        .last()
        .map(|(s, _)| *s)
        .expect("steps");
    assert_eq!(last_step, 1800);
    tmux.open(&dir);
    // The chart's x axis runs to the last step, and the progress is full.
    tmux.wait_screen(30, "the finished run's whole curve", |s| {
        let row = run_row(s, "watch");
        row.contains("done")
            && row.contains("100%")
            && s.contains("G and D loss")
            && s.lines().any(|l| {
                l.trim_end()
                    .trim_end_matches('│')
                    .trim_end()
                    .ends_with("1800")
                    && !l.contains("done")
            })
    });
    let kinds: Vec<String> = events(&run)
        .iter()
        .filter_map(|r| match r.event {
            scintigan::store::Event::Paused { .. } => Some("paused".to_string()),
            scintigan::store::Event::Continued { .. } => Some("continued".to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["paused", "continued"]);
    tmux.keys("q");
}

#[test]
fn a_lost_daemon_shows_a_banner_and_the_dashboard_reconnects() {
    if !tmux_available() {
        return;
    }
    let dir = scratch("tui-reconnect");
    let _cleanup = Cleanup(dir.clone());
    std::fs::create_dir_all(dir.join("configs")).expect("configs");
    write(
        &dir.join("configs"),
        "short.toml",
        &tiny_gan_config("short", 20, ""),
    );
    let tmux = Tmux::new("test-rc", "dash");
    tmux.open(&dir);
    tmux.wait_screen(60, "the finished run with its chart", |s| {
        run_row(s, "short").contains("done") && s.contains("G and D loss")
    });
    let paths = Paths::new(&dir.join("runs"), &dir.join("configs"));
    let daemon = paths.recorded_pid().expect("daemon pid");
    let _ = Command::new("kill")
        .args(["-KILL", &daemon.to_string()])
        .status();
    tmux.wait_screen(30, "the lost-connection banner", |s| {
        s.contains("daemon connection lost")
    });
    // Any client starts a new daemon; the dashboard finds it by itself.
    run_ok(&dir, &["status"]);
    tmux.wait_screen(30, "the dashboard reconnected with its chart", |s| {
        !s.contains("daemon connection lost")
            && run_row(s, "short").contains("done")
            && s.contains("G and D loss")
    });
    tmux.keys("q");
}
