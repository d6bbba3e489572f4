//! One fixture file per class of invalid config, each with the exact
//! `file:line:col` message a user sees.

mod common;

use scintigan::config::{KnownRuns, load_config};
use std::path::Path;

fn errors_of(fixture: &str) -> Vec<String> {
    let dir = Path::new("tests/fixtures");
    let known = KnownRuns::scan(dir, None);
    match load_config(&dir.join(fixture), &known) {
        Ok(spec) => panic!("{fixture} should be invalid, parsed as {spec:?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn assert_first(fixture: &str, expected: &str) {
    let errors = errors_of(fixture);
    assert_eq!(errors[0], expected, "all errors: {errors:#?}");
}

#[test]
fn unknown_key() {
    assert_first(
        "unknown_key.toml",
        "tests/fixtures/unknown_key.toml:5:1: unknown field `epochz`, expected one of `epochs`, `batch_size`, `lr`, `lr_schedule`, `optimizer`, `betas`, `weight_decay`, `seed`, `device`, `precision`, `channels_last`, `checkpoint_every`, `checkpoint_minutes`, `log_every`, `freeze_backbone_epochs`, `ssim_every`, `ssim_samples`, `mode_seeking`, `ema`, `generate_per_class`",
    );
}

#[test]
fn wrong_type() {
    assert_first(
        "wrong_type.toml",
        "tests/fixtures/wrong_type.toml:5:10: invalid type: string \"five\", expected an integer",
    );
}

#[test]
fn out_of_range_value() {
    assert_first(
        "out_of_range.toml",
        "tests/fixtures/out_of_range.toml:5:14: batch_size 0 is out of range; expected an integer from 1 to 65536",
    );
}

#[test]
fn unknown_enum_value() {
    assert_first(
        "unknown_enum.toml",
        "tests/fixtures/unknown_enum.toml:5:13: unknown optimizer 'adamm'; expected one of: radam, adam, sgd",
    );
}

#[test]
fn unknown_precision() {
    assert_first(
        "unknown_precision.toml",
        "tests/fixtures/unknown_precision.toml:5:13: unknown precision 'fp8'; expected one of: fp32, bf16, fp16",
    );
}

#[test]
fn missing_required_field() {
    assert_first(
        "missing_field.toml",
        "tests/fixtures/missing_field.toml:2:1: missing field `kind`",
    );
}

#[test]
fn dependency_cycle_reported_once() {
    let errors = errors_of("dependency_cycle.toml");
    assert_eq!(
        errors,
        vec![
            "tests/fixtures/dependency_cycle.toml:5:10: dependency cycle: a -> b -> a; remove one of these after entries"
        ]
    );
}

#[test]
fn unknown_after_run() {
    let errors = errors_of("unknown_after.toml");
    assert!(
        errors[0].starts_with("tests/fixtures/unknown_after.toml:3:10: unknown run 'no-such-run' in after; expected one of: "),
        "{errors:?}"
    );
    // The sibling configs are offered as the runs one may wait for.
    assert!(errors[0].contains("dependency_cycle"), "{errors:?}");
}

#[test]
fn duplicate_stage_name() {
    assert_first(
        "duplicate_stage.toml",
        "tests/fixtures/duplicate_stage.toml:7:8: duplicate stage name 'pretrain' (first defined on line 3); stage names must be unique",
    );
}

#[test]
fn check_exits_non_zero_and_prints_every_bad_file() {
    let out = common::bin()
        .args([
            "check",
            "tests/fixtures/unknown_enum.toml",
            "tests/fixtures/out_of_range.toml",
        ])
        .output()
        .expect("run check");
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(
        err.contains("unknown_enum.toml:5:13: unknown optimizer 'adamm'"),
        "{err}"
    );
    assert!(
        err.contains("out_of_range.toml:5:14: batch_size 0"),
        "{err}"
    );
    assert!(err.contains("2 of 2 config file(s) invalid"), "{err}");
}

#[test]
fn shipped_examples_are_valid() {
    let mut files: Vec<_> = std::fs::read_dir("configs/examples")
        .expect("configs/examples exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "expected the paper's three stages and the demo, found {files:?}"
    );
    let out = common::bin()
        .arg("check")
        .args(&files)
        .output()
        .expect("run check");
    assert!(out.status.success(), "{}", common::stderr(&out));
}

#[test]
fn binary_runs_with_an_empty_environment() {
    // The rpath embedded at build time finds libtorch: no LD_LIBRARY_PATH.
    let out = common::bin()
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: scintigan"));
}

#[test]
fn sbatch_flag_outside_the_allow_list() {
    let errors = errors_of("slurm_flag.toml");
    assert!(
        errors[0].starts_with(
            "tests/fixtures/slurm_flag.toml:4:1: slurm.extra: '--wrap=id' is not an allowed sbatch flag; expected one of --constraint, --exclude,"
        ),
        "all errors: {errors:#?}"
    );
}

#[test]
fn unknown_executor() {
    assert_first(
        "unknown_executor.toml",
        "tests/fixtures/unknown_executor.toml:3:12: unknown executor 'kubernetes'; expected \"local\" or \"slurm\"",
    );
}

/// `scintigan sweep` writes one valid config per combination and seed into
/// configs/, refuses a bad key with the config error's file:line:col and
/// then writes nothing, and writes nothing new when run again.
#[test]
fn sweep_writes_one_config_per_combination_once_and_nothing_when_one_is_bad() {
    let dir = common::scratch("sweep");
    std::fs::create_dir_all(dir.join("sweeps")).unwrap();
    std::fs::create_dir_all(dir.join("data/bone/healthy")).unwrap();
    common::write(
        &dir.join("sweeps"),
        "cls.toml",
        "# the classifier of the paper's set 5\nname = \"cls\"\nkind = \"classifier\"\ndata = { source = \"folder\", path = \"../data/bone\" }\n\n[train]\nlr = 1e-3 # the paper's\nepochs = 2\n",
    );
    let sweep = [
        "sweep",
        "sweeps/cls.toml",
        "--set",
        "train.lr=3e-4,1e-4",
        "--seeds",
        "2",
    ];
    let out = common::run_ok(&dir, &sweep);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("wrote 4 configs to configs (0 already there): cls-lr3e-4-s1, cls-lr3e-4-s2, cls-lr1e-4-s1, cls-lr1e-4-s2"),
        "{said}"
    );
    let known = KnownRuns::scan(&dir.join("configs"), None);
    let spec = load_config(&dir.join("configs/cls-lr1e-4-s2.toml"), &known).expect("valid");
    assert_eq!(spec.name, "cls-lr1e-4-s2");
    assert_eq!(spec.stage[0].train.lr, 1e-4);
    assert_eq!(spec.stage[0].train.seed, 2);
    assert_eq!(spec.stage[0].data.split_seed, 2);
    // The relative data path meant sweeps/../data/bone; it still does.
    assert_eq!(
        spec.stage[0]
            .data
            .path
            .as_deref()
            .map(|p| p.ends_with("sweeps/../data/bone")),
        Some(true),
        "{:?}",
        spec.stage[0].data.path
    );
    let text = std::fs::read_to_string(dir.join("configs/cls-lr1e-4-s2.toml")).unwrap();
    assert!(
        text.contains("# the classifier of the paper's set 5")
            && text.contains("lr = 1e-4 # the paper's"),
        "{text}"
    );
    // Again: nothing new.
    let out = common::run_ok(&dir, &sweep);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("wrote 0 configs to configs (4 already there)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A misspelt key: the config error, and no file of this sweep written.
    let out = common::run_in(
        &dir,
        &["sweep", "sweeps/cls.toml", "--set", "train.lrr=1,2"],
    );
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(
        err.contains("configs/cls-lrr1.toml:") && err.contains("unknown field `lrr`"),
        "{err}"
    );
    assert!(err.contains("nothing was written"), "{err}");
    assert!(!dir.join("configs/cls-lrr1.toml").exists());
    // Out of range: the validator's words, with the line and column.
    let out = common::run_in(
        &dir,
        &["sweep", "sweeps/cls.toml", "--set", "train.batch_size=0"],
    );
    let err = common::stderr(&out);
    assert!(
        err.contains("configs/cls-batch_size0.toml:")
            && err.contains("batch_size 0 is out of range"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(dir.join("configs")).unwrap().count(), 4);
}
