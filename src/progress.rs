//! The progress display of `scintigan run`: an indicatif bar on a terminal,
//! plain periodic lines otherwise (logs, CI, `nohup`).

use indicatif::{ProgressBar, ProgressStyle};
use scintigan::store::{Event, EventRecord};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Seconds between plain progress lines.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

pub struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    last_line: Instant,
    total: u64,
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        Self {
            bar: None,
            plain: enabled && !tty,
            last_line: Instant::now() - PLAIN_EVERY,
            total: 0,
        }
        .with_bar(enabled && tty)
    }

    fn with_bar(mut self, on: bool) -> Self {
        if on {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{prefix:.bold} [{bar:30}] {pos}/{len} steps, {elapsed_precise} elapsed, ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            self.bar = Some(bar);
        }
        self
    }

    fn line(&mut self, text: String, force: bool) {
        if let Some(bar) = &self.bar {
            if force {
                bar.println(text);
            }
        } else if self.plain && (force || self.last_line.elapsed() >= PLAIN_EVERY) {
            eprintln!("{text}");
            self.last_line = Instant::now();
        }
    }

    pub fn observe(&mut self, rec: &EventRecord) {
        match &rec.event {
            Event::StageStarted {
                stage,
                kind,
                arch,
                epochs,
                steps_per_epoch,
                ..
            } => {
                self.total = epochs * steps_per_epoch;
                if let Some(bar) = &self.bar {
                    bar.set_length(self.total);
                    bar.set_position(0);
                    bar.reset_eta();
                    bar.set_prefix(stage.clone());
                }
                self.line(
                    format!(
                        "stage {stage}: {kind} {arch}, {epochs} epochs x {steps_per_epoch} steps"
                    ),
                    true,
                );
            }
            Event::GanStep {
                stage,
                epoch,
                step,
                g_loss,
                d_loss,
                d_real_acc,
                d_fake_acc,
                ..
            } => {
                let msg = format!(
                    "epoch {epoch}  G {g_loss:.3}  D {d_loss:.3}  D acc real {d_real_acc:.2} fake {d_fake_acc:.2}"
                );
                self.step(stage, *step, msg);
            }
            Event::TrainStep {
                stage,
                epoch,
                step,
                loss,
                accuracy,
                ..
            } => {
                self.step(
                    stage,
                    *step,
                    format!("epoch {epoch}  loss {loss:.3}  acc {accuracy:.3}"),
                );
            }
            Event::Eval {
                stage,
                epoch,
                accuracy,
                macro_f1,
                ..
            } => {
                self.line(
                    format!(
                        "{stage} epoch {epoch}: test accuracy {accuracy:.3}, macro F1 {macro_f1:.3}"
                    ),
                    true,
                );
            }
            Event::Ssim {
                stage,
                epoch,
                classes,
                ssim,
                diversity,
                real,
                ..
            } => {
                let parts: Vec<String> = classes
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let mut part =
                            format!("{c} {:.3}", ssim.get(i).copied().unwrap_or(f64::NAN));
                        if let (Some(d), Some(r)) = (diversity.get(i), real.get(i)) {
                            part.push_str(&format!(" (diversity {d:.3}, real {r:.3})"));
                        }
                        part
                    })
                    .collect();
                self.line(
                    format!("{stage} epoch {epoch}: SSIM {}", parts.join(", ")),
                    true,
                );
            }
            Event::Resumed {
                stage,
                step,
                dropped_events,
            } => {
                self.line(format!("resuming stage {stage} after step {step} ({dropped_events} later events dropped)"), true);
                if let Some(bar) = &self.bar {
                    bar.set_position(*step);
                }
            }
            Event::Log { level, message } => self.line(format!("{level}: {message}"), true),
            Event::StageFinished { stage, step } => {
                self.line(format!("stage {stage} finished at step {step}"), true)
            }
            _ => {}
        }
    }

    fn step(&mut self, stage: &str, step: u64, msg: String) {
        if let Some(bar) = &self.bar {
            bar.set_position(step);
            bar.set_message(msg);
        } else {
            self.line(format!("{stage} step {step}/{}  {msg}", self.total), false);
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
