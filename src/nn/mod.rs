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

/// An ACGAN discriminator with two heads: images `[B, 1, H, W]` ->
/// (real/fake logit `[B]`, class logits `[B, n_classes]`).
pub trait Discriminator: std::fmt::Debug {
    fn judge(&self, images: &Tensor, train: bool) -> (Tensor, Tensor);
}

/// The two ACGAN heads on flattened features: (real/fake logit `[B]`,
/// class logits `[B, n_classes]`).
pub(crate) fn two_heads(
    features: &Tensor,
    source: &tch::nn::Linear,
    class: &tch::nn::Linear,
) -> (Tensor, Tensor) {
    let x = features.flatten(1, -1);
    (x.apply(source).squeeze_dim(1), x.apply(class))
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
