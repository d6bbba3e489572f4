//! What the dashboard knows: the daemon's run list and, per watched run, a
//! fold over its events (metric series, evaluations, samples, log lines).

use super::series::{Series, Smoothed};
use crate::daemon::protocol::{RunInfo, Snapshot};
use crate::store::{Event, EventRecord};
use std::collections::BTreeMap;

/// The x axis of the charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XAxis {
    #[default]
    Step,
    Epoch,
    /// Seconds since the run's first event.
    Time,
}

impl XAxis {
    pub fn next(self) -> Self {
        match self {
            XAxis::Step => XAxis::Epoch,
            XAxis::Epoch => XAxis::Time,
            XAxis::Time => XAxis::Step,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            XAxis::Step => "step",
            XAxis::Epoch => "epoch",
            XAxis::Time => "seconds",
        }
    }
}

/// The three per-class SSIM series of a GAN stage (see `Event::Ssim`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsimKind {
    /// Generated against real (the paper's Table 3): `<stage>/ssim/<class>`.
    VsReal,
    /// Generated against generated (diversity): `<stage>/ssim_gen/<class>`.
    VsGenerated,
    /// Real against real (the ceiling): `<stage>/ssim_real/<class>`.
    RealVsReal,
}

impl SsimKind {
    const ALL: [SsimKind; 3] = [Self::VsReal, Self::VsGenerated, Self::RealVsReal];

    fn segment(self) -> &'static str {
        match self {
            Self::VsReal => "ssim",
            Self::VsGenerated => "ssim_gen",
            Self::RealVsReal => "ssim_real",
        }
    }

    /// The chart legend's name for the series.
    pub fn label(self) -> &'static str {
        match self {
            Self::VsReal => "gen-real",
            Self::VsGenerated => "gen-gen",
            Self::RealVsReal => "real-real",
        }
    }

    pub fn key(self, stage: &str, class: &str) -> String {
        format!("{stage}/{}/{class}", self.segment())
    }

    /// `(kind, stage, class)` of a metric key made by [`SsimKind::key`].
    pub fn parse(key: &str) -> Option<(SsimKind, &str, &str)> {
        let (stage, rest) = key.split_once('/')?;
        let (segment, class) = rest.split_once('/')?;
        let kind = Self::ALL.into_iter().find(|k| k.segment() == segment)?;
        Some((kind, stage, class))
    }
}

/// One scalar metric of one run, with its three x axes.
#[derive(Debug, Clone, Default)]
pub struct Metric {
    pub step: Vec<f32>,
    pub epoch: Vec<f32>,
    pub time: Vec<f32>,
    pub raw: Series,
    pub smoothed: Smoothed,
}

impl Metric {
    fn push(&mut self, step: u64, epoch: f64, time: f64, y: f64) {
        if !y.is_finite() {
            return;
        }
        let sorted = |v: &Vec<f32>, x: f32| v.last().map_or(x, |&l| x.max(l));
        self.step.push(sorted(&self.step, step as f32));
        self.epoch.push(sorted(&self.epoch, epoch as f32));
        self.time.push(sorted(&self.time, time as f32));
        self.raw.push(y as f32);
    }
    pub fn xs(&self, axis: XAxis) -> &[f32] {
        match axis {
            XAxis::Step => &self.step,
            XAxis::Epoch => &self.epoch,
            XAxis::Time => &self.time,
        }
    }
    /// The x column of `axis` and the values to draw: raw, or debiased
    /// EMA at weight `smoothing`.
    pub fn view(&mut self, axis: XAxis, smoothing: Option<f64>) -> (&[f32], &Series) {
        let xs = match axis {
            XAxis::Step => &self.step,
            XAxis::Epoch => &self.epoch,
            XAxis::Time => &self.time,
        };
        let ys = match smoothing {
            Some(w) => self.smoothed.update(&self.raw, w),
            None => &self.raw,
        };
        (xs, ys)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageView {
    pub name: String,
    pub kind: String,
    pub arch: String,
    pub epochs: u64,
    pub steps_per_epoch: u64,
    pub classes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EvalView {
    pub stage: String,
    pub epoch: u64,
    pub accuracy: f64,
    pub classes: Vec<String>,
    pub confusion: Vec<Vec<u64>>,
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub specificity: Vec<f64>,
    pub f1: Vec<f64>,
    pub macro_precision: f64,
    pub macro_recall: f64,
    pub macro_specificity: f64,
    pub macro_f1: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub t: f64,
    pub level: String,
    pub message: String,
}

/// The fold of one run's events.
#[derive(Debug, Clone, Default)]
pub struct RunData {
    pub stages: Vec<StageView>,
    /// Keyed `<stage>/<metric>`, e.g. `bone/g_loss`, `cls/test_accuracy`,
    /// `bone/ssim/metastasis`.
    pub metrics: BTreeMap<String, Metric>,
    pub evals: Vec<EvalView>,
    /// (stage, epoch, path relative to the run directory).
    pub samples: Vec<(String, u64, String)>,
    pub logs: Vec<LogLine>,
    pub first_t: Option<f64>,
    pub last_t: f64,
    pub last_seq: u64,
    /// (stage, epoch, step) of the newest step event.
    pub position: Option<(String, u64, u64)>,
    /// The history has been received; what follows is live.
    pub caught_up: bool,
    /// Per GAN stage, the classes its newest SSIM event found collapsed.
    pub collapsed: BTreeMap<String, Vec<String>>,
}

impl RunData {
    pub fn apply(&mut self, rec: &EventRecord) {
        if rec.seq <= self.last_seq && self.last_seq > 0 {
            return;
        }
        self.last_seq = rec.seq;
        let first = *self.first_t.get_or_insert(rec.t);
        self.last_t = rec.t;
        let time = rec.t - first;
        let mut put = |key: String, step: u64, epoch: f64, y: f64| {
            self.metrics
                .entry(key)
                .or_default()
                .push(step, epoch, time, y);
        };
        match &rec.event {
            Event::StageStarted {
                stage,
                kind,
                arch,
                epochs,
                steps_per_epoch,
                classes,
                ..
            } => {
                self.stages.retain(|s| s.name != *stage);
                self.stages.push(StageView {
                    name: stage.clone(),
                    kind: kind.clone(),
                    arch: arch.clone(),
                    epochs: *epochs,
                    steps_per_epoch: *steps_per_epoch,
                    classes: classes.clone(),
                });
            }
            Event::GanStep {
                stage,
                epoch,
                step,
                g_loss,
                d_loss,
                d_real_acc,
                d_fake_acc,
                d_class_acc,
                ..
            } => {
                let e = fractional_epoch(&self.stages, stage, *epoch, *step);
                for (name, v) in [
                    ("g_loss", g_loss),
                    ("d_loss", d_loss),
                    ("d_real_acc", d_real_acc),
                    ("d_fake_acc", d_fake_acc),
                    ("d_class_acc", d_class_acc),
                ] {
                    put(format!("{stage}/{name}"), *step, e, *v);
                }
                self.position = Some((stage.clone(), *epoch, *step));
            }
            Event::TrainStep {
                stage,
                epoch,
                step,
                loss,
                accuracy,
                ..
            } => {
                let e = fractional_epoch(&self.stages, stage, *epoch, *step);
                put(format!("{stage}/train_loss"), *step, e, *loss);
                put(format!("{stage}/train_accuracy"), *step, e, *accuracy);
                self.position = Some((stage.clone(), *epoch, *step));
            }
            Event::Eval {
                stage,
                epoch,
                step,
                loss,
                accuracy,
                classes,
                confusion,
                precision,
                recall,
                specificity,
                f1,
                macro_precision,
                macro_recall,
                macro_specificity,
                macro_f1,
            } => {
                put(format!("{stage}/test_loss"), *step, *epoch as f64, *loss);
                put(
                    format!("{stage}/test_accuracy"),
                    *step,
                    *epoch as f64,
                    *accuracy,
                );
                self.evals.push(EvalView {
                    stage: stage.clone(),
                    epoch: *epoch,
                    accuracy: *accuracy,
                    classes: classes.clone(),
                    confusion: confusion.clone(),
                    precision: precision.clone(),
                    recall: recall.clone(),
                    specificity: specificity.clone(),
                    f1: f1.clone(),
                    macro_precision: *macro_precision,
                    macro_recall: *macro_recall,
                    macro_specificity: *macro_specificity,
                    macro_f1: *macro_f1,
                });
            }
            Event::Ssim {
                stage,
                epoch,
                step,
                classes,
                ssim,
                diversity,
                real,
            } => {
                for (kind, values) in [
                    (SsimKind::VsReal, ssim),
                    (SsimKind::VsGenerated, diversity),
                    (SsimKind::RealVsReal, real),
                ] {
                    for (c, v) in classes.iter().zip(values) {
                        put(kind.key(stage, c), *step, *epoch as f64, *v);
                    }
                }
                self.collapsed.insert(
                    stage.clone(),
                    crate::store::collapsed_classes(classes, diversity, real)
                        .into_iter()
                        .map(String::from)
                        .collect(),
                );
            }
            Event::Sample {
                stage, epoch, path, ..
            } => self.samples.push((stage.clone(), *epoch, path.clone())),
            Event::Log { level, message } => self.log(rec.t, level, message.clone()),
            Event::RunStarted { device, pid, .. } => {
                self.log(rec.t, "info", format!("worker {pid} started on {device}"));
            }
            Event::Resumed { stage, step, .. } => {
                self.log(rec.t, "info", format!("resumed {stage} from step {step}"));
            }
            Event::Paused { stage, step } => {
                self.log(rec.t, "info", format!("paused at step {step} of {stage}"));
            }
            Event::Continued { stage, step } => {
                self.log(
                    rec.t,
                    "info",
                    format!("continued at step {step} of {stage}"),
                );
            }
            Event::Checkpoint { .. } => {}
            Event::StageFinished { stage, step } => {
                self.log(
                    rec.t,
                    "info",
                    format!("stage {stage} finished at step {step}"),
                );
            }
            Event::RunFinished { state, reason } => {
                let level = if state == "failed" { "error" } else { "info" };
                let text = match reason {
                    Some(r) => format!("run {state}: {r}"),
                    None => format!("run {state}"),
                };
                self.log(rec.t, level, text);
            }
        }
    }

    fn log(&mut self, t: f64, level: &str, message: String) {
        self.logs.push(LogLine {
            t,
            level: level.to_string(),
            message,
        });
    }
}

/// Epoch as a real number (epoch 3, step 2 of 6 -> 2.33), so step events
/// spread over their epoch on the epoch axis.
fn fractional_epoch(stages: &[StageView], stage: &str, epoch: u64, step: u64) -> f64 {
    {
        match stages.iter().find(|s| s.name == stage) {
            Some(s) if s.steps_per_epoch > 0 => {
                let into = step.saturating_sub((epoch - 1) * s.steps_per_epoch);
                (epoch - 1) as f64 + into as f64 / s.steps_per_epoch as f64
            }
            _ => epoch as f64,
        }
    }
}

impl RunData {
    /// Whether the newest SSIM event of any GAN stage found a class collapsed.
    pub fn has_collapse(&self) -> bool {
        self.collapsed.values().any(|classes| !classes.is_empty())
    }

    /// The stage the run is in (or last was).
    pub fn current_stage(&self) -> Option<&StageView> {
        let name = self.position.as_ref().map(|p| p.0.as_str());
        name.and_then(|n| self.stages.iter().find(|s| s.name == n))
            .or(self.stages.last())
    }

    /// Fraction of the current stage done, from the newest step.
    pub fn stage_progress(&self) -> Option<f64> {
        let stage = self.current_stage()?;
        let (_, _, step) = self.position.as_ref()?;
        let total = stage.epochs * stage.steps_per_epoch;
        (total > 0).then(|| (*step as f64 / total as f64).min(1.0))
    }
}

/// Everything the dashboard draws.
#[derive(Debug, Default)]
pub struct State {
    pub snapshot: Snapshot,
    pub runs: BTreeMap<String, RunData>,
    /// Set while the daemon cannot be reached, with the reason.
    pub connection_lost: Option<String>,
    /// Unix seconds "now", for elapsed times and ETAs (fixed in tests).
    pub now: f64,
}

impl State {
    pub fn info(&self, id: &str) -> Option<&RunInfo> {
        self.snapshot.runs.iter().find(|r| r.id == id)
    }
    pub fn apply_events(&mut self, run: &str, records: &[EventRecord]) {
        let data = self.runs.entry(run.to_string()).or_default();
        for rec in records {
            data.apply(rec);
        }
    }
    /// The run's log was rewritten: forget it; its history comes again.
    pub fn reset(&mut self, run: &str) {
        self.runs.insert(run.to_string(), RunData::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, t: f64, event: Event) -> EventRecord {
        EventRecord { seq, t, event }
    }

    #[test]
    fn step_events_become_series_on_three_axes() {
        let mut d = RunData::default();
        d.apply(&rec(
            1,
            100.0,
            Event::StageStarted {
                stage: "g".into(),
                kind: "gan".into(),
                arch: "acgan".into(),
                epochs: 2,
                steps_per_epoch: 4,
                classes: vec!["a".into(), "b".into()],
                train_images: 16,
                test_images: 4,
            },
        ));
        for step in 1..=8u64 {
            d.apply(&rec(
                1 + step,
                100.0 + step as f64,
                Event::GanStep {
                    stage: "g".into(),
                    epoch: 1 + (step - 1) / 4,
                    step,
                    g_loss: step as f64,
                    d_loss: 1.0,
                    d_real_acc: 0.5,
                    d_fake_acc: 0.5,
                    d_class_acc: 0.5,
                    images_per_sec: 10.0,
                },
            ));
        }
        let g = &d.metrics["g/g_loss"];
        assert_eq!(g.raw.len(), 8);
        assert_eq!(g.step[7], 8.0);
        assert_eq!(g.epoch[1], 0.5, "step 2 of 4 in epoch 1");
        assert_eq!(g.epoch[7], 2.0);
        assert_eq!(g.time[7], 8.0);
        assert_eq!(d.stage_progress(), Some(1.0));
        // A record seen twice is applied once.
        let again = rec(
            10,
            200.0,
            Event::Log {
                level: "info".into(),
                message: "x".into(),
            },
        );
        d.apply(&again);
        d.apply(&again);
        assert_eq!(d.logs.len(), 1);
    }
}
