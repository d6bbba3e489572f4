//! Parameters and forward+backward time per model at 256x128 (height x
//! width), the default whole-body size: GANs for one D step and one G step
//! at the paper's batch 2, classifiers for one training step at batch 4.
//!
//! `make bench` (or `cargo bench --bench model_timing`); set
//! `SCINTIGAN_BENCH_DEVICE=cuda` to time on a GPU. Prints a Markdown table.

use scintigan::config::ClassifierArch;
use scintigan::nn::acgan::{AcganDims, acgan_discriminator, acgan_generator};
use scintigan::nn::attention::CaActivation;
use scintigan::nn::backbones::backbone_classifier;
use scintigan::nn::mu_acgan::{MuAcganDims, mu_acgan_discriminator, mu_acgan_generator};
use scintigan::nn::multiscale::multiscale;
use scintigan::nn::{Discriminator, Generator};
use std::time::Instant;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Reduction, Tensor};

const H: i64 = 256;
const W: i64 = 128;
const RUNS: usize = 3;

fn params(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

/// Median seconds of `RUNS` timed calls after one warm-up.
fn time(device: Device, mut step: impl FnMut()) -> f64 {
    step();
    let mut secs: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            step();
            if let Device::Cuda(_) = device {
                tch::Cuda::synchronize(0);
            }
            start.elapsed().as_secs_f64()
        })
        .collect();
    secs.sort_by(f64::total_cmp);
    secs[RUNS / 2]
}

fn gan(
    name: &str,
    device: Device,
    build: impl Fn(&nn::VarStore) -> (Box<dyn Generator>, Box<dyn Discriminator>),
) {
    let vs = nn::VarStore::new(device);
    let (g, d) = build(&vs);
    let z = Tensor::randn([2, 100], (Kind::Float, device));
    let labels = Tensor::from_slice(&[0i64, 2]).to_device(device);
    let real = Tensor::rand([2, 1, H, W], (Kind::Float, device));
    let secs = time(device, || {
        let fake = g.generate(&z, &labels, true);
        let (s_real, _) = d.judge(&real, true);
        let (s_fake, _) = d.judge(&fake.detach(), true);
        (s_real.mean(Kind::Float) - s_fake.mean(Kind::Float)).backward();
        let (s_gen, c_gen) = d.judge(&fake, true);
        (s_gen.mean(Kind::Float) + c_gen.mean(Kind::Float)).backward();
    });
    println!(
        "| {name} (G + D) | {:>11} | 2 | {:.3} |",
        thousands(params(&vs)),
        secs
    );
}

fn classifier(name: &str, device: Device, build: impl Fn(&nn::VarStore) -> Box<dyn ModuleT>) {
    let vs = nn::VarStore::new(device);
    let model = build(&vs);
    let x = Tensor::rand([4, 1, H, W], (Kind::Float, device));
    let y = Tensor::from_slice(&[0i64, 1, 2, 0]).to_device(device);
    let secs = time(device, || {
        let loss = model.forward_t(&x, true).cross_entropy_loss::<Tensor>(
            &y,
            None,
            Reduction::Mean,
            -100,
            0.0,
        );
        loss.backward();
    });
    println!(
        "| {name} | {:>11} | 4 | {:.3} |",
        thousands(params(&vs)),
        secs
    );
}

fn thousands(n: i64) -> String {
    scintigan::nn::summary::thousands(n)
}

fn main() {
    let device = match std::env::var("SCINTIGAN_BENCH_DEVICE").as_deref() {
        Ok("cuda") => Device::Cuda(0),
        _ => Device::Cpu,
    };
    println!(
        "forward + backward at {H}x{W} on {device:?} ({} threads), median of {RUNS}\n",
        tch::get_num_threads()
    );
    println!("| model (3 classes) | parameters | batch | seconds |");
    println!("|---|---:|---:|---:|");
    gan("mu-acgan", device, |vs| {
        let dims = MuAcganDims {
            n_classes: 3,
            latent_dim: 100,
            base_channels: 32,
            scale_channels: 1,
            height: H,
            width: W,
            ca_activation: CaActivation::Relu,
        };
        (
            Box::new(mu_acgan_generator(vs.root() / "g", dims).expect("size")),
            Box::new(mu_acgan_discriminator(vs.root() / "d", dims)),
        )
    });
    gan("acgan", device, |vs| {
        let dims = AcganDims {
            n_classes: 3,
            latent_dim: 100,
            base_channels: 32,
            height: H,
            width: W,
        };
        (
            Box::new(acgan_generator(vs.root() / "g", dims).expect("size")),
            Box::new(acgan_discriminator(vs.root() / "d", dims)),
        )
    });
    classifier("multiscale", device, |vs| {
        Box::new(multiscale(vs.root(), 3))
    });
    for arch in [
        ClassifierArch::Densenet121,
        ClassifierArch::Vgg16,
        ClassifierArch::Resnext50,
        ClassifierArch::Resnet34,
        ClassifierArch::MobilenetV3Large,
        ClassifierArch::InceptionV3,
        ClassifierArch::EfficientnetB0,
    ] {
        classifier(arch.as_str(), device, |vs| {
            Box::new(backbone_classifier(vs.root(), arch, 3).expect("arch"))
        });
    }
}
