//! Validated, defaults-filled configs. These are what the rest of the tool
//! reads, and what a run directory freezes as its `config.toml` (serialised
//! back into the pipeline form, so the frozen file is itself a valid config).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// One run: a named pipeline of one or more stages, run in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub name: String,
    /// Other runs (by name) this run waits for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    pub stage: Vec<StageSpec>,
    /// Where its worker runs, when the config says (else the daemon's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<super::slurm::Executor>,
    /// Its Slurm job requests, over the daemon's `[slurm]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<super::slurm::SlurmOptions>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageSpec {
    pub name: String,
    pub kind: StageKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<InitFrom>,
    pub data: DataSpec,
    pub model: ModelSpec,
    pub train: TrainSpec,
}

impl StageSpec {
    /// Names of the classes this stage's data set holds, in label order.
    pub fn class_names(&self) -> Vec<String> {
        self.data.class_names()
    }
}

/// Defines a closed set of names that parse from and print as strings.
macro_rules! choice_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal {
        $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every accepted spelling, in documentation order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];
            /// What the value is called in error messages.
            pub const WHAT: &'static str = $what;

            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

choice_enum!(
    /// What a stage does.
    StageKind, "stage kind" {
        Gan => "gan",
        Classifier => "classifier",
        Generate => "generate",
    }
);

choice_enum!(
    /// GAN architectures.
    GanArch, "gan arch" {
        MuAcgan => "mu-acgan",
        Acgan => "acgan",
    }
);

choice_enum!(
    /// Classifier architectures: the paper's multi-scale model, its backbones
    /// alone, its comparison models, and a small CNN for quick checks.
    ClassifierArch, "classifier arch" {
        Multiscale => "multiscale",
        Densenet121 => "densenet121",
        Vgg16 => "vgg16",
        Resnext50 => "resnext50_32x4d",
        Resnet34 => "resnet34",
        MobilenetV3Large => "mobilenet_v3_large",
        InceptionV3 => "inception_v3",
        EfficientnetB0 => "efficientnet_b0",
        SmallCnn => "small-cnn",
    }
);

/// The side of the Gaussian window of the SSIM scores (`train::ssim`): a
/// GAN stage's images need both sides at least this long.
pub const SSIM_WINDOW: usize = 11;

impl GanArch {
    /// Image sides must be multiples of this (the generator's upsampling).
    pub fn size_divisor(self) -> usize {
        match self {
            GanArch::MuAcgan => 16,
            GanArch::Acgan => 4,
        }
    }
}

impl ClassifierArch {
    /// The shortest image side the model takes (its downsampling leaves at
    /// least one pixel; InceptionV3's stem needs 75).
    pub fn min_input_size(self) -> usize {
        match self {
            ClassifierArch::SmallCnn => 8,
            ClassifierArch::InceptionV3 => 75,
            _ => 32,
        }
    }
}

choice_enum!(
    /// Optimizers.
    OptimizerKind, "optimizer" {
        Radam => "radam",
        Adam => "adam",
        Sgd => "sgd",
    }
);

choice_enum!(
    /// How the learning rate changes over a stage's epochs.
    #[derive(Default)]
    LrSchedule, "lr schedule" {
        #[default]
        Constant => "constant",
        Cosine => "cosine",
    }
);

impl LrSchedule {
    /// The learning rate of 1-based `epoch` of `epochs`: constant `lr`, or
    /// cosine annealing from `lr` in epoch 1 towards 0
    /// (`lr * (1 + cos(pi * (epoch - 1) / epochs)) / 2`, torch's
    /// `CosineAnnealingLR` stepped once per epoch with `T_max = epochs`).
    pub fn lr_at(self, lr: f64, epoch: u64, epochs: usize) -> f64 {
        match self {
            Self::Constant => lr,
            Self::Cosine => {
                let done = epoch.saturating_sub(1) as f64 / epochs.max(1) as f64;
                lr * (1.0 + (std::f64::consts::PI * done).cos()) / 2.0
            }
        }
    }
}

choice_enum!(
    /// Arithmetic of the training forward pass: float32 throughout, or
    /// autocast to bfloat16 or float16 (float16 with a gradient scaler).
    #[derive(Default)]
    Precision, "precision" {
        #[default]
        Fp32 => "fp32",
        Bf16 => "bf16",
        Fp16 => "fp16",
    }
);

/// For `skip_serializing_if`: frozen configs leave out settings at their
/// default, as a hand-written config would.
fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

choice_enum!(
    /// Where images come from.
    DataSource, "data source" {
        PhantomBone => "phantom-bone",
        PhantomChest => "phantom-chest",
        Folder => "folder",
    }
);

/// The classes of the synthetic bone-scan phantom (the paper's three).
pub const BONE_CLASSES: [&str; 3] = ["healthy", "metastasis", "benign"];
/// The classes of the synthetic chest X-ray phantom (the COVID-19 Radiography
/// Database's four folders).
pub const CHEST_CLASSES: [&str; 4] = ["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    pub source: DataSource,
    /// Folder of class subfolders (`source = "folder"`), resolved to an
    /// absolute path when validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// With `source = "folder"`: a CSV or TXT label file listing the
    /// images under `path` (see `data::labels`), resolved like `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<PathBuf>,
    /// Class names in label order; empty means the source's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    /// `[height, width]` in pixels.
    pub image_size: [usize; 2],
    /// How a folder's images of another aspect ratio meet `image_size`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub fit: ImageFit,
    /// Phantom images per class.
    pub per_class: usize,
    /// Phantom images of each class, in class order (overrides `per_class`;
    /// imbalanced sets like the paper's 162:126:58).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_counts: Vec<usize>,
    /// Fraction of each class held out for testing.
    pub test_fraction: f64,
    pub split_seed: u64,
    /// Augmentation of the training split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<AugmentSpec>,
    /// Add the images a generate stage drew (`run:<stage or run>`) to the
    /// training split: the paper's GAN-balanced training sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gan_samples: Option<String>,
}

impl DataSpec {
    pub fn class_names(&self) -> Vec<String> {
        if !self.classes.is_empty() {
            return self.classes.clone();
        }
        let builtin: &[&str] = match self.source {
            DataSource::PhantomBone => &BONE_CLASSES,
            DataSource::PhantomChest => &CHEST_CLASSES,
            DataSource::Folder => &[],
        };
        builtin.iter().map(|s| s.to_string()).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// `gan`: one of [`GanArch`]; `classifier`: one of [`ClassifierArch`].
    pub arch: String,
    pub latent_dim: usize,
    pub base_channels: usize,
    /// MU-ACGAN: channels of each noise map injected into the encoder.
    pub scale_channels: usize,
    /// MU-ACGAN: the non-linearity inside Coordinate Attention.
    pub ca_activation: CaActivation,
    /// MU-ACGAN: the noise also modulates every decoder level (FiLM).
    #[serde(default, skip_serializing_if = "is_default")]
    pub decoder_noise: bool,
    /// GANs: the discriminator sees the batch's feature standard deviation
    /// (Karras et al. 2018), against collapse.
    #[serde(default, skip_serializing_if = "is_default")]
    pub minibatch_std: bool,
    /// GANs: TAC-GAN's twin class head on generated images (Gong et al.
    /// 2019), against collapse within a class.
    #[serde(default, skip_serializing_if = "is_default")]
    pub twin_classifier: bool,
    /// Pretrained backbone weights (safetensors from `scintigan weights import`).
    #[serde(default, skip_serializing_if = "PretrainedWeights::is_none")]
    pub weights: PretrainedWeights,
}

/// Where a classifier's ImageNet weights come from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PretrainedWeights {
    /// Random initialisation.
    #[default]
    None,
    /// One file for a single backbone.
    One(PathBuf),
    /// `multiscale`: one file per backbone, keyed `densenet121`, `vgg16`,
    /// `resnext50_32x4d`.
    PerBackbone(std::collections::BTreeMap<String, PathBuf>),
}

impl PretrainedWeights {
    pub fn is_none(&self) -> bool {
        matches!(self, PretrainedWeights::None)
    }
}

/// The backbones of the multi-scale model, as `model.weights` keys them.
pub const MULTISCALE_BACKBONES: [&str; 3] = ["densenet121", "vgg16", "resnext50_32x4d"];

impl ModelSpec {
    pub fn gan_arch(&self) -> Option<GanArch> {
        GanArch::parse(&self.arch)
    }
    pub fn classifier_arch(&self) -> Option<ClassifierArch> {
        ClassifierArch::parse(&self.arch)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSpec {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// Classifiers: constant, or cosine annealing over the epochs.
    #[serde(default, skip_serializing_if = "is_default")]
    pub lr_schedule: LrSchedule,
    pub optimizer: OptimizerKind,
    pub betas: [f64; 2],
    pub weight_decay: f64,
    pub seed: u64,
    pub device: DeviceChoice,
    /// GAN and classifier stages: autocast the forward pass to this type.
    #[serde(default, skip_serializing_if = "is_default")]
    pub precision: Precision,
    /// GAN and classifier stages: keep conv weights and inputs in NHWC order.
    #[serde(default, skip_serializing_if = "is_default")]
    pub channels_last: bool,
    /// Write a checkpoint every this many epochs (and at the end).
    pub checkpoint_every: usize,
    /// Also write one when this many minutes passed since the last, mid-epoch
    /// if need be; 0 turns the timer off.
    pub checkpoint_minutes: f64,
    /// Emit a step event every this many steps.
    pub log_every: usize,
    /// Classifiers: train only the new head for the first N epochs.
    #[serde(default)]
    pub freeze_backbone_epochs: usize,
    /// GANs: score generated images with per-class SSIM every this many
    /// epochs (and at the last); 0 turns it off.
    #[serde(default)]
    pub ssim_every: usize,
    /// GANs: generated images per class for that score.
    #[serde(default)]
    pub ssim_samples: usize,
    /// GANs: weight of the mode-seeking term (MSGAN, Mao et al. 2019) in
    /// the generator's loss; 0 turns it off (METHOD.md's literal ACGAN loss).
    #[serde(
        default = "default_mode_seeking",
        skip_serializing_if = "is_default_mode_seeking"
    )]
    pub mode_seeking: f64,
    /// GANs: decay of an exponential moving average of the generator's
    /// weights (Yazici et al. 2019), which then draws the sample grids, the
    /// SSIM scores and the generate stage's images; 0 turns it off (the
    /// trained generator itself draws).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ema: f64,
    /// Generate stages: images to draw per class; 0 balances every class up
    /// to the largest class of the GAN's training split.
    #[serde(default)]
    pub generate_per_class: usize,
}

/// `train.mode_seeking` when a config leaves it out: without it both GANs
/// draw one image per class (measured in the README, "Mode collapse").
pub const DEFAULT_MODE_SEEKING: f64 = 0.3;

fn default_mode_seeking() -> f64 {
    DEFAULT_MODE_SEEKING
}

fn is_default_mode_seeking(value: &f64) -> bool {
    *value == DEFAULT_MODE_SEEKING
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

/// Where a stage's weights start from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitFrom {
    /// The final weights of another stage of this pipeline, or of the latest
    /// finished run with that name.
    Run(String),
    /// A checkpoint directory or safetensors file.
    Path(PathBuf),
}

impl fmt::Display for InitFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitFrom::Run(name) => write!(f, "run:{name}"),
            InitFrom::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

impl InitFrom {
    pub fn parse(text: &str) -> Self {
        match text.strip_prefix("run:") {
            Some(name) => InitFrom::Run(name.to_string()),
            None => InitFrom::Path(PathBuf::from(text)),
        }
    }
}

impl Serialize for InitFrom {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for InitFrom {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(InitFrom::parse(&String::deserialize(d)?))
    }
}

/// `auto` (CUDA when present), `cpu`, or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Cuda(usize),
}

impl DeviceChoice {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "auto" => Some(Self::Auto),
            "cpu" => Some(Self::Cpu),
            "cuda" => Some(Self::Cuda(0)),
            _ => text
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl Serialize for DeviceChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown device '{text}'")))
    }
}

/// Augmentation of the training split (see `data::augment`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AugmentSpec {
    /// Images per original, the original included (1 = no augmentation).
    pub factor: usize,
    /// Rotation drawn uniformly from +- this many degrees.
    pub rotation: f64,
    /// Translation drawn uniformly from +- this many pixels, each axis.
    pub translation: f64,
    /// Mirror left-right with probability 1/2.
    pub mirror: bool,
    /// Poisson noise as if the image's brightest pixel held this many counts;
    /// 0 turns it off.
    pub poisson_counts: f64,
    pub seed: u64,
}

/// How an image of another aspect ratio is brought to `data.image_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ImageFit {
    /// Scale to fit, keep the aspect ratio, centre on black (what ingest
    /// does to bone scans: anatomy keeps its proportions).
    #[default]
    #[serde(rename = "pad")]
    Pad,
    /// Scale each axis to fill the frame. A square chest X-ray in a 4:1
    /// whole-body frame then fills it instead of a quarter of it, so a GAN
    /// pretrained on it learns a body that fills the frame (see the README,
    /// "What the demo shows").
    #[serde(rename = "stretch")]
    Stretch,
}

impl ImageFit {
    pub const NAMES: &'static [&'static str] = &["pad", "stretch"];

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pad" => Some(Self::Pad),
            "stretch" => Some(Self::Stretch),
            _ => None,
        }
    }
}

/// The non-linearity after the squeeze: the paper says ReLU, the official
/// code uses h-swish (`x * relu6(x + 3) / 6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CaActivation {
    #[default]
    #[serde(rename = "relu")]
    Relu,
    #[serde(rename = "h-swish")]
    HSwish,
}

impl CaActivation {
    pub const NAMES: &'static [&'static str] = &["relu", "h-swish"];

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "relu" => Some(Self::Relu),
            "h-swish" => Some(Self::HSwish),
            _ => None,
        }
    }
}
