//! `make demo` end to end in tmux (at the smoke scale): phantom data sets
//! written and ingested, the pipeline config written into configs/, the
//! dashboard opened on a terminal, and the pipeline going through all its
//! stages in it.

mod common;

use common::tmux::{Cleanup, Tmux, tmux_available};
use common::*;
use scintigan::store::RunState;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

#[test]
fn make_demo_shows_the_pipeline_through_every_stage_in_the_dashboard() {
    if !tmux_available() {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = scratch("demo-tmux");
    let _cleanup = Cleanup(dir.clone());
    let session = Tmux::new("demo", "demo");
    // What `make demo` runs after the build, in a scratch project folder,
    // on a terminal (CI unset, as for a user).
    let shell = format!(
        "cd '{}' && env -u CI DEMO_DIR='{}' DEMO_SCALE=smoke scripts/demo.sh; sleep 30",
        repo.display(),
        dir.display()
    );
    session.start(&shell);

    // Watch the runs pane: which stages it shows, until the run is done.
    let stages = ["chest-pre", "bone-fine", "generate", "classifie"];
    let mut seen = BTreeSet::new();
    let mut last = String::new();
    let done = wait_for(240, || {
        std::thread::sleep(Duration::from_millis(100));
        last = session.capture();
        for line in last.lines().filter(|l| l.contains(" demo ")) {
            for s in stages {
                if line.contains(s) {
                    seen.insert(s);
                }
            }
        }
        last.lines()
            .any(|l| l.contains(" demo ") && l.contains(" done "))
    });
    assert!(
        done,
        "the demo run never showed done; seen stages {seen:?}; last screen:\n{last}"
    );
    assert!(
        seen.contains("chest-pre") && seen.contains("classifie"),
        "the dashboard showed stages {seen:?}; last screen:\n{last}"
    );
    // The data sets were made as a user's would arrive, and the run went
    // through every stage.
    assert!(
        dir.join("data/demo-smoke/chest/Viral Pneumonia/images")
            .is_dir()
    );
    assert!(dir.join("data/demo-smoke/bone/manifest.csv").is_file());
    assert!(dir.join("configs/demo-pipeline.toml").is_file());
    let run = only_run(&dir);
    let status = run.status().expect("status");
    assert_eq!(status.state, RunState::Done);
    assert_eq!(
        status.completed_stages,
        vec!["chest-pretrain", "bone-finetune", "generate", "classifier"]
    );
    // The classifier's confusion matrix and metrics reached the dashboard.
    assert!(last.contains("Confusion"), "{last}");
}
