use super::*;

fn parse(text: &str) -> Result<RunSpec, Vec<ConfigError>> {
    parse_config("t.toml", text, Path::new("/p"), "t", &KnownRuns::default())
}

fn first_error(text: &str) -> String {
    match parse(text) {
        Ok(spec) => panic!("expected an error, got {spec:?}"),
        Err(errs) => errs[0].to_string(),
    }
}

#[test]
fn single_stage_gets_the_paper_defaults() {
    let spec = parse("kind = \"gan\"\n").expect("valid");
    assert_eq!(spec.name, "t");
    let stage = &spec.stage[0];
    assert_eq!(stage.model.arch, "mu-acgan");
    assert_eq!(stage.train.lr, 2e-4);
    assert_eq!(stage.train.batch_size, 2);
    assert_eq!(stage.train.betas, [0.5, 0.999]);
    assert_eq!(stage.train.optimizer, OptimizerKind::Radam);
    let classifier = parse("kind = \"classifier\"\n").expect("valid");
    assert_eq!(classifier.stage[0].train.batch_size, 4);
    assert_eq!(classifier.stage[0].train.betas, [0.9, 0.999]);
}

#[test]
fn frozen_config_parses_back_to_the_same_spec() {
    let text = r#"
name = "pipe"
[[stage]]
name = "pre"
kind = "gan"
model = { arch = "acgan" }
data = { source = "phantom-chest", image_size = [32, 32], augment = { factor = 4, rotation = 5.0, mirror = false } }
[[stage]]
name = "fine"
kind = "gan"
after = ["pre"]
init_from = "run:pre"
model = { decoder_noise = true, minibatch_std = true, twin_classifier = true }
train = { device = "cuda:1", epochs = 3, precision = "bf16", channels_last = true, mode_seeking = 0.5 }
[[stage]]
name = "literal"
kind = "gan"
train = { mode_seeking = 0.0 }
"#;
    let spec = parse(text).expect("valid");
    let frozen = spec.to_toml().expect("serialises");
    let again = parse_config(
        "f.toml",
        &frozen,
        Path::new("/p"),
        "f",
        &KnownRuns::permissive(),
    )
    .expect("frozen config is valid");
    assert_eq!(spec, again);
}

#[test]
fn optimizer_error_names_place_value_and_choices() {
    let err = first_error("kind = \"gan\"\n[train]\noptimizer = \"adamm\"\n");
    assert_eq!(
        err,
        "t.toml:3:13: unknown optimizer 'adamm'; expected one of: radam, adam, sgd"
    );
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let errs = parse("kind = \"gan\"\n[train]\nepochs = 0\nbatch_size = -1\n").unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:?}");
}

#[test]
fn execution_order_respects_after() {
    let text = r#"
[[stage]]
name = "b"
kind = "gan"
after = ["a"]
[[stage]]
name = "a"
kind = "gan"
"#;
    let spec = parse(text).expect("valid");
    assert_eq!(spec.execution_order(), vec![1, 0]);
}

#[test]
fn external_deps_exclude_local_stages() {
    let known = KnownRuns {
        deps: [("other".to_string(), vec![])].into_iter().collect(),
        permissive: false,
    };
    let text = "after = [\"other\"]\n[[stage]]\nname = \"a\"\nkind = \"gan\"\n[[stage]]\nname = \"b\"\nkind = \"gan\"\nafter = [\"a\"]\n";
    let spec = parse_config("t.toml", text, Path::new("/p"), "t", &known).expect("valid");
    assert_eq!(spec.external_deps(), vec!["other".to_string()]);
}

#[test]
fn phantom_classes_cannot_outnumber_what_the_phantom_draws() {
    let e = first_error(
        "kind = \"classifier\"\ndata = { source = \"phantom-bone\", classes = [\"a\", \"b\", \"c\", \"d\"] }\n",
    );
    assert!(e.contains("t.toml:2:") && e.contains("at most 3"), "{e}");
    let e = first_error(
        "kind = \"classifier\"\ndata = { source = \"phantom-bone\", labels = \"l.csv\" }\n",
    );
    assert!(e.contains("labels") && e.contains("folder"), "{e}");
}

#[test]
fn cosine_schedule_matches_torch_cosine_annealing_per_epoch() {
    // torch.optim.lr_scheduler.CosineAnnealingLR(T_max=10), stepped once
    // per epoch: lr * (1 + cos(pi * e / 10)) / 2 for e = 0, 5, 9.
    let s = LrSchedule::Cosine;
    assert!((s.lr_at(0.1, 1, 10) - 0.1).abs() < 1e-15);
    assert!((s.lr_at(0.1, 6, 10) - 0.05).abs() < 1e-15);
    assert!((s.lr_at(0.1, 10, 10) - 0.002_447_174_185_242_318).abs() < 1e-15);
    assert_eq!(LrSchedule::Constant.lr_at(0.1, 10, 10), 0.1);
}

#[test]
fn precision_and_channels_last_belong_to_training_stages() {
    let spec =
        parse("kind = \"classifier\"\ntrain = { precision = \"bf16\", channels_last = true }\n")
            .expect("valid");
    let train = &spec.stage[0].train;
    assert_eq!(
        (train.precision, train.channels_last),
        (Precision::Bf16, true)
    );
    let default = parse("kind = \"gan\"\n").expect("valid");
    assert_eq!(
        (
            default.stage[0].train.precision,
            default.stage[0].train.channels_last
        ),
        (Precision::Fp32, false)
    );
    let e = first_error(
        "[[stage]]\nname = \"g\"\nkind = \"gan\"\n[[stage]]\nname = \"gen\"\nkind = \"generate\"\n\
         init_from = \"run:g\"\ntrain = { precision = \"fp16\" }\n",
    );
    assert!(
        e.starts_with("t.toml:8:23: precision applies to gan and classifier stages only"),
        "{e}"
    );
}

#[test]
fn anti_collapse_settings_belong_to_gan_stages() {
    let err = first_error("kind = \"classifier\"\n[train]\nmode_seeking = 1.0\n");
    assert!(
        err.contains("t.toml:3:") && err.contains("mode_seeking applies to gan stages only"),
        "{err}"
    );
    let err = first_error("kind = \"classifier\"\n[model]\nminibatch_std = true\n");
    assert!(
        err.contains("model.minibatch_std applies to gan stages only"),
        "{err}"
    );
    let err = first_error("kind = \"gan\"\n[model]\narch = \"acgan\"\ndecoder_noise = true\n");
    assert!(
        err.contains("t.toml:4:")
            && err.contains("applies to arch = \"mu-acgan\" only")
            && err.contains("'acgan'"),
        "{err}"
    );
    let err = first_error("kind = \"gan\"\n[train]\nmode_seeking = -1.0\n");
    assert!(err.contains("mode_seeking -1 is out of range"), "{err}");
    let spec = parse("kind = \"gan\"\n[train]\nmode_seeking = 0.0\n").expect("valid");
    assert_eq!(spec.stage[0].train.mode_seeking, 0.0, "0 turns it off");
    let spec = parse("kind = \"gan\"\n").expect("valid");
    assert_eq!(spec.stage[0].train.mode_seeking, DEFAULT_MODE_SEEKING);
}

#[test]
fn the_generator_average_is_a_gan_decay_below_one() {
    let err = first_error("kind = \"classifier\"\n[train]\nema = 0.99\n");
    assert!(
        err.contains("t.toml:3:") && err.contains("ema applies to gan stages only"),
        "{err}"
    );
    let err = first_error("kind = \"gan\"\n[train]\nema = 1.0\n");
    assert!(
        err.contains("t.toml:3:")
            && err.contains("ema 1 is out of range; expected a number from 0 to 0.9999"),
        "{err}"
    );
    let spec = parse("kind = \"gan\"\n[train]\nema = 0.995\n").expect("valid");
    assert_eq!(spec.stage[0].train.ema, 0.995);
    let back = parse(&spec.to_toml().expect("serialises")).expect("round trip");
    assert_eq!(back.stage[0].train.ema, 0.995, "kept through to_toml");
}

#[test]
fn image_fit_is_pad_or_stretch_and_belongs_to_folders() {
    let spec =
        parse("kind = \"gan\"\ndata = { source = \"folder\", path = \"d\" }\n").expect("valid");
    assert_eq!(
        spec.stage[0].data.fit,
        ImageFit::Pad,
        "aspect kept unless asked"
    );
    let spec =
        parse("kind = \"gan\"\ndata = { source = \"folder\", path = \"d\", fit = \"stretch\" }\n")
            .expect("valid");
    assert_eq!(spec.stage[0].data.fit, ImageFit::Stretch);
    let err = first_error(
        "kind = \"gan\"\ndata = { source = \"folder\", path = \"d\", fit = \"crop\" }\n",
    );
    assert!(
        err.contains("t.toml:2:")
            && err.contains("fit 'crop' is not known; expected one of pad, stretch"),
        "{err}"
    );
    let err = first_error("kind = \"gan\"\ndata = { fit = \"stretch\" }\n");
    assert!(err.contains("goes with source = \"folder\""), "{err}");
}

#[test]
fn image_sizes_a_model_or_metric_cannot_take_are_refused_at_check_time() {
    // acgan at [8, 8] builds, trains, and would die at its first SSIM.
    let err = first_error(
        "kind = \"gan\"\nmodel = { arch = \"acgan\" }\ndata = { image_size = [8, 8] }\n",
    );
    assert_eq!(
        err,
        "t.toml:3:23: image_size [8, 8] is too small for a GAN stage: its SSIM scores use an 11-pixel window, so both sides need at least 11 (for acgan: [12, 12])"
    );
    let err = first_error("kind = \"gan\"\ndata = { image_size = [100, 64] }\n");
    assert!(
        err.starts_with(
            "t.toml:2:23: mu-acgan needs image sides divisible by 16; got [100, 64]: e.g. [112, 64]"
        ),
        "{err}"
    );
    let err = first_error(
        "kind = \"classifier\"\nmodel = { arch = \"inception_v3\" }\ndata = { image_size = [128, 32] }\n",
    );
    assert!(
        err.starts_with(
            "t.toml:3:23: inception_v3 needs both image sides at least 75 pixels; got [128, 32]"
        ),
        "{err}"
    );
    // Sizes that work stay quiet.
    for ok in [
        "kind = \"gan\"\nmodel = { arch = \"acgan\" }\ndata = { image_size = [12, 12] }\n",
        "kind = \"classifier\"\nmodel = { arch = \"small-cnn\" }\ndata = { image_size = [8, 8] }\n",
        "kind = \"gan\"\n",
    ] {
        assert!(parse(ok).is_ok(), "{ok}: {:?}", parse(ok).err());
    }
}
