//! `scintigan export RUN --csv DIR`: every scalar series of a run as CSV
//! (`<stage>_<metric>.csv` with step, epoch, seconds, value) and each
//! evaluation's confusion matrix and per-class metrics.

use super::state::RunData;
use crate::store::read_events;
use std::fmt::Write as _;
use std::path::Path;

/// Write the CSV files; returns how many were written.
pub fn export_run(run_dir: &Path, out: &Path) -> Result<usize, String> {
    let events = run_dir.join("events.jsonl");
    let history = read_events(&events).map_err(|e| format!("{}: {e}", events.display()))?;
    if history.records.is_empty() {
        return Err(format!("{}: no events to export", events.display()));
    }
    let mut data = RunData::default();
    for rec in &history.records {
        data.apply(rec);
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let write = |name: &str, text: &str| -> Result<(), String> {
        let path = out.join(name);
        crate::store::write_atomic(&path, text.as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    let mut files = 0;
    for (key, m) in &data.metrics {
        let mut text = String::from("step,epoch,seconds,value\n");
        for i in 0..m.raw.len() {
            let _ = writeln!(
                text,
                "{},{},{},{}",
                m.step[i],
                m.epoch[i],
                m.time[i],
                m.raw.y()[i]
            );
        }
        write(&format!("{}.csv", key.replace('/', "_")), &text)?;
        files += 1;
    }
    if !data.evals.is_empty() {
        let mut conf = String::from("stage,epoch,true,predicted,count\n");
        let mut per_class = String::from("stage,epoch,class,precision,recall,specificity,f1\n");
        for e in &data.evals {
            for (i, row) in e.confusion.iter().enumerate() {
                for (j, n) in row.iter().enumerate() {
                    let _ = writeln!(
                        conf,
                        "{},{},{},{},{n}",
                        e.stage, e.epoch, e.classes[i], e.classes[j]
                    );
                }
            }
            for (i, c) in e.classes.iter().enumerate() {
                let g = |v: &Vec<f64>| v.get(i).copied().unwrap_or(0.0);
                let _ = writeln!(
                    per_class,
                    "{},{},{c},{},{},{},{}",
                    e.stage,
                    e.epoch,
                    g(&e.precision),
                    g(&e.recall),
                    g(&e.specificity),
                    g(&e.f1)
                );
            }
            let _ = writeln!(
                per_class,
                "{},{},macro,{},{},{},{}",
                e.stage,
                e.epoch,
                e.macro_precision,
                e.macro_recall,
                e.macro_specificity,
                e.macro_f1
            );
        }
        write("confusion.csv", &conf)?;
        write("class_metrics.csv", &per_class)?;
        files += 2;
    }
    Ok(files)
}
