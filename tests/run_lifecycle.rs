//! `scintigan run` end to end: the run directory it writes, checkpoints that
//! load back, Ctrl-C, `kill -9` and `--resume`, and seeded determinism.

mod common;

use common::*;
use scintigan::nn::Generator;
use scintigan::nn::acgan::{AcganDims, acgan_discriminator, acgan_generator};
use scintigan::store::{CheckpointDir, Event, RunState};
use scintigan::train::checkpoint;
use tch::{Device, Kind, Tensor, nn};

#[test]
fn run_writes_a_complete_run_directory_and_checkpoints_load_back() {
    let dir = scratch("run_complete");
    write(&dir, "tiny.toml", &tiny_gan_config("tiny", 3, ""));
    run_ok(&dir, &["run", "tiny.toml"]);
    let run = only_run(&dir);

    // status.json says done, config.toml is the frozen, valid config.
    let status = run.status().expect("status");
    assert_eq!(status.state, RunState::Done);
    assert_eq!(status.completed_stages, vec!["tiny".to_string()]);
    let spec = run.spec().expect("frozen config parses");
    assert_eq!(spec.stage[0].train.epochs, 3);

    // seq increases by one; the GAN actually trained (losses move).
    let records = events(&run);
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=records.len() as u64).collect::<Vec<_>>());
    let losses = gan_losses(&records);
    assert_eq!(
        losses.len(),
        3 * 6,
        "3 epochs of 6 steps (24 train images, batch 4)"
    );
    let first = losses[0].1;
    assert!(
        losses.iter().any(|(_, l)| (l - first).abs() > 1e-3),
        "losses never moved: {losses:?}"
    );
    assert!(
        matches!(records.last().map(|r| &r.event), Some(Event::RunFinished { state, .. }) if state == "done")
    );

    // One sample grid per epoch, a real PNG of 3 class rows.
    for epoch in 1..=3 {
        let png = run.root().join(format!("samples/tiny-e{epoch:04}.png"));
        let img = image::open(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert_eq!(img.height(), 3 * 32 + 2 * 2);
    }

    // The final checkpoint loads into freshly built models, key for key, and
    // the generator reproduces what the saved weights compute.
    let (ckpt, state) = run
        .checkpoints()
        .latest()
        .expect("read latest")
        .expect("a checkpoint");
    assert!(state.stage_complete);
    assert_eq!(state.step, 18);
    let tensors = checkpoint::read(&ckpt.join(CheckpointDir::WEIGHTS)).expect("read weights");
    let dims = AcganDims {
        n_classes: 3,
        latent_dim: 8,
        base_channels: 4,
        height: 32,
        width: 16,
    };
    let g_vs = nn::VarStore::new(Device::Cpu);
    let d_vs = nn::VarStore::new(Device::Cpu);
    let g = acgan_generator(g_vs.root(), dims).expect("generator");
    let _d = acgan_discriminator(d_vs.root(), dims);
    checkpoint::load_var_store(&g_vs, "g.", &tensors, true).expect("generator weights load");
    checkpoint::load_var_store(&d_vs, "d.", &tensors, true).expect("discriminator weights load");
    let fc = &tensors["g.fc.weight"];
    let loaded = g_vs.variables()["fc.weight"].shallow_clone();
    assert_eq!(
        f64::try_from((fc - loaded).abs().max()).expect("scalar"),
        0.0
    );
    let z = Tensor::randn([2, 8], (Kind::Float, Device::Cpu));
    let x = g.generate(&z, &Tensor::from_slice(&[0i64, 2]), false);
    assert_eq!(x.size(), vec![2, 1, 32, 16]);
    assert!(tensors.contains_key("opt_g.step") && tensors.contains_key("opt_d.m.fc_class.weight"));
}

#[test]
fn same_seed_gives_the_same_numbers_on_cpu() {
    let dir = scratch("determinism");
    write(&dir, "a.toml", &tiny_gan_config("a", 2, ""));
    write(&dir, "b.toml", &tiny_gan_config("b", 2, ""));
    run_ok(&dir, &["run", "a.toml"]);
    run_ok(&dir, &["run", "b.toml"]);
    let runs = scintigan::store::list_runs(&dir.join("runs"));
    let a = gan_losses(&events(&runs[0]));
    let b = gan_losses(&events(&runs[1]));
    assert_eq!(a, b);
}

#[test]
fn ctrl_c_checkpoints_exits_130_and_resume_finishes() {
    let dir = scratch("ctrl_c");
    write(&dir, "long.toml", &tiny_gan_config("long", 400, ""));
    let child = spawn_run_until_training(&dir, "long.toml");
    signal(child.id(), "-INT");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("scintigan run --resume"),
        "{}",
        stderr(&out)
    );

    let run = only_run(&dir);
    let status = run.status().expect("status");
    assert_eq!(status.state, RunState::Cancelled);
    let state = latest_checkpoint(&run);
    assert!(!state.stage_complete);
    assert_eq!(state.step, status.step);

    // Resume with fewer epochs left to go: edit nothing, just continue.
    let root = run.root().to_string_lossy().into_owned();
    let resumed = spawn_quiet(&dir, &["run", "--resume", &root]);
    // Stop the long resumed run again after it made progress, and check the
    // step numbers continued rather than restarted.
    let progressed = wait_for(60, || {
        gan_losses(&events(&run))
            .last()
            .is_some_and(|(s, _)| *s > state.step + 3)
    });
    assert!(progressed, "resumed run made no progress");
    signal(resumed.id(), "-INT");
    let out = resumed.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130));
    let steps: Vec<u64> = gan_losses(&events(&run)).iter().map(|(s, _)| *s).collect();
    assert!(
        steps.windows(2).all(|w| w[1] == w[0] + 1),
        "steps not contiguous: {steps:?}"
    );
}

#[test]
fn kill_9_mid_epoch_then_resume_records_each_step_once_on_the_same_curve() {
    let dir = scratch("kill9");
    // Checkpoints on a 0.1 s timer, so one lands mid-epoch before the kill.
    let extra = "checkpoint_minutes = 0.0015\ncheckpoint_every = 1000";
    write(&dir, "crash.toml", &tiny_gan_config("crash", 150, extra));
    write(&dir, "clean.toml", &tiny_gan_config("clean", 150, extra));
    let mut child = spawn_quiet(&dir, &["run", "crash.toml"]);
    let runs_dir = dir.join("runs");
    let mid_epoch_checkpoint = wait_for(60, || {
        scintigan::store::list_runs(&runs_dir)
            .first()
            .is_some_and(|r| {
                let ckpt = r.checkpoints().latest().ok().flatten();
                let steps = gan_losses(&events(r));
                ckpt.is_some_and(|(_, s)| {
                    s.step_in_epoch % 6 != 0 && steps.last().is_some_and(|(l, _)| *l > s.step + 2)
                })
            })
    });
    assert!(
        mid_epoch_checkpoint,
        "no mid-epoch checkpoint followed by more steps within 60 s"
    );
    signal(child.id(), "-KILL");
    let _ = child.wait();

    let run = only_run(&dir);
    let before = gan_losses(&events(&run)).len();
    let root = run.root().to_string_lossy().into_owned();
    run_ok(&dir, &["run", "--resume", &root]);
    assert_eq!(run.status().expect("status").state, RunState::Done);

    let records = events(&run);
    let steps: Vec<u64> = gan_losses(&records).iter().map(|(s, _)| *s).collect();
    assert_eq!(
        steps,
        (1..=900).collect::<Vec<u64>>(),
        "every step exactly once ({before} before the kill)"
    );
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "seq not increasing");
    assert!(
        records
            .iter()
            .any(|r| matches!(r.event, Event::Resumed { .. }))
    );

    // The resumed curve is the one an uninterrupted run draws.
    run_ok(&dir, &["run", "clean.toml"]);
    let clean = scintigan::store::list_runs(&runs_dir)
        .into_iter()
        .find(|r| r.status().is_ok_and(|s| s.name == "clean"))
        .expect("clean run");
    let a = gan_losses(&records);
    let b = gan_losses(&events(&clean));
    assert_eq!(a.len(), b.len());
    for ((s, x), (_, y)) in a.iter().zip(&b) {
        assert!(
            (x - y).abs() <= 1e-4 * y.abs().max(1.0),
            "step {s}: resumed {x} vs uninterrupted {y}"
        );
    }
}

/// A small-cnn classifier on 64x32 bone phantoms, augmented x5 on the fly
/// with Poisson noise: 120 training items an epoch, batch 4.
fn augmented_classifier_config(name: &str, epochs: u32) -> String {
    format!(
        r#"name = "{name}"
kind = "classifier"
[data]
source = "phantom-bone"
image_size = [64, 32]
per_class = 10
augment = {{ factor = 5, rotation = 8.0, translation = 2.0, mirror = true, poisson_counts = 80.0, seed = 4 }}
[model]
arch = "small-cnn"
base_channels = 4
[train]
epochs = {epochs}
batch_size = 4
lr = 1e-3
optimizer = "adam"
device = "cpu"
log_every = 1
seed = 9
"#
    )
}

/// `(step, loss)` of every classifier step event, and the test accuracy
/// of every evaluation.
fn classifier_curve(records: &[scintigan::store::EventRecord]) -> (Vec<(u64, f64)>, Vec<f64>) {
    let mut steps = Vec::new();
    let mut evals = Vec::new();
    for r in records {
        match &r.event {
            Event::TrainStep { step, loss, .. } => steps.push((*step, *loss)),
            Event::Eval { accuracy, .. } => evals.push(*accuracy),
            _ => {}
        }
    }
    (steps, evals)
}

#[test]
fn an_augmented_classifier_stopped_mid_epoch_resumes_on_the_same_batches() {
    let dir = scratch("classifier_resume");
    write(
        &dir,
        "stopped.toml",
        &augmented_classifier_config("stopped", 40),
    );
    write(
        &dir,
        "straight.toml",
        &augmented_classifier_config("straight", 40),
    );
    let child = spawn_quiet(&dir, &["run", "stopped.toml"]);
    let runs_dir = dir.join("runs");
    let training = wait_for(60, || {
        scintigan::store::list_runs(&runs_dir)
            .first()
            .is_some_and(|r| classifier_curve(&events(r)).0.len() >= 45)
    });
    assert!(training, "no 45 classifier steps within 60 s");
    signal(child.id(), "-INT");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130));
    let stopped = only_run(&dir);
    let state = latest_checkpoint(&stopped);
    assert!(
        state.step < 1200,
        "the run ended before the stop reached it"
    );
    let root = stopped.root().to_string_lossy().into_owned();
    run_ok(&dir, &["run", "--resume", &root]);
    run_ok(&dir, &["run", "straight.toml"]);
    let straight = scintigan::store::list_runs(&runs_dir)
        .into_iter()
        .find(|r| r.status().is_ok_and(|s| s.name == "straight"))
        .expect("straight run");

    let (resumed_steps, resumed_evals) = classifier_curve(&events(&stopped));
    let (straight_steps, straight_evals) = classifier_curve(&events(&straight));
    assert_eq!(
        resumed_steps.iter().map(|s| s.0).collect::<Vec<_>>(),
        (1..=1200).collect::<Vec<u64>>(),
        "each step once (stopped at step {}, {} of its epoch)",
        state.step,
        state.step_in_epoch
    );
    for ((s, a), (_, b)) in resumed_steps.iter().zip(&straight_steps) {
        assert!(
            (a - b).abs() <= 1e-4 * b.abs().max(1.0),
            "step {s}: resumed loss {a} vs uninterrupted {b} (stopped at step {})",
            state.step
        );
    }
    assert_eq!(resumed_evals, straight_evals, "test accuracy per epoch");
}

#[test]
fn a_second_worker_on_a_running_run_is_refused_and_no_event_is_lost() {
    let dir = scratch("second_worker");
    write(&dir, "long.toml", &tiny_gan_config("long", 3000, ""));
    let child = spawn_run_until_training(&dir, "long.toml");
    let run = only_run(&dir);
    let root = run.root().to_string_lossy().into_owned();
    let holder = format!("pid {}", child.id());
    let logged = gan_losses(&events(&run)).len();
    // `run --resume` by config, and the daemon's `worker` command.
    for args in [
        &["run", "long.toml", "--resume"][..],
        &["worker", &root][..],
    ] {
        let out = run_in(&dir, args);
        assert!(!out.status.success(), "{args:?} was let in");
        let err = stderr(&out);
        assert!(
            err.contains(&holder) && err.contains("refusing to start a second worker"),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    let status = run.status().expect("status");
    assert_eq!(
        (status.state, status.pid),
        (RunState::Running, Some(child.id()))
    );
    // The first worker carries on; once it stops, every step it took is
    // in the log once: nothing was cut behind its back.
    let more = wait_for(60, || gan_losses(&events(&run)).len() >= logged + 10);
    assert!(more, "the first worker stopped logging");
    signal(child.id(), "-INT");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let steps: Vec<u64> = gan_losses(&events(&run)).iter().map(|(s, _)| *s).collect();
    let state = latest_checkpoint(&run);
    assert_eq!(steps, (1..=state.step).collect::<Vec<u64>>());
}

#[test]
fn a_nan_metric_and_an_unreadable_line_survive_a_resume() {
    let dir = scratch("nan_resume");
    write(&dir, "long.toml", &tiny_gan_config("long", 3000, ""));
    let child = spawn_run_until_training(&dir, "long.toml");
    signal(child.id(), "-INT");
    assert_eq!(
        child.wait_with_output().expect("wait").status.code(),
        Some(130)
    );
    let run = only_run(&dir);
    let last = events(&run).last().map_or(0, |r| r.seq);
    // An SSIM that could not be computed, as the worker writes it, and a
    // line that no version can read.
    let nan = format!(
        r#"{{"seq":{},"t":1.0,"type":"ssim","stage":"long","epoch":1,"step":1,"classes":["healthy"],"ssim":["NaN"]}}"#,
        last + 1
    );
    let damaged = r#"{"seq":"garbled"#;
    let mut log = std::fs::read_to_string(run.events_path()).expect("events");
    log.push_str(&format!("{nan}\n{damaged}\n"));
    std::fs::write(run.events_path(), log).expect("write events");

    let root = run.root().to_string_lossy().into_owned();
    let resumed = spawn_quiet(&dir, &["run", "--resume", &root]);
    let went_on = wait_for(60, || {
        events(&run)
            .iter()
            .any(|r| matches!(r.event, Event::Resumed { .. }))
    });
    assert!(went_on, "no resume within 60 s");
    signal(resumed.id(), "-INT");
    let _ = resumed.wait_with_output();

    let history = scintigan::store::read_events(&run.events_path()).expect("events");
    let ssim = history.records.iter().find_map(|r| match &r.event {
        Event::Ssim { ssim, .. } if r.seq == last + 1 => Some(ssim.clone()),
        _ => None,
    });
    assert!(
        ssim.is_some_and(|s| s.len() == 1 && s[0].is_nan()),
        "the NaN score was lost"
    );
    assert_eq!(
        history.skipped_lines, 0,
        "the damaged line stayed in the log"
    );
    let rejected = std::fs::read_to_string(run.root().join(scintigan::store::REJECTED_FILE))
        .expect("events.rejected.jsonl");
    assert_eq!(rejected, format!("{damaged}\n"));
    let worker_log = std::fs::read_to_string(run.log_path()).expect("worker.log");
    assert!(
        worker_log.contains("1 line(s) of events.jsonl did not parse"),
        "{worker_log}"
    );
}

#[test]
fn a_damaged_control_file_is_reported_and_the_last_request_stands() {
    let dir = scratch("control-damaged");
    write(&dir, "long.toml", &tiny_gan_config("long", 400, ""));
    let mut child = spawn_run_until_training(&dir, "long.toml");
    let run = only_run(&dir);
    scintigan::store::write_atomic(&run.control_path(), b"{\"pause\": tru").expect("control.json");
    let warned = wait_for(30, || {
        events(&run).iter().any(|r| {
            matches!(&r.event, Event::Log { level, message }
                if level == "warn" && message.contains("control.json: not a control request")
                    && message.contains("the last request stands (running)"))
        })
    });
    assert!(warned, "no warn event for the damaged control.json");
    // It went on training, and a good request after the bad one is obeyed.
    let at = gan_losses(&events(&run)).len();
    assert!(wait_for(30, || gan_losses(&events(&run)).len() > at + 5));
    scintigan::store::write_atomic(&run.control_path(), b"{\"cancel\": true}")
        .expect("control.json");
    let stopped = wait_for(30, || child.try_wait().ok().flatten().is_some());
    assert!(
        stopped,
        "the cancel request after the damaged one was ignored"
    );
    assert_eq!(run.status().expect("status").state, RunState::Cancelled);
}
