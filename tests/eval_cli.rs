//! `scintigan eval` reproduces the metrics the run recorded, from its final
//! and its best checkpoint, and writes per-image predictions.

mod common;

use common::*;
use scintigan::store::Event;
use serde_json::Value;

#[test]
fn eval_reproduces_the_recorded_metrics_and_writes_predictions() {
    let dir = scratch("eval_cli");
    write(
        &dir,
        "c.toml",
        "kind = \"classifier\"\nmodel = { arch = \"small-cnn\", base_channels = 4 }\n\
         data = { source = \"phantom-bone\", image_size = [32, 16], per_class = 8, test_fraction = 0.25 }\n\
         train = { epochs = 4, batch_size = 4, lr = 3e-3, device = \"cpu\", log_every = 2 }\n",
    );
    run_ok(&dir, &["run", "c.toml"]);
    let run = only_run(&dir);
    let evals: Vec<(u64, f64, Vec<Vec<u64>>)> = events(&run)
        .into_iter()
        .filter_map(|r| match r.event {
            Event::Eval {
                epoch,
                accuracy,
                confusion,
                ..
            } => Some((epoch, accuracy, confusion)),
            _ => None,
        })
        .collect();
    assert_eq!(evals.len(), 4);
    let root = run.root().to_string_lossy().into_owned();

    let out = run_ok(
        &dir,
        &["eval", &root, "--json", "--predictions", "pred.csv"],
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let (_, last_accuracy, last_confusion) = evals.last().expect("an eval").clone();
    assert_eq!(report["images"], 6);
    assert!((report["accuracy"].as_f64().expect("accuracy") - last_accuracy).abs() < 1e-12);
    let confusion: Vec<Vec<u64>> =
        serde_json::from_value(report["confusion"].clone()).expect("confusion");
    assert_eq!(confusion, last_confusion);
    let csv = std::fs::read_to_string(dir.join("pred.csv")).expect("predictions");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "file,true,predicted,p_healthy,p_metastasis,p_benign"
    );
    assert_eq!(lines.len(), 7);
    assert!(lines[1].starts_with("\"phantom:healthy/"), "{}", lines[1]);

    // The best checkpoint holds the epoch with the highest recorded accuracy.
    let best = evals.iter().map(|e| e.1).fold(f64::MIN, f64::max);
    let out = run_ok(&dir, &["eval", &root, "--best", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!((report["accuracy"].as_f64().expect("accuracy") - best).abs() < 1e-12);

    // Human-readable form.
    let out = run_in(&dir, &["eval", &root]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("confusion matrix (rows: true, columns: predicted)"),
        "{text}"
    );
    assert!(text.contains("macro"), "{text}");
}
