//! `train.precision` and `train.channels_last` on the CPU: reduced-precision
//! runs follow the float32 curve, repeat exactly with the same seed, keep
//! the fp16 loss scale in checkpoints, resume on the same curve, and write
//! weights `scintigan eval` reads back.

mod common;

use common::*;
use scintigan::store::{Event, EventRecord, RunDir};
use serde_json::Value;
use std::collections::HashMap;
use tch::Tensor;

/// One test at a time: each runs libtorch processes with a thread per core,
/// and three at once on two cores take five times as long.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The run called `name` under `dir/runs`.
fn run_named(dir: &std::path::Path, name: &str) -> RunDir {
    scintigan::store::list_runs(&dir.join("runs"))
        .into_iter()
        .find(|r| r.status().is_ok_and(|s| s.name == name))
        .unwrap_or_else(|| panic!("no run called {name}"))
}

/// `(step, [loss...])` of every step event, GAN or classifier.
fn step_losses(records: &[EventRecord]) -> Vec<(u64, Vec<f64>)> {
    records
        .iter()
        .filter_map(|r| match &r.event {
            Event::GanStep {
                step,
                g_loss,
                d_loss,
                ..
            } => Some((*step, vec![*g_loss, *d_loss])),
            Event::TrainStep { step, loss, .. } => Some((*step, vec![*loss])),
            _ => None,
        })
        .collect()
}

/// Largest relative difference between two runs' losses, step by step.
fn largest_relative_gap(a: &[(u64, Vec<f64>)], b: &[(u64, Vec<f64>)]) -> f64 {
    assert_eq!(
        a.iter().map(|s| s.0).collect::<Vec<_>>(),
        b.iter().map(|s| s.0).collect::<Vec<_>>(),
        "the runs logged different steps"
    );
    a.iter()
        .zip(b)
        .flat_map(|((_, x), (_, y))| x.iter().zip(y))
        .map(|(x, y)| (x - y).abs() / y.abs().max(1e-3))
        .fold(0.0, f64::max)
}

fn checkpoint_tensors(run: &RunDir) -> HashMap<String, Tensor> {
    let (dir, _) = run
        .checkpoints()
        .latest()
        .expect("read checkpoints")
        .expect("a checkpoint");
    scintigan::train::checkpoint::read(&dir.join("weights.safetensors")).expect("checkpoint loads")
}

#[test]
fn reduced_precision_gan_runs_follow_the_fp32_curve_and_repeat_exactly() {
    let _serial = one_at_a_time();
    let dir = scratch("mixed_precision_gan");
    let runs = [
        ("fp32", ""),
        ("bf16", "precision = \"bf16\"\nchannels_last = true"),
        ("bf16-again", "precision = \"bf16\"\nchannels_last = true"),
        ("fp16", "precision = \"fp16\"\nchannels_last = true"),
    ];
    for (name, extra) in runs {
        write(
            &dir,
            &format!("{name}.toml"),
            &tiny_gan_config(name, 10, extra),
        );
        run_ok(&dir, &["run", &format!("{name}.toml")]);
    }
    let curve = |name| step_losses(&events(&run_named(&dir, name)));
    let fp32 = curve("fp32");
    assert_eq!(fp32.len(), 60);
    for name in ["bf16", "fp16"] {
        let gap = largest_relative_gap(&curve(name), &fp32);
        assert!(
            gap < 0.03,
            "{name} strays {:.1} % from the fp32 losses",
            gap * 100.0
        );
        assert!(
            gap > 0.0,
            "{name} gave fp32's exact numbers: autocast did nothing"
        );
    }
    assert_eq!(
        curve("bf16"),
        curve("bf16-again"),
        "same seed, other numbers"
    );

    // Only fp16 has a loss scale, and it is checkpointed with the weights:
    // 2^16 to start, halved once per bad iteration, so a power of two.
    let fp16 = run_named(&dir, "fp16");
    let tensors = checkpoint_tensors(&fp16);
    let scale = f64::try_from(&tensors["amp.scale"]).expect("amp.scale");
    assert!(
        (1.0..=65536.0).contains(&scale) && scale.log2().fract() == 0.0,
        "loss scale {scale}"
    );
    assert!(tensors.contains_key("amp.growth_tracker"));
    assert!(
        !checkpoint_tensors(&run_named(&dir, "bf16"))
            .keys()
            .any(|k| k.starts_with("amp."))
    );
    let warned = events(&fp16).iter().any(|r| {
        matches!(&r.event, Event::Log { level, message } if level == "warn" && message.contains("fp16\" on the CPU"))
    });
    assert!(warned, "no warning that fp16 is slow on the CPU");
}

#[test]
fn a_bf16_channels_last_classifier_follows_fp32_and_its_weights_evaluate() {
    let _serial = one_at_a_time();
    let dir = scratch("mixed_precision_classifier");
    let config = |name: &str, extra: &str| {
        format!(
            "name = \"{name}\"\nkind = \"classifier\"\n\
             model = {{ arch = \"small-cnn\", base_channels = 8 }}\n\
             data = {{ source = \"phantom-bone\", image_size = [64, 32], class_counts = [60, 45, 30], test_fraction = 0.3 }}\n\
             train = {{ epochs = 3, batch_size = 16, lr = 1e-3, optimizer = \"adam\", device = \"cpu\", log_every = 2{extra} }}\n"
        )
    };
    write(&dir, "fp32.toml", &config("fp32", ""));
    write(
        &dir,
        "bf16.toml",
        &config("bf16", ", precision = \"bf16\", channels_last = true"),
    );
    for file in ["fp32.toml", "bf16.toml"] {
        run_ok(&dir, &["run", file]);
    }
    let (fp32, bf16) = (run_named(&dir, "fp32"), run_named(&dir, "bf16"));
    let gap = largest_relative_gap(&step_losses(&events(&bf16)), &step_losses(&events(&fp32)));
    assert!(
        gap < 0.02,
        "bf16 strays {:.1} % from the fp32 losses",
        gap * 100.0
    );

    // The checkpoint was written from channels-last weights; eval reads it
    // back (in float32) and scores the test split as the run's last eval did.
    let last_accuracy = events(&bf16)
        .iter()
        .rev()
        .find_map(|r| match r.event {
            Event::Eval { accuracy, .. } => Some(accuracy),
            _ => None,
        })
        .expect("an eval event");
    let root = bf16.root().to_string_lossy().into_owned();
    let out = run_ok(&dir, &["eval", &root, "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let accuracy = report["accuracy"].as_f64().expect("accuracy");
    assert!(
        (accuracy - last_accuracy).abs() < 1e-12,
        "eval {accuracy} vs run {last_accuracy}"
    );
}

#[test]
fn an_fp16_channels_last_run_stopped_and_resumed_continues_the_same_curve() {
    let _serial = one_at_a_time();
    let dir = scratch("mixed_precision_resume");
    let extra = "precision = \"fp16\"\nchannels_last = true";
    write(&dir, "stopped.toml", &tiny_gan_config("stopped", 30, extra));
    write(
        &dir,
        "straight.toml",
        &tiny_gan_config("straight", 30, extra),
    );

    // Ctrl-C after a few steps writes a checkpoint (NHWC weights, moments,
    // loss scale); --resume carries on from it to the end.
    let child = spawn_run_until_training(&dir, "stopped.toml");
    signal(child.id(), "-INT");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let stopped = run_named(&dir, "stopped");
    let before = step_losses(&events(&stopped)).len();
    assert!(before < 180, "the run finished before Ctrl-C reached it");
    let root = stopped.root().to_string_lossy().into_owned();
    run_ok(&dir, &["run", "--resume", &root]);

    run_ok(&dir, &["run", "straight.toml"]);
    let resumed = step_losses(&events(&stopped));
    let straight = step_losses(&events(&run_named(&dir, "straight")));
    assert_eq!(
        resumed.len(),
        180,
        "each step once ({before} before the stop)"
    );
    let gap = largest_relative_gap(&resumed, &straight);
    assert!(
        gap <= 1e-4,
        "the resumed run strays {gap:e} from the uninterrupted one"
    );
}
