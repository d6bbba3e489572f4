//! Our backbones compute what torchvision's compute: `make test` first runs
//! scripts/torchvision_reference.py (torchvision 0.28 from PyPI), which saves
//! randomly initialised models' state dicts with `torch.save` as torchvision's
//! checkpoints are (DenseNet's in the legacy file format and key names) and
//! their eval-mode logits for one non-square input. Each `.pth` goes through
//! `scintigan weights import`, loads into our model, and our logits must
//! match within 1e-4 relative to the largest logit.

mod common;

use scintigan::config::ClassifierArch;
use scintigan::nn::backbones::backbone_classifier;
use scintigan::nn::weights::{load_pretrained, normalise_keys, read_tensors};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor, nn};

fn reference_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/torchvision-reference");
    assert!(
        dir.join("efficientnet_b0.io.safetensors").is_file(),
        "{} is missing: run `make test`, which creates it with .venv/bin/python scripts/torchvision_reference.py",
        dir.display()
    );
    dir
}

fn check(arch_name: &str) {
    let dir = reference_dir();
    let scratch = common::scratch(&format!("tv-{arch_name}"));
    let imported = scratch.join("imported.safetensors");
    let out = common::bin()
        .args(["weights", "import"])
        .arg(dir.join(format!("{arch_name}.pth")))
        .args(["--arch", arch_name, "--out"])
        .arg(&imported)
        .output()
        .expect("run weights import");
    assert!(out.status.success(), "{}", common::stderr(&out));

    let arch = ClassifierArch::parse(arch_name).expect("arch");
    let vs = nn::VarStore::new(Device::Cpu);
    let model = backbone_classifier(vs.root(), arch, 1000).expect("model");
    let tensors = normalise_keys(read_tensors(&imported).expect("read imported"));
    let report = load_pretrained(&vs, "", &tensors).expect("load");
    assert!(
        report.fresh.is_empty(),
        "{arch_name}: not loaded: {:?}",
        report.fresh
    );

    let io: HashMap<String, Tensor> =
        read_tensors(&dir.join(format!("{arch_name}.io.safetensors")))
            .expect("read io")
            .into_iter()
            .collect();
    let y = tch::no_grad(|| model.logits(&io["x"], false));
    let want = &io["y"];
    assert_eq!(y.size(), want.size());
    let err = f64::try_from((&y - want).abs().max()).expect("scalar");
    let scale = f64::try_from(want.abs().max()).expect("scalar");
    assert!(
        err <= 1e-4 * scale,
        "{arch_name}: max |ours - torchvision| = {err:e}, largest logit {scale:e}"
    );
}

#[test]
fn resnet34_matches_torchvision() {
    check("resnet34");
}

#[test]
fn resnext50_32x4d_matches_torchvision() {
    check("resnext50_32x4d");
}

#[test]
fn densenet121_with_legacy_keys_matches_torchvision() {
    check("densenet121");
}

#[test]
fn vgg16_matches_torchvision() {
    check("vgg16");
}

#[test]
fn mobilenet_v3_large_matches_torchvision() {
    check("mobilenet_v3_large");
}

#[test]
fn inception_v3_matches_torchvision() {
    check("inception_v3");
}

#[test]
fn efficientnet_b0_matches_torchvision() {
    check("efficientnet_b0");
}

#[test]
fn import_reports_a_wrong_architecture_clearly() {
    let dir = reference_dir();
    let scratch = common::scratch("tv-wrong-arch");
    let out = common::bin()
        .args(["weights", "import"])
        .arg(dir.join("resnet34.pth"))
        .args(["--arch", "resnext50_32x4d", "--out"])
        .arg(scratch.join("x.safetensors"))
        .output()
        .expect("run weights import");
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(err.contains("does not fit resnext50_32x4d"), "{err}");
    assert!(
        err.contains("missing from the file") && err.contains("shape differs"),
        "{err}"
    );
    assert!(
        !scratch.join("x.safetensors").exists(),
        "nothing is written on a mismatch"
    );
}

#[test]
fn multiscale_classifier_trains_from_imported_imagenet_weights() {
    let dir = reference_dir();
    let scratch = common::scratch("tv-multiscale");
    let mut weights = Vec::new();
    for arch in ["densenet121", "vgg16", "resnext50_32x4d"] {
        let out_file = scratch.join(format!("{arch}.safetensors"));
        let out = common::bin()
            .args(["weights", "import"])
            .arg(dir.join(format!("{arch}.pth")))
            .args(["--arch", arch, "--out"])
            .arg(&out_file)
            .output()
            .expect("import");
        assert!(out.status.success(), "{}", common::stderr(&out));
        weights.push(format!("{arch} = \"{}\"", out_file.display()));
    }
    let config = format!(
        "name = \"ms\"\nkind = \"classifier\"\n\
         data = {{ source = \"phantom-bone\", image_size = [64, 32], per_class = 4, test_fraction = 0.25 }}\n\
         model = {{ arch = \"multiscale\", weights = {{ {} }} }}\n\
         train = {{ epochs = 1, batch_size = 3, device = \"cpu\", log_every = 1 }}\n",
        weights.join(", ")
    );
    common::write(&scratch, "ms.toml", &config);
    common::run_ok(&scratch, &["run", "ms.toml"]);
    let run = common::only_run(&scratch);
    let logs: Vec<String> = common::events(&run)
        .into_iter()
        .filter_map(|r| match r.event {
            scintigan::store::Event::Log { message, .. } if message.starts_with("loaded") => {
                Some(message)
            }
            _ => None,
        })
        .collect();
    // Each branch took every one of its tensors (BatchNorm statistics
    // included; torchvision state dict entries less num_batches_tracked and
    // the ImageNet head), or the run would have failed.
    assert_eq!(logs.len(), 3, "{logs:?}");
    for (n, arch) in [
        (604, "densenet121"),
        (26, "vgg16"),
        (265, "resnext50_32x4d"),
    ] {
        let line = logs
            .iter()
            .find(|l| l.contains(arch))
            .expect("a log line per branch");
        assert!(
            line.starts_with(&format!("loaded {n} pretrained tensors")),
            "{line}"
        );
    }
    let evals = common::events(&run)
        .into_iter()
        .filter(|r| matches!(r.event, scintigan::store::Event::Eval { .. }))
        .count();
    assert_eq!(evals, 1);
}

#[test]
fn grad_cam_matches_a_pytorch_reference() {
    use scintigan::nn::gradcam::grad_cam;
    let dir = reference_dir();
    let vs = nn::VarStore::new(Device::Cpu);
    let model = backbone_classifier(vs.root(), ClassifierArch::Resnet34, 1000).expect("model");
    let tensors = normalise_keys(read_tensors(&dir.join("resnet34.pth")).expect("weights"));
    load_pretrained(&vs, "", &tensors).expect("load");
    let io: HashMap<String, Tensor> = read_tensors(&dir.join("resnet34.io.safetensors"))
        .expect("io")
        .into_iter()
        .collect();
    let maps = grad_cam(&model, &io["gray"], None).expect("grad-cam");
    assert_eq!(maps.len(), 1);
    let cam = &maps[0].1;
    assert_eq!(cam.size(), vec![2, 1, 96, 64]);
    let err = f64::try_from((cam - &io["cam"]).abs().max()).expect("scalar");
    assert!(err < 1e-3, "max |ours - pytorch| = {err:e}");
}
