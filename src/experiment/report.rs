//! Reading an experiment's finished runs and writing its report:
//! `runs/experiments/<table>/<tag>/report.md` with one PNG bar chart per metric.

use super::plot::{Series, bar_chart};
use super::{Plan, Row, RowKind, paper};
use crate::store::{self, Event, RunDir, RunState};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The classifier metrics a row reports (macro averages, accuracy overall).
pub const CLASSIFIER_METRICS: [&str; 5] = ["accuracy", "precision", "recall", "specificity", "f1"];

/// Column suffixes of a GAN row beside each class's SSIM: its generated
/// images against each other, and its real images against each other.
const DIVERSITY: &str = " diversity";
const REAL: &str = " real";

/// The class a GAN column belongs to, and whether it is one of the extra
/// (diversity, real) columns.
fn class_of(column: &str) -> (&str, bool) {
    match column
        .strip_suffix(DIVERSITY)
        .or_else(|| column.strip_suffix(REAL))
    {
        Some(class) => (class, true),
        None => (column, false),
    }
}

/// One run of a row.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub name: String,
    /// The run directory's id, once the daemon made it.
    pub id: Option<String>,
    /// queued, running, done, failed, ... or "missing".
    pub state: String,
    pub reason: Option<String>,
    pub values: BTreeMap<String, f64>,
}

#[derive(Debug, Clone)]
pub struct RowResult {
    pub row: Row,
    pub outcomes: Vec<RunOutcome>,
}

/// The newest run directory whose status names `name`.
pub fn newest_run(runs_dir: &Path, name: &str) -> Option<(RunDir, store::Status)> {
    store::list_runs(runs_dir)
        .into_iter()
        .filter_map(|r| r.status().ok().map(|s| (r, s)))
        .filter(|(_, s)| s.name == name)
        .max_by(|(_, a), (_, b)| a.created_at.total_cmp(&b.created_at))
}

/// The numbers a row takes from a run: the last test evaluation of a
/// classifier (its final epoch; never the best, which would be chosen on
/// the test split), or a GAN stage's last per-class SSIM.
pub fn run_values(run: &RunDir, row: &Row) -> BTreeMap<String, f64> {
    let history = store::read_events(&run.events_path()).unwrap_or_default();
    let mut values = BTreeMap::new();
    for rec in history.records.iter().rev() {
        match (&rec.event, row.kind) {
            (
                Event::Eval {
                    accuracy,
                    macro_precision,
                    macro_recall,
                    macro_specificity,
                    macro_f1,
                    ..
                },
                RowKind::Classifier,
            ) => {
                for (k, v) in CLASSIFIER_METRICS.iter().zip([
                    accuracy,
                    macro_precision,
                    macro_recall,
                    macro_specificity,
                    macro_f1,
                ]) {
                    values.insert(k.to_string(), *v);
                }
                return values;
            }
            (
                Event::Ssim {
                    stage,
                    classes,
                    ssim,
                    diversity,
                    real,
                    ..
                },
                RowKind::Gan,
            ) if row.stage.is_empty() || *stage == row.stage => {
                for (i, c) in classes.iter().enumerate() {
                    for (suffix, column) in [("", ssim), (DIVERSITY, diversity), (REAL, real)] {
                        if let Some(v) = column.get(i).filter(|v| v.is_finite()) {
                            values.insert(format!("{c}{suffix}"), *v);
                        }
                    }
                }
                return values;
            }
            _ => {}
        }
    }
    values
}

/// Every row's runs as they stand now.
pub fn collect(runs_dir: &Path, plan: &Plan) -> Vec<RowResult> {
    plan.rows
        .iter()
        .map(|row| RowResult {
            row: row.clone(),
            outcomes: row
                .runs
                .iter()
                .map(|name| match newest_run(runs_dir, name) {
                    Some((run, status)) => RunOutcome {
                        name: name.clone(),
                        id: Some(run.id()),
                        state: status.state.to_string(),
                        reason: status.exit_reason.clone(),
                        values: if status.state == RunState::Done {
                            run_values(&run, row)
                        } else {
                            BTreeMap::new()
                        },
                    },
                    None => RunOutcome {
                        name: name.clone(),
                        id: None,
                        state: "missing".into(),
                        reason: None,
                        values: BTreeMap::new(),
                    },
                })
                .collect(),
        })
        .collect()
}

/// Mean and sample standard deviation (n - 1; `None` below two values).
pub fn mean_std(values: &[f64]) -> Option<(f64, Option<f64>)> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.len() >= 2)
        .then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    Some((mean, sd))
}

/// The columns of a table: classifier metrics, or the GAN's classes.
fn columns(results: &[RowResult]) -> Vec<String> {
    if results.iter().any(|r| r.row.kind == RowKind::Gan) {
        let mut cols: Vec<String> = Vec::new();
        for r in results {
            for o in &r.outcomes {
                for k in o.values.keys() {
                    if !cols.contains(k) {
                        cols.push(k.clone());
                    }
                }
            }
        }
        let order = crate::config::BONE_CLASSES;
        if cols.is_empty() {
            cols = order.iter().map(|s| s.to_string()).collect();
        }
        // The paper's class order; other names after, alphabetically; per
        // class its SSIM, then diversity and real.
        cols.sort_by_key(|c| {
            let (class, extra) = class_of(c);
            (
                order
                    .iter()
                    .position(|o| *o == class)
                    .unwrap_or(order.len()),
                class.to_string(),
                extra,
                c.clone(),
            )
        });
        cols
    } else {
        CLASSIFIER_METRICS.iter().map(|s| s.to_string()).collect()
    }
}

fn cell(v: Option<(f64, Option<f64>)>) -> String {
    match v {
        None => "-".into(),
        Some((m, None)) => format!("{m:.3}"),
        Some((m, Some(sd))) => format!("{m:.3} ± {sd:.3}"),
    }
}

/// A short bar label that the chart font can draw.
fn short(label: &str) -> String {
    let head = label.split([':', ',', '(']).next().unwrap_or(label).trim();
    head.chars().take(12).collect::<String>().to_uppercase()
}

/// [`short`] labels, numbered where two would read the same.
fn short_labels(results: &[RowResult]) -> Vec<String> {
    let labels: Vec<String> = results.iter().map(|r| short(&r.row.label)).collect();
    labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if labels.iter().filter(|m| *m == l).count() > 1 {
                format!("{} {}", i + 1, l.chars().take(9).collect::<String>())
            } else {
                l.clone()
            }
        })
        .collect()
}

/// Write `report.md` and the charts into `dir`; returns the files written.
///
/// A plan's classifier rows and GAN rows are two sections, each a table and
/// its charts: table 4 also reports the GANs behind its sets 2, 3 and 5,
/// beside the paper's Table 3.
pub fn write_report(
    dir: &Path,
    plan: &Plan,
    results: &[RowResult],
) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", plan.table.title());
    let data = match &plan.data {
        super::DataChoice::Phantom => "in-memory bone-scan phantoms".to_string(),
        super::DataChoice::Folder(p) => format!("`{}`", p.display()),
    };
    let _ = writeln!(
        md,
        "Data: {data}. Scale: {:?}. Seeds: {} (seed k sets the weight initialisation, data order and the patient split; each cell is the mean ± sample standard deviation over seeds). Classifier cells are the last epoch's test metrics (accuracy overall; precision, recall, specificity and F1 macro-averaged one-vs-rest); SSIM cells are the bone GAN's last per-class score (generated against real); `diversity` is its generated images against each other and `real` its real training images against each other (the ceiling, and the diversity to expect): a class whose diversity exceeds its real by more than {} has collapsed.\n",
        plan.scale,
        plan.seeds,
        store::COLLAPSE_MARGIN
    );
    let _ = writeln!(
        md,
        "Each cell: ours · the paper's (its private data, 77 test images).\n"
    );
    let mut written = Vec::new();
    let of_kind = |kind: RowKind| -> Vec<RowResult> {
        results
            .iter()
            .filter(|r| r.row.kind == kind)
            .cloned()
            .collect()
    };
    let (classifiers, gans) = (of_kind(RowKind::Classifier), of_kind(RowKind::Gan));
    if !classifiers.is_empty() {
        let paper = paper::numbers(plan.table);
        section(dir, &mut md, &mut written, &classifiers, &paper)?;
    }
    if !gans.is_empty() {
        let paper = if classifiers.is_empty() {
            paper::numbers(plan.table)
        } else {
            let _ = writeln!(
                md,
                "## The GANs behind the balanced sets, measured as in Table 3\n"
            );
            paper::numbers(super::Table::T3)
        };
        section(dir, &mut md, &mut written, &gans, &paper)?;
    }
    if !plan.notes.is_empty() {
        let _ = writeln!(md, "Notes:\n");
        for n in &plan.notes {
            let _ = writeln!(md, "- {n}");
        }
        let _ = writeln!(md);
    }
    let _ = writeln!(md, "Runs:\n");
    for r in results {
        for o in &r.outcomes {
            let _ = writeln!(
                md,
                "- {}: `{}` {}{}",
                r.row.label,
                o.id.as_deref().unwrap_or(&o.name),
                o.state,
                o.reason
                    .as_deref()
                    .map(|x| format!(" ({x})"))
                    .unwrap_or_default()
            );
        }
    }
    let path = dir.join("report.md");
    store::write_atomic(&path, md.as_bytes())?;
    written.insert(0, path);
    Ok(written)
}

/// One section of a report: the table of `results` (rows of one kind)
/// beside `paper`'s numbers (by row position), then its charts.
fn section(
    dir: &Path,
    md: &mut String,
    written: &mut Vec<PathBuf>,
    results: &[RowResult],
    paper: &paper::PaperColumns,
) -> std::io::Result<()> {
    let cols = columns(results);
    let paper_of = |col: &str, row: usize| -> Option<f64> {
        paper
            .iter()
            .find(|(c, _)| *c == col)
            .and_then(|(_, v)| v.get(row).copied().flatten())
    };
    let stats = |r: &RowResult, col: &str| -> Option<(f64, Option<f64>)> {
        let vals: Vec<f64> = r
            .outcomes
            .iter()
            .filter_map(|o| o.values.get(col).copied())
            .collect();
        mean_std(&vals)
    };
    let _ = write!(md, "| row |");
    for c in &cols {
        let _ = write!(md, " {c} |");
    }
    let _ = write!(md, " runs done |\n|---|");
    for _ in &cols {
        let _ = write!(md, "---|");
    }
    let _ = writeln!(md, "---|");
    for (i, r) in results.iter().enumerate() {
        let _ = write!(md, "| {} |", r.row.label);
        for c in &cols {
            let ours = cell(stats(r, c));
            match paper_of(c, i) {
                Some(p) => {
                    let _ = write!(md, " {ours} · {p:.3} |");
                }
                None => {
                    let _ = write!(md, " {ours} |");
                }
            }
        }
        let done = r.outcomes.iter().filter(|o| o.state == "done").count();
        let _ = writeln!(md, " {done}/{} |", r.outcomes.len());
    }
    let _ = writeln!(md);
    if results.iter().any(|r| r.row.kind == RowKind::Gan) {
        // Groups: classes (their SSIM columns); series: each row, ours then
        // the paper's.
        let cols: Vec<String> = cols.iter().filter(|c| !class_of(c).1).cloned().collect();
        let mut series = Vec::new();
        for (i, r) in results.iter().enumerate() {
            series.push(Series {
                name: format!("{} OURS", short(&r.row.label)),
                values: cols.iter().map(|c| stats(r, c)).collect(),
            });
            series.push(Series {
                name: format!("{} PAPER", short(&r.row.label)),
                values: cols
                    .iter()
                    .map(|c| paper_of(c, i).map(|p| (p, None)))
                    .collect(),
            });
        }
        let groups: Vec<String> = cols.iter().map(|c| c.to_uppercase()).collect();
        let img = bar_chart("SSIM PER CLASS", &groups, &series, 1.0);
        let path = dir.join("ssim.png");
        store::save_png_atomic(&path, img)?;
        let _ = writeln!(md, "![SSIM per class](ssim.png)\n");
        written.push(path);
    } else {
        for c in &cols {
            let groups = short_labels(results);
            let series = vec![
                Series {
                    name: "OURS (MEAN +- SD)".into(),
                    values: results.iter().map(|r| stats(r, c)).collect(),
                },
                Series {
                    name: "PAPER".into(),
                    values: (0..results.len())
                        .map(|i| paper_of(c, i).map(|p| (p, None)))
                        .collect(),
                },
            ];
            let img = bar_chart(&c.to_uppercase(), &groups, &series, 1.0);
            let path = dir.join(format!("{c}.png"));
            store::save_png_atomic(&path, img)?;
            let _ = writeln!(md, "![{c}]({c}.png)");
            written.push(path);
        }
        let _ = writeln!(md);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std() {
        let (m, sd) = mean_std(&[0.7, 0.8, 0.9]).unwrap();
        assert!((m - 0.8).abs() < 1e-12);
        assert!((sd.unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(mean_std(&[0.5]), Some((0.5, None)));
        assert_eq!(mean_std(&[]), None);
    }
}
