//! Models, as functions of an `nn::Path` so checkpoint keys stay stable.
//!
//! Images are `[batch, 1, height, width]` in `[-1, 1]` for GANs and
//! `[batch, 1, height, width]` in `[0, 1]` for classifiers.

pub mod acgan;
pub mod attention;
pub mod backbones;
pub mod blocks;
pub mod gradcam;
pub mod layers;
pub mod mu_acgan;
pub mod multiscale;
pub mod pickle;
pub mod small_cnn;
pub mod summary;
pub mod weights;

use tch::Tensor;

/// A class-conditional generator: `z [B, latent]`, `labels [B]` (int64) ->
/// images `[B, 1, H, W]` in `[-1, 1]`.
pub trait Generator: std::fmt::Debug {
    fn generate(&self, z: &Tensor, labels: &Tensor, train: bool) -> Tensor;
}

/// An ACGAN discriminator: images `[B, 1, H, W]` -> its heads' logits.
pub trait Discriminator: std::fmt::Debug {
    /// Every head: real/fake, class and (when built with one) the twin class head.
    fn judge_all(&self, images: &Tensor, train: bool) -> Judgement;

    /// (real/fake logit `[B]`, class logits `[B, n_classes]`).
    fn judge(&self, images: &Tensor, train: bool) -> (Tensor, Tensor) {
        let j = self.judge_all(images, train);
        (j.source, j.class)
    }
}

/// What a discriminator's heads say about a batch.
#[derive(Debug)]
pub struct Judgement {
    /// Real/fake logit `[B]`.
    pub source: Tensor,
    /// Class logits `[B, n_classes]`.
    pub class: Tensor,
    /// TAC-GAN's twin class head `[B, n_classes]`, trained on generated
    /// images only (`None` unless built with `twin_classifier`).
    pub twin: Option<Tensor>,
}

/// Options of a discriminator's last layers, for both GANs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeadOptions {
    /// Append the batch's mean feature standard deviation as one constant
    /// channel before the heads (Karras et al. 2018): a batch of
    /// near-identical images then looks unlike a real batch.
    pub minibatch_std: bool,
    /// A third, twin class head (TAC-GAN, Gong et al. 2019).
    pub twin_classifier: bool,
}

/// The fully connected heads on `[B, C, h, w]` features: `fc_source` (1
/// logit), `fc_class` and, with a twin, `fc_twin` (`n_classes` logits).
#[derive(Debug)]
pub(crate) struct Heads {
    source: tch::nn::Linear,
    class: tch::nn::Linear,
    twin: Option<tch::nn::Linear>,
    minibatch_std: bool,
}

/// Heads for features of `channels x h x w` (before any minibatch-std channel).
pub(crate) fn heads(
    p: &tch::nn::Path,
    [channels, h, w]: [i64; 3],
    n_classes: i64,
    opts: HeadOptions,
) -> Heads {
    let features = (channels + i64::from(opts.minibatch_std)) * h * w;
    Heads {
        source: layers::linear(p / "fc_source", features, 1),
        class: layers::linear(p / "fc_class", features, n_classes),
        twin: opts
            .twin_classifier
            .then(|| layers::linear(p / "fc_twin", features, n_classes)),
        minibatch_std: opts.minibatch_std,
    }
}

impl Heads {
    pub(crate) fn judge(&self, features: &Tensor) -> Judgement {
        let x = if self.minibatch_std {
            with_minibatch_std(features)
        } else {
            features.shallow_clone()
        };
        let x = x.flatten(1, -1);
        Judgement {
            source: x.apply(&self.source).squeeze_dim(1),
            class: x.apply(&self.class),
            twin: self.twin.as_ref().map(|t| x.apply(t)),
        }
    }
}

/// `[B, C, h, w]` -> `[B, C + 1, h, w]`: the standard deviation of every
/// feature over the batch, averaged to one number, as an extra channel
/// (0 for a batch of one).
fn with_minibatch_std(x: &Tensor) -> Tensor {
    let size = x.size();
    let sd = (x.var_dim(0, false, false) + 1e-8)
        .sqrt()
        .mean(x.kind())
        .view([1, 1, 1, 1])
        .expand([size[0], 1, size[2], size[3]], false);
    Tensor::cat(&[x.shallow_clone(), sd], 1)
}

/// Shape problems a model cannot be built for.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "{arch} needs image sizes divisible by {divisor}; got {height}x{width} (height x width): set data.image_size to e.g. [{h_ok}, {w_ok}]"
    )]
    BadImageSize {
        arch: &'static str,
        divisor: i64,
        height: i64,
        width: i64,
        h_ok: i64,
        w_ok: i64,
    },
    #[error(
        "{arch} needs images of at least {min}x{min} pixels; got {height}x{width}: raise data.image_size"
    )]
    TooSmall {
        arch: String,
        min: i64,
        height: i64,
        width: i64,
    },
    #[error("model arch '{0}' is not built into this version yet; available now: {1}")]
    NotAvailable(String, &'static str),
}

pub(crate) fn check_divisible(
    arch: &'static str,
    divisor: i64,
    height: i64,
    width: i64,
) -> Result<(), ModelError> {
    if height % divisor == 0 && width % divisor == 0 {
        return Ok(());
    }
    let round = |x: i64| ((x + divisor / 2) / divisor).max(1) * divisor;
    Err(ModelError::BadImageSize {
        arch,
        divisor,
        height,
        width,
        h_ok: round(height),
        w_ok: round(width),
    })
}
