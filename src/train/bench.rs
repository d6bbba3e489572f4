//! Training-step timing (`scintigan bench`, `make bench`): the exact step a
//! run takes (forward, backward, optimizer; for GANs one D and one G
//! update), on random data already on the device.

use super::classifier::ClassifierTrainer;
use super::gan::GanTrainer;
use super::step_loop::StageTrainer;
use super::{TrainError, device_name, select_device};
use crate::config::{ClassifierArch, DeviceChoice, GanArch, KnownRuns, Precision, parse_config};
use crate::data::{Dataset, Split};
use serde::Serialize;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// What to time: `steps` training steps (after one warm-up) of `arch` at
/// `height` x `width` with batch `batch` and 3 classes.
#[derive(Debug, Clone, Copy)]
pub struct BenchRequest<'a> {
    pub arch: &'a str,
    pub height: usize,
    pub width: usize,
    pub batch: usize,
    pub steps: usize,
    pub device: DeviceChoice,
    /// As `train.precision`.
    pub precision: Precision,
    /// As `train.channels_last`.
    pub channels_last: bool,
    /// `model.base_channels` and `model.latent_dim` (None: the defaults).
    pub base_channels: Option<usize>,
    pub latent_dim: Option<usize>,
    /// `train.mode_seeking` of a GAN step; 0 (the default here) is the
    /// literal objective the PyTorch yardstick runs.
    pub mode_seeking: f64,
}

impl<'a> BenchRequest<'a> {
    /// Float32, NCHW.
    pub fn new(arch: &'a str, [height, width]: [usize; 2], batch: usize, steps: usize) -> Self {
        Self {
            arch,
            height,
            width,
            batch,
            steps,
            device: DeviceChoice::Auto,
            precision: Precision::Fp32,
            channels_last: false,
            base_channels: None,
            latent_dim: None,
            mode_seeking: 0.0,
        }
    }

    pub fn on(self, device: DeviceChoice) -> Self {
        Self { device, ..self }
    }
}

#[derive(Debug, Serialize)]
pub struct BenchResult {
    pub arch: String,
    /// `[height, width]`.
    pub size: [usize; 2],
    pub batch: usize,
    pub steps: usize,
    pub device: String,
    pub precision: Precision,
    pub channels_last: bool,
    pub threads: i32,
    pub median_seconds: f64,
    pub min_seconds: f64,
    pub images_per_second: f64,
}

fn random_dataset(n: usize, h: usize, w: usize, classes: usize) -> Dataset {
    Dataset {
        images: Tensor::rand(
            [n as i64, 1, h as i64, w as i64],
            (Kind::Float, Device::Cpu),
        ),
        labels: Tensor::randint(classes as i64, [n as i64], (Kind::Int64, Device::Cpu)),
        classes: (0..classes).map(|c| format!("class{c}")).collect(),
        names: (0..n).map(|i| format!("random:{i}")).collect(),
    }
}

/// Time the steps `request` describes.
pub fn bench(request: &BenchRequest<'_>) -> Result<BenchResult, TrainError> {
    let BenchRequest {
        arch,
        height: h,
        width: w,
        batch,
        steps,
        device,
        precision,
        channels_last,
        base_channels,
        latent_dim,
        mode_seeking,
    } = *request;
    let kind = match (GanArch::parse(arch), ClassifierArch::parse(arch)) {
        (Some(_), _) => "gan",
        (None, Some(_)) => "classifier",
        (None, None) => {
            let all: Vec<&str> = GanArch::NAMES
                .iter()
                .chain(ClassifierArch::NAMES)
                .copied()
                .collect();
            return Err(TrainError::Setup {
                stage: "bench".into(),
                message: format!(
                    "unknown --arch '{arch}'; expected one of: {}",
                    all.join(", ")
                ),
            });
        }
    };
    let mut model = String::new();
    if let Some(b) = base_channels {
        model.push_str(&format!(", base_channels = {b}"));
    }
    if let Some(l) = latent_dim {
        model.push_str(&format!(", latent_dim = {l}"));
    }
    let gan_train = if kind == "gan" {
        format!(", mode_seeking = {mode_seeking:?}")
    } else {
        String::new()
    };
    let text = format!(
        "name = \"bench\"\nkind = \"{kind}\"\nmodel = {{ arch = \"{arch}\"{model} }}\n\
         data = {{ image_size = [{h}, {w}] }}\n\
         train = {{ batch_size = {batch}, device = \"{device}\", precision = \"{precision}\", channels_last = {channels_last}{gan_train} }}\n"
    );
    let setup = |message: String| TrainError::Setup {
        stage: "bench".into(),
        message,
    };
    let spec = parse_config(
        "bench",
        &text,
        std::path::Path::new("."),
        "bench",
        &KnownRuns::default(),
    )
    .map_err(|errs| {
        setup(
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let stage = &spec.stage[0];
    let device = select_device(device).map_err(setup)?;
    let data = Split {
        train: random_dataset(batch, h, w, 3),
        test: random_dataset(1, h, w, 3),
        notes: Vec::new(),
    };
    let mut trainer: Box<dyn StageTrainer> = if kind == "gan" {
        Box::new(GanTrainer::new(stage, data, device)?)
    } else {
        Box::new(ClassifierTrainer::new(stage, data, device)?)
    };
    let indices: Vec<i64> = (0..batch as i64).collect();
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    trainer.train_step(&indices)?;
    sync();
    let mut times: Vec<f64> = Vec::with_capacity(steps);
    for _ in 0..steps.max(1) {
        let start = Instant::now();
        trainer.train_step(&indices)?;
        sync();
        times.push(start.elapsed().as_secs_f64());
    }
    trainer.check_finite(0)?;
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    Ok(BenchResult {
        arch: arch.to_string(),
        size: [h, w],
        batch,
        steps: times.len(),
        device: device_name(device),
        precision,
        channels_last,
        threads: tch::get_num_threads(),
        median_seconds: median,
        min_seconds: times[0],
        images_per_second: batch as f64 / median,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_real_training_steps() {
        let r =
            bench(&BenchRequest::new("small-cnn", [32, 16], 4, 2).on(DeviceChoice::Cpu)).unwrap();
        assert_eq!((r.batch, r.steps, r.device.as_str()), (4, 2, "cpu"));
        assert!(r.min_seconds > 0.0 && r.min_seconds <= r.median_seconds);
        assert!((r.images_per_second - 4.0 / r.median_seconds).abs() < 1e-9);
        let gan = bench(&BenchRequest::new("acgan", [32, 16], 2, 1).on(DeviceChoice::Cpu)).unwrap();
        assert_eq!(gan.steps, 1);
        let reduced = BenchRequest {
            precision: Precision::Bf16,
            channels_last: true,
            ..BenchRequest::new("small-cnn", [32, 16], 4, 1).on(DeviceChoice::Cpu)
        };
        // The reduced-precision, channels-last step runs (its numbers are
        // checked in tests/mixed_precision.rs).
        assert_eq!(bench(&reduced).unwrap().steps, 1);
    }

    #[test]
    fn unknown_arch_lists_every_model() {
        let err = bench(&BenchRequest::new("resnet50", [32, 16], 4, 1).on(DeviceChoice::Cpu))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown --arch 'resnet50'; expected one of: mu-acgan, acgan, multiscale"),
            "{err}"
        );
    }
}
