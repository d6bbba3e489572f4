//! DenseNet121 with torchvision's variable names: `features.conv0`,
//! `features.norm0`, `features.denseblockB.denselayerL.{norm1,conv1,norm2,conv2}`,
//! `features.transitionT.{norm,conv}`, `features.norm5`, `classifier`.
//!
//! Feature maps `[B, 1024, H/32, W/32]`, after the final ReLU that
//! torchvision applies in `forward` (not in `features`).

use super::FeatureExtractor;
use crate::nn::layers::{ConvSpec, batch_norm2d, conv2d};
use tch::Tensor;
use tch::nn;

const GROWTH: i64 = 32;
const BN_SIZE: i64 = 4;
const BLOCKS: [usize; 4] = [6, 12, 24, 16];

#[derive(Debug)]
struct DenseLayer {
    norm1: nn::BatchNorm,
    conv1: nn::Conv2D,
    norm2: nn::BatchNorm,
    conv2: nn::Conv2D,
}

#[derive(Debug)]
struct Transition {
    norm: nn::BatchNorm,
    conv: nn::Conv2D,
}

#[derive(Debug)]
pub struct DenseNet {
    conv0: nn::Conv2D,
    norm0: nn::BatchNorm,
    blocks: Vec<Vec<DenseLayer>>,
    transitions: Vec<Transition>,
    norm5: nn::BatchNorm,
    out_channels: i64,
}

pub fn densenet121(p: nn::Path) -> DenseNet {
    let f = &p / "features";
    let mut channels = 64;
    let mut blocks = Vec::new();
    let mut transitions = Vec::new();
    for (bi, &n_layers) in BLOCKS.iter().enumerate() {
        let bp = &f / format!("denseblock{}", bi + 1);
        let mut layers = Vec::new();
        for li in 0..n_layers {
            let lp = &bp / format!("denselayer{}", li + 1);
            let c_in = channels + li as i64 * GROWTH;
            layers.push(DenseLayer {
                norm1: batch_norm2d(&lp / "norm1", c_in),
                conv1: conv2d(&lp / "conv1", c_in, BN_SIZE * GROWTH, 1, ConvSpec::PLAIN),
                norm2: batch_norm2d(&lp / "norm2", BN_SIZE * GROWTH),
                conv2: conv2d(
                    &lp / "conv2",
                    BN_SIZE * GROWTH,
                    GROWTH,
                    3,
                    ConvSpec::PLAIN.padding(1),
                ),
            });
        }
        blocks.push(layers);
        channels += n_layers as i64 * GROWTH;
        if bi + 1 < BLOCKS.len() {
            let tp = &f / format!("transition{}", bi + 1);
            transitions.push(Transition {
                norm: batch_norm2d(&tp / "norm", channels),
                conv: conv2d(&tp / "conv", channels, channels / 2, 1, ConvSpec::PLAIN),
            });
            channels /= 2;
        }
    }
    DenseNet {
        conv0: conv2d(&f / "conv0", 3, 64, 7, ConvSpec::PLAIN.stride(2).padding(3)),
        norm0: batch_norm2d(&f / "norm0", 64),
        blocks,
        transitions,
        norm5: batch_norm2d(&f / "norm5", channels),
        out_channels: channels,
    }
}

impl FeatureExtractor for DenseNet {
    fn feature_maps(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.apply(&self.conv0).apply_t(&self.norm0, train).relu_();
        y = y.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        for (bi, block) in self.blocks.iter().enumerate() {
            let mut features = vec![y];
            for layer in block {
                let input = Tensor::cat(&features, 1);
                let new = input
                    .apply_t(&layer.norm1, train)
                    .relu_()
                    .apply(&layer.conv1)
                    .apply_t(&layer.norm2, train)
                    .relu_()
                    .apply(&layer.conv2);
                features.push(new);
            }
            y = Tensor::cat(&features, 1);
            if let Some(t) = self.transitions.get(bi) {
                y = y.apply_t(&t.norm, train).relu_().apply(&t.conv).avg_pool2d(
                    [2, 2],
                    [2, 2],
                    [0, 0],
                    false,
                    true,
                    None,
                );
            }
        }
        y.apply_t(&self.norm5, train).relu_()
    }

    fn out_channels(&self) -> i64 {
        self.out_channels
    }
}
