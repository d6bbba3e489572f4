//! VGG16 with torchvision's variable names: `features.{0,2,5,7,10,12,14,17,19,21,24,26,28}`
//! (3x3 convs with bias, each followed by ReLU; max-pools between stages).
//!
//! Feature maps `[B, 512, H/32, W/32]` (after the last max-pool).

use super::FeatureExtractor;
use crate::nn::layers::{ConvSpec, conv2d};
use tch::Tensor;
use tch::nn;

/// Configuration "D": channel counts, `0` for a max-pool.
const CFG: [i64; 18] = [
    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
];

#[derive(Debug)]
enum Layer {
    Conv(nn::Conv2D),
    Pool,
}

#[derive(Debug)]
pub struct Vgg {
    layers: Vec<Layer>,
}

pub fn vgg16(p: nn::Path) -> Vgg {
    let f = &p / "features";
    let mut layers = Vec::new();
    let mut c_in = 3;
    // torchvision's Sequential index: a conv and its ReLU take two slots, a pool one.
    let mut index = 0;
    for &c in &CFG {
        if c == 0 {
            layers.push(Layer::Pool);
            index += 1;
        } else {
            layers.push(Layer::Conv(conv2d(
                &f / index.to_string(),
                c_in,
                c,
                3,
                ConvSpec::PLAIN.padding(1).bias(true),
            )));
            c_in = c;
            index += 2;
        }
    }
    Vgg { layers }
}

impl FeatureExtractor for Vgg {
    fn feature_maps(&self, x: &Tensor, _train: bool) -> Tensor {
        let mut y = x.shallow_clone();
        for layer in &self.layers {
            y = match layer {
                Layer::Conv(conv) => y.apply(conv).relu_(),
                Layer::Pool => y.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false),
            };
        }
        y
    }

    fn out_channels(&self) -> i64 {
        512
    }
}
