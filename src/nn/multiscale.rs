//! The paper's multi-scale classifier (METHOD.md section 10): DenseNet121,
//! VGG16 and ResNeXt50 (32x4d) run in parallel on the same input, each
//! globally average-pooled (1024 + 512 + 2048 = 3584 features),
//! concatenated, then one fully connected layer to the classes.
//!
//! Variable names: `densenet.*`, `vgg.*`, `resnext.*` (torchvision's names
//! below each prefix, so each branch loads its ImageNet checkpoint) and `fc`.

use super::backbones::densenet::{DenseNet, densenet121};
use super::backbones::resnet::{ResNet, ResNetKind, resnet};
use super::backbones::vgg::{Vgg, vgg16};
use super::backbones::{FeatureExtractor, imagenet_input};
use super::layers::linear;
use tch::Tensor;
use tch::nn::{self, ModuleT};

/// The prefixes of the three branches in the variable store.
pub const BRANCHES: [&str; 3] = ["densenet", "vgg", "resnext"];

#[derive(Debug)]
pub struct MultiScale {
    densenet: DenseNet,
    vgg: Vgg,
    resnext: ResNet,
    fc: nn::Linear,
}

pub fn multiscale(p: nn::Path, n_classes: i64) -> MultiScale {
    let densenet = densenet121(&p / "densenet");
    let vgg = vgg16(&p / "vgg");
    let resnext = resnet(&p / "resnext", ResNetKind::ResNeXt50);
    let features = densenet.out_channels() + vgg.out_channels() + resnext.out_channels();
    MultiScale {
        densenet,
        vgg,
        resnext,
        fc: linear(&p / "fc", features, n_classes),
    }
}

impl MultiScale {
    /// Each branch's last feature maps, in [`BRANCHES`] order, of a
    /// normalised `[B, 3, H, W]` input.
    pub fn branch_maps(&self, x3: &Tensor, train: bool) -> Vec<Tensor> {
        vec![
            self.densenet.feature_maps(x3, train),
            self.vgg.feature_maps(x3, train),
            self.resnext.feature_maps(x3, train),
        ]
    }

    /// Pool each branch's maps, concatenate (`[B, 3584]`), classify.
    pub fn head(&self, maps: &[Tensor]) -> Tensor {
        let pooled: Vec<Tensor> = maps
            .iter()
            .map(|m| m.adaptive_avg_pool2d([1, 1]).flatten(1, -1))
            .collect();
        Tensor::cat(&pooled, 1).apply(&self.fc)
    }
}

impl ModuleT for MultiScale {
    /// Grayscale `[B, 1, H, W]` in [0, 1] -> logits `[B, n_classes]`.
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.head(&self.branch_maps(&imagenet_input(x), train))
    }
}
