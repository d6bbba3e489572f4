//! `scintigan experiment` end to end at the smoke scale: the runs go
//! through a real daemon, and the report holds every row with every metric.

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// A scratch project whose daemon and workers die with the test.
struct Project(PathBuf);

impl Drop for Project {
    fn drop(&mut self) {
        kill_processes_mentioning(&self.0);
    }
}

/// One experiment at a time: workers of two daemons on two cores would
/// starve each other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn experiment(name: &str, args: &[&str]) -> (Project, String) {
    let dir = scratch(name);
    std::fs::create_dir_all(dir.join("configs")).unwrap();
    experiment_in(dir, args)
}

fn experiment_in(dir: PathBuf, args: &[&str]) -> (Project, String) {
    let project = Project(dir.clone());
    let out = run_in(&dir, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "scintigan {args:?} failed:\n{stdout}\n{}",
        stderr(&out)
    );
    (project, stdout)
}

/// The report's table rows: label and cells.
fn table_rows(report: &str) -> Vec<(String, Vec<String>)> {
    report
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| row"))
        .map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect();
            (cells[0].clone(), cells[1..].to_vec())
        })
        .collect()
}

fn number(cell: &str) -> f64 {
    cell.split([' ', '·'])
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("no number in '{cell}'"))
}

/// The folder of `table`'s newest invocation (named by `latest`).
fn latest_dir(project: &Path, table: &str) -> PathBuf {
    let table_dir = project.join("runs/experiments").join(table);
    let tag = std::fs::read_to_string(table_dir.join("latest")).expect("latest");
    table_dir.join(tag.trim())
}

fn is_png(path: &Path) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(img.width() > 100 && img.height() > 100);
}

#[test]
fn table4_reports_five_training_sets_with_every_metric() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // On phantom data sets as a user's data arrive: DICOM files, ingested.
    let dir = scratch("exp-table4");
    std::fs::create_dir_all(dir.join("configs")).unwrap();
    for args in [
        &[
            "data",
            "phantom",
            "--out",
            "ph",
            "--patients",
            "16",
            "--layout",
            "mixed",
            "--size",
            "256x64",
        ][..],
        &[
            "data",
            "ingest",
            "ph/dicom",
            "--out",
            "bone",
            "--labels",
            "ph/labels.csv",
            "--size",
            "128x32",
        ][..],
    ] {
        run_ok(&dir, args);
    }
    let (project, stdout) = experiment_in(
        dir,
        &["experiment", "table4", "--scale", "smoke", "--data", "bone"],
    );
    assert!(stdout.contains("table4: queued 7 configs"), "{stdout}");
    assert!(stdout.contains("7/7 ended"), "{stdout}");
    let dir = latest_dir(&project.0, "table4");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.contains("/bone`"),
        "the ingested folder named as the data: {report}"
    );
    let mut rows = table_rows(&report);
    let labels: Vec<&str> = rows.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        vec![
            "set 1: original",
            "set 2: ACGAN-balanced",
            "set 3: MU-ACGAN-balanced",
            "set 4: traditional augmentation",
            "set 5: MU-ACGAN + augmentation",
            "ACGAN",
            "MU-ACGAN"
        ]
    );
    // The GANs behind sets 2, 3 and 5, with Table 3's columns and numbers.
    assert!(
        report.contains("## The GANs behind the balanced sets, measured as in Table 3"),
        "{report}"
    );
    let gans = rows.split_off(5);
    for (label, cells) in &gans {
        assert_eq!(cells.len(), 10, "{label}: {cells:?}");
        assert!(
            cells[0].contains('·'),
            "Table 3's number beside ours: {cells:?}"
        );
        assert_eq!(cells[9], "1/1");
    }
    is_png(&dir.join("ssim.png"));
    for (label, cells) in &rows {
        // accuracy, precision, recall, specificity, f1, runs done
        assert_eq!(cells.len(), 6, "{label}: {cells:?}");
        for cell in &cells[..5] {
            let v = number(cell);
            assert!((0.0..=1.0).contains(&v), "{label}: {cell}");
            assert!(cell.contains('·'), "paper's number beside ours: {cell}");
        }
        assert_eq!(cells[5], "1/1");
    }
    for metric in ["accuracy", "precision", "recall", "specificity", "f1"] {
        is_png(&dir.join(format!("{metric}.png")));
    }
    // The runs are the daemon's: `status --json` lists them done.
    let status = run_in(&project.0, &["status", "--json"]);
    let snap: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let done = snap["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "done")
        .count();
    assert_eq!(done, 7, "5 classifiers and 2 GAN pipelines");
    // --report rewrites the report from the recorded plan.
    std::fs::remove_file(dir.join("report.md")).unwrap();
    let again = run_in(&project.0, &["experiment", "table4", "--report"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        std::fs::read_to_string(dir.join("report.md")).unwrap(),
        report
    );
}

#[test]
fn table3_reports_ssim_per_class_as_mean_and_sd_over_seeds() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (project, _) = experiment(
        "exp-table3",
        &["experiment", "table3", "--scale", "smoke", "--seeds", "2"],
    );
    let dir = latest_dir(&project.0, "table3");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let rows = table_rows(&report);
    assert_eq!(rows.len(), 2, "{report}");
    assert_eq!(rows[0].0, "ACGAN");
    assert_eq!(rows[1].0, "MU-ACGAN");
    // Per class: SSIM against real, diversity, real-vs-real.
    assert!(
        report.contains(
            "| row | healthy | healthy diversity | healthy real | metastasis | metastasis diversity | metastasis real | benign | benign diversity | benign real |"
        ),
        "{report}"
    );
    for (label, cells) in &rows {
        for cell in &cells[..9] {
            let v = number(cell);
            assert!((-1.0..=1.0).contains(&v), "{label}: {cell}");
            assert!(cell.contains('±'), "two seeds give a spread: {cell}");
        }
        assert_eq!(cells[9], "2/2");
    }
    // The real-vs-real ceiling depends on the data only: both GANs of a
    // seed train on the same images.
    assert_eq!(rows[0].1[2], rows[1].1[2], "healthy real: {report}");
    is_png(&dir.join("ssim.png"));

    // A second invocation gets a folder of its own: the first's report and
    // plan stay, and `--report=TAG` still rebuilds it from its runs.
    let out = run_in(
        &project.0,
        &["experiment", "table3", "--scale", "smoke", "--no-wait"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let second = latest_dir(&project.0, "table3");
    assert_ne!(
        second, dir,
        "the second invocation reused the first's folder"
    );
    assert!(second.join("plan.json").is_file());
    assert_eq!(
        std::fs::read_to_string(dir.join("report.md")).unwrap(),
        report
    );
    let first_tag = dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "--report={}",
            second.file_name().unwrap().to_string_lossy()
        )),
        "the --no-wait hint names its own invocation"
    );
    std::fs::remove_file(dir.join("report.md")).unwrap();
    let again = run_in(
        &project.0,
        &["experiment", "table3", &format!("--report={first_tag}")],
    );
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        std::fs::read_to_string(dir.join("report.md")).unwrap(),
        report
    );
    // A tag that is not there says which are.
    let bad = run_in(&project.0, &["experiment", "--report=nosuch", "table3"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("no invocation 'nosuch' of table3")
            && stderr(&bad).contains(&first_tag),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn unknown_table_and_bad_options_say_what_is_accepted() {
    let dir = scratch("exp-bad");
    let _p = Project(dir.clone());
    let out = run_in(&dir, &["experiment", "table9"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("expected one of table3, table4"),
        "{}",
        stderr(&out)
    );
    let out = run_in(&dir, &["experiment", "table4", "--scale", "huge"]);
    assert!(
        stderr(&out).contains("expected one of smoke, demo, study, paper"),
        "{}",
        stderr(&out)
    );
    let out = run_in(&dir, &["experiment", "table5"]);
    assert!(stderr(&out).contains("weights import"), "{}", stderr(&out));
    let out = run_in(&dir, &["experiment", "table4", "--data", "no/such/dir"]);
    assert!(
        stderr(&out).contains("--data no/such/dir: no such folder"),
        "{}",
        stderr(&out)
    );
}
