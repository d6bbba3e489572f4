//! ImageNet backbones with torchvision's variable names, so torchvision
//! checkpoints load key for key, each as a feature extractor (no head) and
//! as a classifier (torchvision's head with `n_classes` outputs). Pooling is
//! adaptive: inputs other than 224x224 work (tall whole-body scans too).
//!
//! Classifiers take grayscale `[B, 1, H, W]` in [0, 1], repeat it to three
//! channels and normalise with ImageNet's mean and std, as the paper does.
//!
//! DenseNet, VGG, ResNet and ResNeXt apply their ReLUs in place (`relu_`), as
//! torchvision's `ReLU(inplace=True)` does: the same values, one allocation
//! and memory pass less per activation. That is safe where they stand:
//! convolution and BatchNorm backward need their inputs, not their outputs.

mod common;
pub mod densenet;
pub mod efficientnet;
pub mod inception;
pub mod mobilenet;
pub mod resnet;
pub mod vgg;

use super::ModelError;
use super::layers::linear;
use crate::config::ClassifierArch;
use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

/// ImageNet channel means and standard deviations on [0, 1] RGB.
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// A network body: `[B, 3, H, W]` -> feature maps `[B, C, h, w]`.
pub trait FeatureExtractor: std::fmt::Debug + Send {
    fn feature_maps(&self, x: &Tensor, train: bool) -> Tensor;
    /// C, the channel count of the feature maps (and of the pooled features).
    fn out_channels(&self) -> i64;

    /// Globally average-pooled features `[B, C]`.
    fn pooled(&self, x: &Tensor, train: bool) -> Tensor {
        self.feature_maps(x, train)
            .adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
    }
}

/// Grayscale `[B, 1, H, W]` in [0, 1] -> ImageNet-normalised `[B, 3, H, W]`.
pub fn imagenet_input(x: &Tensor) -> Tensor {
    let device = x.device();
    let mean = Tensor::from_slice(&IMAGENET_MEAN)
        .to_kind(Kind::Float)
        .to_device(device)
        .view([1, 3, 1, 1]);
    let std = Tensor::from_slice(&IMAGENET_STD)
        .to_kind(Kind::Float)
        .to_device(device)
        .view([1, 3, 1, 1]);
    let rgb = if x.size()[1] == 1 {
        x.repeat([1, 3, 1, 1])
    } else {
        x.shallow_clone()
    };
    (rgb - mean) / std
}

/// The body of `arch` under `p`, with torchvision's names below `p`.
pub fn feature_extractor(
    p: nn::Path,
    arch: ClassifierArch,
) -> Result<Box<dyn FeatureExtractor>, ModelError> {
    body(p, arch, false)
}

/// The body of `arch`; `imagenet_weights` says torchvision's published
/// ImageNet weights will be loaded (Inception v3 then re-normalises its
/// input as torchvision does for them, `transform_input`).
fn body(
    p: nn::Path,
    arch: ClassifierArch,
    imagenet_weights: bool,
) -> Result<Box<dyn FeatureExtractor>, ModelError> {
    Ok(match arch {
        ClassifierArch::Resnet34 => Box::new(resnet::resnet(p, resnet::ResNetKind::ResNet34)),
        ClassifierArch::Resnext50 => Box::new(resnet::resnet(p, resnet::ResNetKind::ResNeXt50)),
        ClassifierArch::Densenet121 => Box::new(densenet::densenet121(p)),
        ClassifierArch::Vgg16 => Box::new(vgg::vgg16(p)),
        ClassifierArch::MobilenetV3Large => Box::new(mobilenet::mobilenet_v3_large(p)),
        ClassifierArch::EfficientnetB0 => Box::new(efficientnet::efficientnet_b0(p)),
        // The auxiliary head keeps ImageNet's 1000 classes: it is unused and
        // only there so torchvision checkpoints load key for key.
        ClassifierArch::InceptionV3 => Box::new(inception::inception_v3(p, 1000, imagenet_weights)),
        other => return Err(ModelError::NotAvailable(other.to_string(), AVAILABLE)),
    })
}

/// The smallest input side `arch` accepts: five halvings for most, the
/// valid-padded stem and reductions of Inception v3 need 75.
pub fn min_input_size(arch: ClassifierArch) -> i64 {
    arch.min_input_size() as i64
}

/// Backbones built so far.
pub const AVAILABLE: &str = "multiscale, densenet121, vgg16, resnext50_32x4d, resnet34, mobilenet_v3_large, inception_v3, efficientnet_b0, small-cnn";

#[derive(Debug)]
enum Head {
    /// ResNet `fc` / DenseNet `classifier` on globally pooled features.
    Linear(nn::Linear),
    /// VGG: adaptive pool to 7x7, `classifier.{0,3,6}` with ReLU and dropout 0.5.
    Vgg([nn::Linear; 3]),
    /// MobileNetV3: `classifier.0` (960 -> 1280), hard-swish, dropout 0.2, `classifier.3`.
    MobileNet([nn::Linear; 2]),
    /// Dropout then a linear layer: EfficientNet `classifier.1` (0.2),
    /// Inception `fc` (0.5).
    DropoutLinear(f64, nn::Linear),
}

/// A torchvision backbone with its own head.
#[derive(Debug)]
pub struct BackboneClassifier {
    body: Box<dyn FeatureExtractor>,
    head: Head,
}

pub fn backbone_classifier(
    p: nn::Path,
    arch: ClassifierArch,
    n_classes: i64,
) -> Result<BackboneClassifier, ModelError> {
    backbone_classifier_with(p, arch, n_classes, false)
}

/// [`backbone_classifier`] for a model that will load torchvision's
/// published ImageNet weights when `imagenet_weights` (see `body`).
pub fn backbone_classifier_with(
    p: nn::Path,
    arch: ClassifierArch,
    n_classes: i64,
    imagenet_weights: bool,
) -> Result<BackboneClassifier, ModelError> {
    let body = body(p.clone(), arch, imagenet_weights)?;
    let c = body.out_channels();
    let head = match arch {
        ClassifierArch::Vgg16 => {
            let cp = &p / "classifier";
            Head::Vgg([
                linear(&cp / "0", c * 49, 4096),
                linear(&cp / "3", 4096, 4096),
                linear(&cp / "6", 4096, n_classes),
            ])
        }
        ClassifierArch::Densenet121 => Head::Linear(linear(&p / "classifier", c, n_classes)),
        ClassifierArch::MobilenetV3Large => {
            let cp = &p / "classifier";
            Head::MobileNet([
                linear(&cp / "0", c, 1280),
                linear(&cp / "3", 1280, n_classes),
            ])
        }
        ClassifierArch::EfficientnetB0 => {
            Head::DropoutLinear(0.2, linear(&p / "classifier" / "1", c, n_classes))
        }
        ClassifierArch::InceptionV3 => Head::DropoutLinear(0.5, linear(&p / "fc", c, n_classes)),
        _ => Head::Linear(linear(&p / "fc", c, n_classes)),
    };
    Ok(BackboneClassifier { body, head })
}

impl BackboneClassifier {
    /// Logits from an already normalised `[B, 3, H, W]` input.
    pub fn logits(&self, x3: &Tensor, train: bool) -> Tensor {
        self.head(&self.body.feature_maps(x3, train), train)
    }

    /// The head on the body's feature maps `[B, C, h, w]` -> logits.
    pub fn head(&self, maps: &Tensor, train: bool) -> Tensor {
        let pooled = || maps.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        match &self.head {
            Head::Linear(fc) => pooled().apply(fc),
            Head::Vgg([fc0, fc3, fc6]) => maps
                .adaptive_avg_pool2d([7, 7])
                .flatten(1, -1)
                .apply(fc0)
                .relu()
                .dropout(0.5, train)
                .apply(fc3)
                .relu()
                .dropout(0.5, train)
                .apply(fc6),
            Head::MobileNet([fc0, fc3]) => common::hardswish(&pooled().apply(fc0))
                .dropout(0.2, train)
                .apply(fc3),
            Head::DropoutLinear(p, fc) => pooled().dropout(*p, train).apply(fc),
        }
    }

    pub fn body(&self) -> &dyn FeatureExtractor {
        self.body.as_ref()
    }
}

impl ModuleT for BackboneClassifier {
    /// Grayscale `[B, 1, H, W]` in [0, 1] -> logits `[B, n_classes]`.
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.logits(&imagenet_input(x), train)
    }
}

#[cfg(test)]
mod tests;
