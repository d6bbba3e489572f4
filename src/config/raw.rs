//! The TOML shape of a config file, as written by users: every field optional
//! where a default exists, every value spanned so that validation errors can
//! point at it. `deny_unknown_fields` everywhere: a typo is an error.

use serde::Deserialize;
use serde_spanned::Spanned;

/// A whole file: either one stage at the top level (`kind = ...`) or a
/// pipeline of `[[stage]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    pub name: Option<Spanned<String>>,
    pub kind: Option<Spanned<String>>,
    pub after: Option<Vec<Spanned<String>>>,
    pub init_from: Option<Spanned<String>>,
    pub data: Option<Spanned<RawData>>,
    pub model: Option<Spanned<RawModel>>,
    pub train: Option<Spanned<RawTrain>>,
    pub stage: Option<Vec<Spanned<RawStage>>>,
    /// `local` or `slurm`: overrides the daemon's executor for this run.
    pub executor: Option<Spanned<String>>,
    /// This run's Slurm job requests, over the daemon's.
    pub slurm: Option<Spanned<super::slurm::SlurmOptions>>,
}

/// One `[[stage]]` table of a pipeline.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    pub name: Spanned<String>,
    pub kind: Spanned<String>,
    pub after: Option<Vec<Spanned<String>>>,
    pub init_from: Option<Spanned<String>>,
    pub data: Option<Spanned<RawData>>,
    pub model: Option<Spanned<RawModel>>,
    pub train: Option<Spanned<RawTrain>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawData {
    pub source: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    pub labels: Option<Spanned<String>>,
    pub classes: Option<Spanned<Vec<String>>>,
    pub image_size: Option<Spanned<Vec<i64>>>,
    pub fit: Option<Spanned<String>>,
    pub per_class: Option<Spanned<i64>>,
    pub test_fraction: Option<Spanned<f64>>,
    pub split_seed: Option<Spanned<i64>>,
    pub augment: Option<Spanned<RawAugment>>,
    pub gan_samples: Option<Spanned<String>>,
    pub class_counts: Option<Spanned<Vec<i64>>>,
}

/// `[data] augment = { ... }`: the paper's traditional augmentation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAugment {
    pub factor: Option<Spanned<i64>>,
    pub rotation: Option<Spanned<f64>>,
    pub translation: Option<Spanned<f64>>,
    pub mirror: Option<Spanned<bool>>,
    pub poisson_counts: Option<Spanned<f64>>,
    pub seed: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub arch: Option<Spanned<String>>,
    pub latent_dim: Option<Spanned<i64>>,
    pub base_channels: Option<Spanned<i64>>,
    pub scale_channels: Option<Spanned<i64>>,
    pub ca_activation: Option<Spanned<String>>,
    pub decoder_noise: Option<Spanned<bool>>,
    pub minibatch_std: Option<Spanned<bool>>,
    pub twin_classifier: Option<Spanned<bool>>,
    /// A path, or for `multiscale` a table of paths per backbone.
    pub weights: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrain {
    pub epochs: Option<Spanned<i64>>,
    pub batch_size: Option<Spanned<i64>>,
    pub lr: Option<Spanned<f64>>,
    pub lr_schedule: Option<Spanned<String>>,
    pub optimizer: Option<Spanned<String>>,
    pub betas: Option<Spanned<Vec<f64>>>,
    pub weight_decay: Option<Spanned<f64>>,
    pub seed: Option<Spanned<i64>>,
    pub device: Option<Spanned<String>>,
    pub precision: Option<Spanned<String>>,
    pub channels_last: Option<Spanned<bool>>,
    pub checkpoint_every: Option<Spanned<i64>>,
    pub checkpoint_minutes: Option<Spanned<f64>>,
    pub log_every: Option<Spanned<i64>>,
    pub freeze_backbone_epochs: Option<Spanned<i64>>,
    pub ssim_every: Option<Spanned<i64>>,
    pub ssim_samples: Option<Spanned<i64>>,
    pub mode_seeking: Option<Spanned<f64>>,
    pub ema: Option<Spanned<f64>>,
    pub generate_per_class: Option<Spanned<i64>>,
}
