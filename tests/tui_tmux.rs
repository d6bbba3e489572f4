//! The real dashboard inside tmux (`send-keys`, `capture-pane`): a run
//! starts, the loss chart fills, `p` pauses and resumes it, `q` detaches
//! while it goes on, and attaching again shows the whole curve; a run that
//! ends while watched rings the bell unless the settings turn it off.

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

/// Open the dashboard on `dir` with its settings in `xdg`, queue a short
/// run, wait until the runs pane shows it running and then done; the
/// session's bell flag afterwards.
fn bell_after_a_watched_run(name: &str, dir: &std::path::Path, xdg: &std::path::Path) -> String {
    let tmux = Tmux::new(&format!("test-{name}"), "dash");
    tmux.open_with(dir, &[("XDG_CONFIG_HOME", xdg)]);
    tmux.wait_screen(60, "the dashboard", |s| s.contains(" runs"));
    let file = format!("{name}.toml");
    write(&dir.join("configs"), &file, &tiny_gan_config(name, 60, ""));
    tmux.wait_screen(60, "the run running", |s| {
        run_row(s, name).contains("running")
    });
    assert_eq!(
        tmux.format("#{window_bell_flag}"),
        "0",
        "a bell before the end"
    );
    let screen = tmux.wait_screen(180, "the run done, said in the status line", |s| {
        run_row(s, name).contains("done") && s.contains(&format!("run {name}-"))
    });
    // tmux ate the desktop notifications (passthrough is off by default)
    // rather than printing them.
    assert!(
        !screen.contains("notify;") && !screen.contains("]9;"),
        "escape sequences on the screen:\n{screen}"
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    let flag = tmux.format("#{window_bell_flag}");
    tmux.keys("q");
    flag
}

#[test]
fn a_run_that_ends_while_watched_rings_the_bell_unless_turned_off() {
    if !tmux_available() {
        return;
    }
    let dir = scratch("tui-bell");
    let _cleanup = Cleanup(dir.clone());
    std::fs::create_dir_all(dir.join("configs")).expect("configs");
    let xdg = dir.join("xdg");
    std::fs::create_dir_all(xdg.join("scintigan")).expect("settings folder");
    assert_eq!(bell_after_a_watched_run("ring", &dir, &xdg), "1", "no bell");

    std::fs::write(
        xdg.join("scintigan/dashboard.toml"),
        "notifications = false\n",
    )
    .expect("settings");
    assert_eq!(
        bell_after_a_watched_run("quiet", &dir, &xdg),
        "0",
        "a bell with notifications = false"
    );
}
