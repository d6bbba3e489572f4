//! A three-stage pipeline in one file: GAN pretraining on chest phantoms,
//! fine-tuning on bone phantoms from those weights, then a classifier.

mod common;

use common::*;
use scintigan::store::{Event, RunState};

const PIPELINE: &str = r#"
name = "pipe"

[[stage]]
name = "chest"
kind = "gan"
data = { source = "phantom-chest", image_size = [32, 16], per_class = 6 }
model = { arch = "acgan", latent_dim = 8, base_channels = 4 }
train = { epochs = 2, batch_size = 4, device = "cpu", log_every = 2 }

[[stage]]
name = "bone"
kind = "gan"
init_from = "run:chest"
data = { source = "phantom-bone", image_size = [32, 16], per_class = 6 }
model = { arch = "acgan", latent_dim = 8, base_channels = 4 }
train = { epochs = 2, batch_size = 4, device = "cpu", log_every = 2 }

[[stage]]
name = "classify"
kind = "classifier"
after = ["bone"]
data = { source = "phantom-bone", image_size = [32, 16], per_class = 10, test_fraction = 0.3 }
model = { arch = "small-cnn", base_channels = 4 }
train = { epochs = 3, batch_size = 4, lr = 1e-3, device = "cpu", log_every = 2 }
"#;

#[test]
fn pipeline_runs_every_stage_and_transfers_weights() {
    let dir = scratch("pipeline");
    write(&dir, "pipe.toml", PIPELINE);
    run_ok(&dir, &["run", "pipe.toml"]);
    let run = only_run(&dir);
    let status = run.status().expect("status");
    assert_eq!(status.state, RunState::Done);
    assert_eq!(status.completed_stages, vec!["chest", "bone", "classify"]);

    let records = events(&run);
    // Fine-tuning started from the pretrained GAN; the class-dependent layers
    // (4 chest classes -> 3 bone classes) were re-initialised.
    let init = records.iter().find_map(|r| match &r.event {
        Event::Log { message, .. } if message.starts_with("initialised from") => {
            Some(message.clone())
        }
        _ => None,
    });
    let init = init.expect("an initialised-from log event");
    assert!(
        init.contains("g.label_embed.weight") && init.contains("d.fc_class.weight"),
        "{init}"
    );
    assert!(
        !init.contains("g.conv1.weight"),
        "shared layers must transfer: {init}"
    );

    // The classifier evaluated every epoch; each confusion matrix counts the
    // whole test split (3 per class).
    let evals: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Eval {
                confusion,
                accuracy,
                precision,
                ..
            } => Some((confusion.clone(), *accuracy, precision.len())),
            _ => None,
        })
        .collect();
    assert_eq!(evals.len(), 3);
    for (confusion, accuracy, n_precision) in evals {
        // 2 of the 5 patients per class (round(0.3 * 5)), both views each.
        assert_eq!(confusion.iter().flatten().sum::<u64>(), 12);
        assert!((0.0..=1.0).contains(&accuracy));
        assert_eq!(n_precision, 3);
    }
    // Every stage left a final checkpoint.
    for stage in ["chest", "bone", "classify"] {
        assert!(
            run.checkpoints().stage_final(stage).is_some(),
            "{stage} has no final checkpoint"
        );
    }
}

#[test]
fn unknown_arch_is_refused_before_a_run_directory_exists() {
    let dir = scratch("unknown_arch");
    write(
        &dir,
        "r50.toml",
        "kind = \"classifier\"\nmodel = { arch = \"resnet50\" }\ntrain = { epochs = 1, device = \"cpu\" }\n",
    );
    let out = run_in(&dir, &["run", "r50.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "r50.toml:2:18: unknown classifier arch 'resnet50'; expected one of: multiscale,"
        ),
        "{}",
        stderr(&out)
    );
    assert!(
        !dir.join("runs").exists(),
        "nothing is written for an invalid config"
    );
}

#[test]
fn images_too_small_for_a_model_or_metric_are_refused_by_check_with_the_size_to_use() {
    let dir = scratch("too_small");
    write(
        &dir,
        "small.toml",
        "kind = \"classifier\"\nmodel = { arch = \"densenet121\" }\ndata = { image_size = [32, 16], per_class = 4 }\ntrain = { epochs = 1, device = \"cpu\" }\n",
    );
    // acgan at [8, 8] used to pass check, train, then die at its first SSIM.
    write(
        &dir,
        "tiny-gan.toml",
        "kind = \"gan\"\nmodel = { arch = \"acgan\" }\ndata = { image_size = [8, 8], per_class = 4 }\ntrain = { epochs = 1, device = \"cpu\" }\n",
    );
    for (file, want) in [
        (
            "small.toml",
            "small.toml:3:23: densenet121 needs both image sides at least 32 pixels; got [32, 16]: e.g. [32, 32]",
        ),
        (
            "tiny-gan.toml",
            "tiny-gan.toml:3:23: image_size [8, 8] is too small for a GAN stage",
        ),
    ] {
        let out = run_in(&dir, &["check", file]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert!(all.contains(want), "{all}");
        let out = run_in(&dir, &["run", file]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains(want), "{}", stderr(&out));
    }
    assert!(
        scintigan::store::list_runs(&dir.join("runs")).is_empty(),
        "no run directory for a config that cannot run"
    );
}

/// The paper's GAN-balanced training set with augmentation (its set 5):
/// GAN, generate stage balancing the classes, classifier on the balanced,
/// augmented training split.
const BALANCED: &str = r#"
name = "balanced"

[[stage]]
name = "gan"
kind = "gan"
data = { source = "phantom-bone", image_size = [32, 16], class_counts = [12, 8, 4], test_fraction = 0.25 }
model = { arch = "acgan", latent_dim = 8, base_channels = 4 }
train = { epochs = 1, batch_size = 4, device = "cpu" }

[[stage]]
name = "gen"
kind = "generate"
init_from = "run:gan"
train = { device = "cpu" }

[[stage]]
name = "cls"
kind = "classifier"
data = { source = "phantom-bone", image_size = [32, 16], class_counts = [12, 8, 4], test_fraction = 0.25, gan_samples = "run:gen", augment = { factor = 2 } }
model = { arch = "small-cnn", base_channels = 4 }
train = { epochs = 1, batch_size = 6, device = "cpu" }
"#;

#[test]
fn generate_stage_balances_the_classifier_training_split() {
    let dir = scratch("balanced");
    write(&dir, "balanced.toml", BALANCED);
    run_ok(&dir, &["run", "balanced.toml"]);
    let run = only_run(&dir);
    // Patients 6 / 4 / 2 (two views each); test 2 / 1 / 1 patients, so the
    // training split holds 8 / 6 / 2 images: the GAN draws 0 / 2 / 6.
    let manifest =
        std::fs::read_to_string(run.root().join("generated/gen/manifest.csv")).expect("manifest");
    assert_eq!(manifest.lines().count(), 1 + 8, "{manifest}");
    let png = image::open(run.root().join("generated/gen/benign/benign-gen-00006.png"))
        .expect("16-bit PNG");
    assert_eq!((png.width(), png.height()), (16, 32));
    assert!(matches!(png, image::DynamicImage::ImageLuma16(_)));
    assert!(!run.root().join("generated/gen/healthy").exists());
    // What was written is scored against the training images of its class:
    // one row per class that got images, every score a finite SSIM.
    let quality =
        std::fs::read_to_string(run.root().join("generated/gen/quality.csv")).expect("quality");
    assert_eq!(
        quality.lines().next(),
        Some("class,written,scored,ssim,diversity,real,generator_ssim,generator_diversity"),
        "the written images' scores, then the generator's on fresh draws"
    );
    let rows: Vec<Vec<&str>> = quality
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert!(rows.iter().all(|r| r.len() == 8), "{quality}");
    assert_eq!(
        rows.iter().map(|r| (r[0], r[1], r[2])).collect::<Vec<_>>(),
        [("metastasis", "2", "2"), ("benign", "6", "6")],
        "{quality}"
    );
    for row in &rows {
        for v in &row[3..] {
            let v: f64 = v.parse().expect("a number");
            assert!(v.is_finite() && v > -1.0 && v <= 1.0, "{quality}");
        }
    }
    assert!(
        events(&run).iter().any(|r| matches!(&r.event,
            Event::Log { message, .. } if message.starts_with("written images against the training images: metastasis SSIM"))),
        "the generate stage logs its scores"
    );
    // The classifier trains on 8 + 8 + 8, doubled by augmentation; the test
    // split (4 / 2 / 2) is untouched.
    let started = events(&run)
        .into_iter()
        .find_map(|r| match r.event {
            Event::StageStarted {
                stage,
                train_images,
                test_images,
                ..
            } if stage == "cls" => Some((train_images, test_images)),
            _ => None,
        })
        .expect("classifier started");
    assert_eq!(started, (48, 8));
}

#[test]
fn init_from_another_finished_run_by_name() {
    let dir = scratch("init_from_run");
    let gan = |name: &str, extra: &str| {
        format!(
            "name = \"{name}\"\nkind = \"gan\"\n{extra}\ndata = {{ image_size = [32, 16], per_class = 4 }}\n\
             model = {{ arch = \"acgan\", latent_dim = 8, base_channels = 4 }}\n\
             train = {{ epochs = 1, batch_size = 4, device = \"cpu\" }}\n"
        )
    };
    write(&dir, "pre.toml", &gan("pre", ""));
    write(
        &dir,
        "fine.toml",
        &gan("fine", "init_from = \"run:pre\"\nafter = [\"pre\"]"),
    );
    // Before `pre` has run there is nothing to start from.
    let out = run_in(&dir, &["run", "fine.toml"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no finished run named 'pre'"),
        "{}",
        stderr(&out)
    );
    run_ok(&dir, &["run", "pre.toml"]);
    run_ok(&dir, &["run", "fine.toml"]);
    let fine = scintigan::store::list_runs(&dir.join("runs"))
        .into_iter()
        .rfind(|r| {
            r.status()
                .is_ok_and(|s| s.name == "fine" && s.state == RunState::Done)
        })
        .expect("a finished fine run");
    let init = events(&fine).into_iter().find_map(|r| match r.event {
        Event::Log { message, .. } if message.starts_with("initialised from") => Some(message),
        _ => None,
    });
    let init = init.expect("initialised-from log");
    assert!(
        init.contains("/pre-") && init.contains("checkpoints/pre-e0001"),
        "{init}"
    );
}

/// Realistic bone phantoms at 128x64 (five times the paper's 162:126:58
/// images, split per patient): a small CNN with a cosine schedule must beat
/// the majority-class baseline of the held-out patients clearly, and find
/// metastases rather than call everything healthy. About a minute here.
const LEARNS: &str = r#"
name = "learns"
kind = "classifier"
[data]
source = "phantom-bone"
image_size = [128, 64]
class_counts = [810, 630, 290]
test_fraction = 0.3
[model]
arch = "small-cnn"
base_channels = 16
[train]
epochs = 20
batch_size = 16
lr = 3e-4
lr_schedule = "cosine"
optimizer = "adam"
device = "cpu"
log_every = 20
"#;

#[test]
fn the_classifier_beats_the_majority_baseline_on_held_out_phantom_patients() {
    let dir = scratch("learns");
    write(&dir, "learns.toml", LEARNS);
    run_ok(&dir, &["run", "learns.toml"]);
    let records = events(&only_run(&dir));
    let (confusion, accuracy, recall) = records
        .iter()
        .rev()
        .find_map(|r| match &r.event {
            Event::Eval {
                confusion,
                accuracy,
                recall,
                ..
            } => Some((confusion.clone(), *accuracy, recall.clone())),
            _ => None,
        })
        .expect("an eval event");
    // The baseline: always answer the largest class of the test split.
    let rows: Vec<u64> = confusion.iter().map(|r| r.iter().sum()).collect();
    let majority = *rows.iter().max().expect("rows") as f64 / rows.iter().sum::<u64>() as f64;
    assert!(
        accuracy >= majority + 0.10,
        "final test accuracy {accuracy:.3} is not clearly above the majority baseline {majority:.3}: {confusion:?}"
    );
    assert!(
        recall[1] >= 0.3,
        "metastasis recall {:.3}: {confusion:?}",
        recall[1]
    );
}
