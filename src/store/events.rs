//! `events.jsonl`: the append-only record of everything a run did.
//!
//! One JSON object a line: `{"seq": 12, "t": 1795629147.2, "type": "gan_step", ...}`.
//! `seq` increases by one per event over the whole life of the run (resumes
//! included); `t` is Unix seconds. A torn last line (crash mid-write) is
//! skipped on read and cut when the run resumes.

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// One line of `events.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub seq: u64,
    /// Unix seconds.
    pub t: f64,
    #[serde(flatten)]
    pub event: Event,
}

/// Everything a worker reports. Steps count optimizer steps from the start of
/// the stage (1-based); epochs are 1-based.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A worker process started (or restarted) on this run.
    RunStarted {
        name: String,
        device: String,
        pid: u32,
    },
    /// The worker continues from a checkpoint; events after `step` of `stage`
    /// from the interrupted attempt were removed.
    Resumed {
        stage: String,
        step: u64,
        dropped_events: u64,
    },
    StageStarted {
        stage: String,
        kind: String,
        arch: String,
        epochs: u64,
        steps_per_epoch: u64,
        classes: Vec<String>,
        train_images: u64,
        test_images: u64,
    },
    /// GAN metrics averaged over the steps since the previous one.
    GanStep {
        stage: String,
        epoch: u64,
        step: u64,
        #[serde(with = "number")]
        g_loss: f64,
        #[serde(with = "number")]
        d_loss: f64,
        /// Share of real images the real/fake head calls real.
        #[serde(with = "number")]
        d_real_acc: f64,
        /// Share of generated images the real/fake head calls fake.
        #[serde(with = "number")]
        d_fake_acc: f64,
        /// Share of real images the class head labels correctly.
        #[serde(with = "number")]
        d_class_acc: f64,
        #[serde(with = "number")]
        images_per_sec: f64,
    },
    /// Classifier training metrics averaged over the steps since the previous one.
    TrainStep {
        stage: String,
        epoch: u64,
        step: u64,
        #[serde(with = "number")]
        loss: f64,
        #[serde(with = "number")]
        accuracy: f64,
        #[serde(with = "number")]
        images_per_sec: f64,
    },
    /// Classifier evaluation on the test split at the end of an epoch.
    Eval {
        stage: String,
        epoch: u64,
        step: u64,
        #[serde(with = "number")]
        loss: f64,
        #[serde(with = "number")]
        accuracy: f64,
        classes: Vec<String>,
        /// `confusion[true][predicted]` counts.
        confusion: Vec<Vec<u64>>,
        #[serde(with = "numbers")]
        precision: Vec<f64>,
        #[serde(with = "numbers")]
        recall: Vec<f64>,
        #[serde(with = "numbers")]
        specificity: Vec<f64>,
        #[serde(with = "numbers")]
        f1: Vec<f64>,
        #[serde(with = "number")]
        macro_precision: f64,
        #[serde(with = "number")]
        macro_recall: f64,
        #[serde(with = "number")]
        macro_specificity: f64,
        #[serde(with = "number")]
        macro_f1: f64,
    },
    /// Generation quality per class (all brightness/contrast-matched SSIM,
    /// see `train::ssim`): `ssim`, generated against the class's training
    /// images (the paper's Table 3); `diversity`, generated against
    /// generated (1 = every sample alike); `real`, training images against
    /// each other (the realism ceiling, and the diversity to expect).
    /// Runs written before `diversity` and `real` existed read them empty;
    /// a value that could not be computed (NaN) is written as `null`.
    Ssim {
        stage: String,
        epoch: u64,
        step: u64,
        classes: Vec<String>,
        #[serde(with = "numbers")]
        ssim: Vec<f64>,
        #[serde(default, with = "numbers", skip_serializing_if = "Vec::is_empty")]
        diversity: Vec<f64>,
        #[serde(default, with = "numbers", skip_serializing_if = "Vec::is_empty")]
        real: Vec<f64>,
    },
    /// A PNG grid of generated images, one row per class; `path` is relative
    /// to the run directory.
    Sample {
        stage: String,
        epoch: u64,
        step: u64,
        path: String,
    },
    /// A checkpoint was written; `path` is relative to the run directory.
    Checkpoint {
        stage: String,
        epoch: u64,
        step: u64,
        path: String,
    },
    StageFinished {
        stage: String,
        step: u64,
    },
    /// The worker holds at a step boundary on request (`pause`).
    Paused {
        stage: String,
        step: u64,
    },
    /// The worker goes on after a pause.
    Continued {
        stage: String,
        step: u64,
    },
    /// The worker stopped: `state` is `done`, `failed`, `cancelled` or
    /// `paused` (paused with the device released).
    RunFinished {
        state: String,
        reason: Option<String>,
    },
    Log {
        level: String,
        message: String,
    },
}

impl Event {
    /// A log line at level `info`.
    pub fn info(message: String) -> Self {
        Event::Log {
            level: "info".into(),
            message,
        }
    }

    /// A log line at level `warn`.
    pub fn warning(message: String) -> Self {
        Event::Log {
            level: "warn".into(),
            message,
        }
    }

    /// `(stage, step)` for events tied to a training step.
    pub fn position(&self) -> Option<(&str, u64)> {
        match self {
            Event::GanStep { stage, step, .. }
            | Event::TrainStep { stage, step, .. }
            | Event::Eval { stage, step, .. }
            | Event::Ssim { stage, step, .. }
            | Event::Sample { stage, step, .. }
            | Event::Checkpoint { stage, step, .. }
            | Event::StageFinished { stage, step } => Some((stage, *step)),
            _ => None,
        }
    }
}

/// How much more alike a class's generated images may be than its real
/// ones (mean pairwise SSIM, see [`Event::Ssim`]) before the class counts
/// as collapsed: `diversity > real + COLLAPSE_MARGIN`. Real phantom
/// classes score 0.32-0.36 among themselves at 128x32 (0.45-0.50 once
/// ingested, which aligns the bodies); a generator drawing one image per
/// class scores near 1.
pub const COLLAPSE_MARGIN: f64 = 0.2;

/// Whether a class whose generated images score `diversity` among
/// themselves, and whose real images score `real`, has collapsed (false
/// when either is unknown).
pub fn is_collapsed(diversity: f64, real: f64) -> bool {
    diversity > real + COLLAPSE_MARGIN
}

/// The classes of an [`Event::Ssim`] that have collapsed, in class order.
pub fn collapsed_classes<'a>(
    classes: &'a [String],
    diversity: &[f64],
    real: &[f64],
) -> Vec<&'a str> {
    classes
        .iter()
        .zip(diversity.iter().zip(real))
        .filter(|(_, (d, r))| is_collapsed(**d, **r))
        .map(|(c, _)| c.as_str())
        .collect()
}

/// A number in an event: finite values as JSON numbers, the others as the
/// strings `"NaN"`, `"Infinity"` and `"-Infinity"` (JSON has no literal
/// for them). Reading also takes `null`, which older versions wrote for
/// NaN, so no line becomes unreadable for holding an undefined value.
mod number {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    #[derive(serde::Serialize, serde::Deserialize)]
    #[serde(untagged)]
    pub(super) enum Repr {
        Number(f64),
        Text(String),
        Null(()),
    }

    pub(super) fn to_repr(v: f64) -> Repr {
        if v.is_finite() {
            Repr::Number(v)
        } else if v.is_nan() {
            Repr::Text("NaN".into())
        } else if v > 0.0 {
            Repr::Text("Infinity".into())
        } else {
            Repr::Text("-Infinity".into())
        }
    }

    pub(super) fn from_repr(r: Repr) -> Result<f64, String> {
        match r {
            Repr::Number(v) => Ok(v),
            Repr::Null(()) => Ok(f64::NAN),
            Repr::Text(t) if t == "NaN" => Ok(f64::NAN),
            Repr::Text(t) if t == "Infinity" => Ok(f64::INFINITY),
            Repr::Text(t) if t == "-Infinity" => Ok(f64::NEG_INFINITY),
            Repr::Text(other) => Err(format!(
                "'{other}' is not a number; expected a number, \"NaN\", \"Infinity\" or \"-Infinity\""
            )),
        }
    }

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&to_repr(*v), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        from_repr(Repr::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// A list of [`number`]s.
mod numbers {
    use super::number::{Repr, from_repr, to_repr};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(values: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(values.iter().map(|v| to_repr(*v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Vec::<Repr>::deserialize(d)?
            .into_iter()
            .map(|r| from_repr(r).map_err(D::Error::custom))
            .collect()
    }
}

/// What reading an event log found.
#[derive(Debug, Default)]
pub struct EventHistory {
    pub records: Vec<EventRecord>,
    /// Lines that did not parse (a torn last line, or damage).
    pub skipped_lines: usize,
    /// The complete lines among them, verbatim (without the newline).
    pub unparsed: Vec<String>,
    /// Byte length of the file up to the end of the last complete line.
    pub valid_len: u64,
}

/// Read every event; unparsable lines are counted and skipped, never fatal.
pub fn read_events(path: &Path) -> io::Result<EventHistory> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(EventHistory::default()),
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::new(file);
    let mut history = EventHistory::default();
    let mut line = String::new();
    let mut offset = 0u64;
    loop {
        line.clear();
        let n = match reader.read_line(&mut line) {
            Ok(n) => n,
            // Invalid UTF-8: treat the rest as damage.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                history.skipped_lines += 1;
                break;
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        let complete = line.ends_with('\n');
        match serde_json::from_str::<EventRecord>(line.trim_end()) {
            Ok(rec) if complete => {
                history.records.push(rec);
                offset += n as u64;
                history.valid_len = offset;
            }
            _ if !complete => {
                history.skipped_lines += 1;
                break;
            }
            _ => {
                history.skipped_lines += 1;
                history
                    .unparsed
                    .push(line.trim_end_matches('\n').to_string());
                offset += n as u64;
                history.valid_len = offset;
            }
        }
    }
    Ok(history)
}

/// Where [`EventWriter::retain`] keeps the lines of `events.jsonl` that did
/// not parse.
pub const REJECTED_FILE: &str = "events.rejected.jsonl";

/// What [`EventWriter::retain`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retained {
    /// Records dropped (events after the point a resume continues from).
    pub dropped: u64,
    /// Unparsable lines moved to [`REJECTED_FILE`].
    pub moved: usize,
}

/// Appends events with increasing `seq`.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    file: File,
    next_seq: u64,
}

impl EventWriter {
    /// Open for appending after the existing events, cutting a torn last line.
    pub fn open(path: &Path) -> io::Result<Self> {
        let history = read_events(path)?;
        let next_seq = match history.records.iter().map(|r| r.seq).max() {
            None => 1,
            Some(max) => max.checked_add(1).ok_or_else(|| {
                io::Error::other(format!(
                    "{}: an event has seq {max}, the largest there is, so no later event can be numbered; the log was not written by scintigan",
                    path.display()
                ))
            })?,
        };
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        if file.metadata()?.len() > history.valid_len {
            file.set_len(history.valid_len)?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            next_seq,
        })
    }

    /// Keep only the records `keep` accepts (rewriting the file atomically),
    /// then append after them. `seq` keeps counting from the highest ever
    /// written, so a reader never sees a number reused. Complete lines that
    /// do not parse are never deleted: they move, verbatim, to
    /// [`REJECTED_FILE`] beside the log. Returns how many records were
    /// dropped and how many lines moved.
    ///
    /// Only the holder of the run's lock may cut its log (a second worker
    /// would delete the first's events): `lock` must be the lock on the
    /// folder holding this log.
    pub fn retain(
        &mut self,
        lock: &super::lock::RunLock,
        keep: impl Fn(&EventRecord) -> bool,
    ) -> io::Result<Retained> {
        let same = |a: &Path, b: &Path| {
            a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
        };
        if !self.path.parent().is_some_and(|dir| same(dir, lock.root())) {
            return Err(io::Error::other(format!(
                "{}: not cut: only the holder of this run's lock may cut its event log, and the lock held is on {}",
                self.path.display(),
                lock.root().display()
            )));
        }
        let history = read_events(&self.path)?;
        let before = history.records.len();
        if !history.unparsed.is_empty() {
            let rejected = self.path.with_file_name(REJECTED_FILE);
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&rejected)?;
            let mut text = history.unparsed.join("\n");
            text.push('\n');
            file.write_all(text.as_bytes())?;
            file.sync_data()?;
        }
        let mut text = String::new();
        for rec in history.records.iter().filter(|r| keep(r)) {
            text.push_str(&serde_json::to_string(rec).map_err(io::Error::other)?);
            text.push('\n');
        }
        let kept = text.lines().count();
        super::atomic::write_atomic(&self.path, text.as_bytes())?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        Ok(Retained {
            dropped: (before - kept) as u64,
            moved: history.unparsed.len(),
        })
    }

    /// Append one event (one `write` of one whole line) and return its record.
    pub fn append(&mut self, event: Event) -> io::Result<EventRecord> {
        let rec = EventRecord {
            seq: self.next_seq,
            t: super::time::unix_now(),
            event,
        };
        let mut line = serde_json::to_string(&rec).map_err(io::Error::other)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.next_seq += 1;
        Ok(rec)
    }

    /// Make everything appended so far durable.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("scintigan-events-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("events.jsonl")
    }

    fn log(msg: &str) -> Event {
        Event::Log {
            level: "info".into(),
            message: msg.into(),
        }
    }

    #[test]
    fn torn_last_line_is_skipped_then_cut() {
        let path = temp_file("torn");
        let mut w = EventWriter::open(&path).unwrap();
        w.append(log("a")).unwrap();
        w.append(log("b")).unwrap();
        drop(w);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"seq":3,"t":1.0,"type":"lo"#).unwrap();
        let h = read_events(&path).unwrap();
        assert_eq!(h.records.len(), 2);
        assert_eq!(h.skipped_lines, 1);
        let mut w = EventWriter::open(&path).unwrap();
        let rec = w.append(log("c")).unwrap();
        assert_eq!(rec.seq, 3);
        let h = read_events(&path).unwrap();
        assert_eq!(h.skipped_lines, 0);
        let seqs: Vec<u64> = h.records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
    }

    #[test]
    fn a_log_at_the_largest_seq_is_refused_not_wrapped() {
        let path = temp_file("seq-max");
        std::fs::write(
            &path,
            format!(
                "{{\"seq\":{},\"t\":1.0,\"type\":\"log\",\"level\":\"info\",\"message\":\"x\"}}\n",
                u64::MAX
            ),
        )
        .unwrap();
        let err = EventWriter::open(&path).unwrap_err().to_string();
        assert!(err.contains("the largest there is"), "{err}");
    }

    #[test]
    fn only_the_holder_of_the_runs_lock_may_cut_its_log() {
        let path = temp_file("cut-lock");
        let _ = std::fs::remove_file(&path);
        let mut w = EventWriter::open(&path).unwrap();
        w.append(Event::info("one".into())).unwrap();
        let before = std::fs::read(&path).unwrap();
        let elsewhere = path.parent().unwrap().join("another-run");
        std::fs::create_dir_all(&elsewhere).unwrap();
        let other = super::super::lock::acquire(&elsewhere).unwrap();
        let err = w.retain(&other, |_| false).unwrap_err().to_string();
        assert!(err.contains("only the holder of this run's lock"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before, "nothing cut");
    }

    #[test]
    fn retain_drops_records_and_never_reuses_seq() {
        let path = temp_file("retain");
        let _ = std::fs::remove_file(&path);
        let mut w = EventWriter::open(&path).unwrap();
        for step in 1..=4 {
            w.append(Event::StageFinished {
                stage: "s".into(),
                step,
            })
            .unwrap();
        }
        let lock = super::super::lock::acquire(path.parent().unwrap()).unwrap();
        let dropped = w
            .retain(&lock, |r| {
                r.event.position().is_none_or(|(_, step)| step <= 2)
            })
            .unwrap();
        assert_eq!(dropped.dropped, 2);
        assert_eq!(w.append(log("x")).unwrap().seq, 5);
        let seqs: Vec<u64> = read_events(&path)
            .unwrap()
            .records
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 5]);
    }

    #[test]
    fn json_shape_is_flat_and_tagged() {
        let rec = EventRecord {
            seq: 7,
            t: 1.5,
            event: Event::Checkpoint {
                stage: "g".into(),
                epoch: 2,
                step: 40,
                path: "checkpoints/g-e0002-s000040".into(),
            },
        };
        let text = serde_json::to_string(&rec).unwrap();
        assert_eq!(
            text,
            r#"{"seq":7,"t":1.5,"type":"checkpoint","stage":"g","epoch":2,"step":40,"path":"checkpoints/g-e0002-s000040"}"#
        );
    }

    #[test]
    fn ssim_lines_keep_undefined_scores_and_old_lines_still_read() {
        let event = Event::Ssim {
            stage: "bone".into(),
            epoch: 3,
            step: 30,
            classes: vec!["healthy".into(), "benign".into()],
            ssim: vec![0.41, f64::NAN],
            diversity: vec![0.93, 0.5],
            real: vec![0.52, f64::NAN],
        };
        let text = serde_json::to_string(&event).unwrap();
        assert!(text.contains(r#""ssim":[0.41,"NaN"]"#), "{text}");
        let Event::Ssim {
            ssim,
            diversity,
            real,
            ..
        } = serde_json::from_str(&text).unwrap()
        else {
            panic!("not an ssim event: {text}");
        };
        assert_eq!((ssim[0], diversity.as_slice()), (0.41, &[0.93, 0.5][..]));
        assert!(ssim[1].is_nan() && real[1].is_nan());
        // Written before diversity and real existed.
        let old = r#"{"type":"ssim","stage":"bone","epoch":1,"step":9,"classes":["healthy"],"ssim":[0.2]}"#;
        let Event::Ssim {
            diversity, real, ..
        } = serde_json::from_str(old).unwrap()
        else {
            panic!("old line");
        };
        assert!(diversity.is_empty() && real.is_empty());
        // Written when NaN went out as null.
        let null = r#"{"type":"ssim","stage":"bone","epoch":1,"step":9,"classes":["healthy"],"ssim":[null]}"#;
        let Event::Ssim { ssim, .. } = serde_json::from_str(null).unwrap() else {
            panic!("null line");
        };
        assert!(ssim[0].is_nan());
    }

    #[test]
    fn non_finite_numbers_survive_a_resume_and_unreadable_lines_are_kept() {
        let path = temp_file("nonfinite");
        let rejected = path.with_file_name(REJECTED_FILE);
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&rejected);
        let mut w = EventWriter::open(&path).unwrap();
        w.append(Event::TrainStep {
            stage: "c".into(),
            epoch: 1,
            step: 1,
            loss: f64::NAN,
            accuracy: f64::INFINITY,
            images_per_sec: f64::NEG_INFINITY,
        })
        .unwrap();
        drop(w);
        let damaged = r#"{"seq":2,"t":1.0,"type":"train_step","stage":"c","loss":"#;
        let mut text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(r#""loss":"NaN","accuracy":"Infinity","images_per_sec":"-Infinity""#),
            "{text}"
        );
        text.push_str(damaged);
        text.push('\n');
        std::fs::write(&path, text).unwrap();
        // A resume keeps every record and moves the damaged line aside.
        let mut w = EventWriter::open(&path).unwrap();
        let lock = super::super::lock::acquire(path.parent().unwrap()).unwrap();
        let done = w.retain(&lock, |_| true).unwrap();
        assert_eq!((done.dropped, done.moved), (0, 1));
        let history = read_events(&path).unwrap();
        assert_eq!(history.skipped_lines, 0);
        let Event::TrainStep {
            loss,
            accuracy,
            images_per_sec,
            ..
        } = &history.records[0].event
        else {
            panic!("not a train step");
        };
        assert!(loss.is_nan());
        assert_eq!(
            (*accuracy, *images_per_sec),
            (f64::INFINITY, f64::NEG_INFINITY)
        );
        assert_eq!(
            std::fs::read_to_string(&rejected).unwrap(),
            format!("{damaged}\n")
        );
        let bad = r#"{"seq":3,"t":1.0,"type":"train_step","stage":"c","epoch":1,"step":1,"loss":"lots","accuracy":1,"images_per_sec":1}"#;
        let err = serde_json::from_str::<EventRecord>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'lots' is not a number"), "{err}");
    }

    #[test]
    fn collapse_rule_names_the_classes_far_more_alike_than_their_real_images() {
        let classes: Vec<String> = ["healthy", "metastasis", "benign"].map(String::from).into();
        // One image per class (diversity near 1), a class as varied as its
        // real images, and an unknown ceiling.
        let found = collapsed_classes(&classes, &[0.97, 0.55, 0.99], &[0.52, 0.50, f64::NAN]);
        assert_eq!(found, ["healthy"]);
        assert!(!is_collapsed(0.52 + COLLAPSE_MARGIN, 0.52));
        assert!(is_collapsed(0.53 + COLLAPSE_MARGIN, 0.52));
    }
}
