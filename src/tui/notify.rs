//! Telling the user that a run ended while they looked elsewhere: the
//! terminal bell and a desktop notification (OSC 9, as iTerm2, Windows
//! Terminal, kitty, WezTerm and foot show it; OSC 777, as urxvt, foot and
//! WezTerm show it; terminals that know neither ignore both). Inside tmux
//! the two OSCs travel in tmux's passthrough (`set -g allow-passthrough
//! on`, tmux 3.3 and later); the bell goes to tmux itself, which shows it
//! as its `bell-action` says.
//!
//! What ended is found by comparing two run lists from the daemon, so a
//! run that was already over when the dashboard opened rings nothing.

use crate::daemon::protocol::Snapshot;

/// States a run does not leave by itself.
const ENDED: [&str; 3] = ["done", "failed", "cancelled"];

/// A run that ended between two run lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub id: String,
    pub name: String,
    /// done, failed or cancelled.
    pub state: String,
    pub reason: Option<String>,
}

impl Ended {
    /// The notification's title and body.
    pub fn message(&self) -> (String, String) {
        let title = format!("scintigan: {} {}", self.name, self.state);
        let body = match &self.reason {
            Some(reason) => format!("{} {}: {reason}", self.id, self.state),
            None => format!("{} {}", self.id, self.state),
        };
        (title, body)
    }
}

/// Runs listed in `before` in a state that was not an end, and listed in
/// `after` in one (done, failed or cancelled), in `after`'s order.
pub fn ended(before: &Snapshot, after: &Snapshot) -> Vec<Ended> {
    let was_live: std::collections::HashSet<&str> = before
        .runs
        .iter()
        .filter(|b| !ENDED.contains(&b.state.as_str()))
        .map(|b| b.id.as_str())
        .collect();
    after
        .runs
        .iter()
        .filter(|r| ENDED.contains(&r.state.as_str()) && was_live.contains(r.id.as_str()))
        .map(|r| Ended {
            id: r.id.clone(),
            name: r.name.clone(),
            state: r.state.clone(),
            reason: r.reason.clone(),
        })
        .collect()
}

/// Text safe inside an OSC string: no control characters (which would end
/// or corrupt the sequence) and no `;` (OSC 777's field separator).
fn osc_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ';' => ',',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// Wrap `sequence` in tmux's passthrough: `ESC P tmux;`, the sequence with
/// every ESC doubled, `ESC \`.
fn tmux_passthrough(sequence: &str) -> String {
    format!("\x1bPtmux;{}\x1b\\", sequence.replace('\x1b', "\x1b\x1b"))
}

/// The bytes that ring the bell and raise a desktop notification for
/// `run`; `in_tmux` when the dashboard runs inside tmux (`$TMUX` set).
pub fn escape_sequences(run: &Ended, in_tmux: bool) -> String {
    let (title, body) = run.message();
    let (title, body) = (osc_text(&title), osc_text(&body));
    let osc9 = format!("\x1b]9;{title}: {body}\x07");
    let osc777 = format!("\x1b]777;notify;{title};{body}\x07");
    let mut out = String::from("\x07");
    for osc in [osc9, osc777] {
        if in_tmux {
            out.push_str(&tmux_passthrough(&osc));
        } else {
            out.push_str(&osc);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::protocol::RunInfo;

    fn run(id: &str, state: &str) -> RunInfo {
        RunInfo {
            id: id.into(),
            name: id.split('-').next().unwrap_or(id).into(),
            state: state.into(),
            position: None,
            priority: 0,
            reason: None,
            stalled: false,
            pid: None,
            device: None,
            stage: None,
            epoch: 0,
            step: 0,
            stage_steps: 0,
            retries: 0,
            config_file: None,
            created_at: 0.0,
            updated_at: 0.0,
            heartbeat: None,
            executor: None,
            job_id: None,
            node: None,
            job_state: None,
        }
    }

    fn list(runs: Vec<RunInfo>) -> Snapshot {
        Snapshot {
            daemon_pid: 1,
            runs_dir: "runs".into(),
            configs_dir: "configs".into(),
            runs,
            invalid_configs: Vec::new(),
        }
    }

    #[test]
    fn only_runs_seen_live_that_then_end_are_reported() {
        let before = list(vec![
            run("a-1", "running"),
            run("b-1", "queued"),
            run("c-1", "paused"),
            run("d-1", "done"),
            run("e-1", "running"),
        ]);
        let mut failed = run("b-1", "failed");
        failed.reason = Some("exit status 1".into());
        let after = list(vec![
            run("a-1", "done"),
            failed,
            run("c-1", "cancelled"),
            run("d-1", "done"),
            run("e-1", "running"),
            run("f-1", "done"),
        ]);
        let got: Vec<(String, String)> = ended(&before, &after)
            .into_iter()
            .map(|e| (e.id, e.state))
            .collect();
        assert_eq!(
            got,
            [
                ("a-1".into(), "done".into()),
                ("b-1".into(), "failed".into()),
                ("c-1".into(), "cancelled".into())
            ]
        );
        // A dashboard that just opened has seen nothing live.
        assert!(ended(&list(Vec::new()), &after).is_empty());
        // Retried: failed -> queued is not an end, and failing again is.
        let retried = list(vec![run("b-1", "queued")]);
        assert!(ended(&after, &retried).is_empty());
        assert_eq!(ended(&retried, &list(vec![run("b-1", "failed")])).len(), 1);
    }

    #[test]
    fn bell_then_osc_9_and_777_with_safe_text() {
        let e = Ended {
            id: "cls-1".into(),
            name: "cls".into(),
            state: "failed".into(),
            reason: Some("stage 'x'; bad\x1b]0;evil\x07".into()),
        };
        let out = escape_sequences(&e, false);
        assert_eq!(
            out,
            "\x07\x1b]9;scintigan: cls failed: cls-1 failed: stage 'x', bad ]0,evil \x07\
             \x1b]777;notify;scintigan: cls failed;cls-1 failed: stage 'x', bad ]0,evil \x07"
        );
    }

    #[test]
    fn inside_tmux_the_oscs_pass_through_with_doubled_escapes() {
        let e = Ended {
            id: "g-1".into(),
            name: "g".into(),
            state: "done".into(),
            reason: None,
        };
        let out = escape_sequences(&e, true);
        assert!(out.starts_with("\x07\x1bPtmux;\x1b\x1b]9;scintigan: g done: g-1 done\x07\x1b\\"));
        assert!(
            out.ends_with("\x1bPtmux;\x1b\x1b]777;notify;scintigan: g done;g-1 done\x07\x1b\\")
        );
    }
}
