//! A small CNN classifier for quick checks on CPU: three (3x3 conv, BN,
//! ReLU, 2x2 max-pool) stages of C, 2C, 4C channels, global average pooling,
//! a linear head. Input `[B, 1, H, W]` in `[0, 1]`, output logits `[B, n_classes]`.

use super::layers::{batch_norm2d, conv3x3, linear};
use tch::Tensor;
use tch::nn::{self, ModuleT};

#[derive(Debug)]
pub struct SmallCnn {
    convs: Vec<nn::Conv2D>,
    norms: Vec<nn::BatchNorm>,
    head: nn::Linear,
}

pub fn small_cnn(p: nn::Path, base_channels: i64, n_classes: i64) -> SmallCnn {
    let widths = [base_channels, 2 * base_channels, 4 * base_channels];
    let mut c_in = 1;
    let mut convs = Vec::new();
    let mut norms = Vec::new();
    for (i, &c) in widths.iter().enumerate() {
        convs.push(conv3x3(&p / format!("conv{i}"), c_in, c, 1, false));
        norms.push(batch_norm2d(&p / format!("bn{i}"), c));
        c_in = c;
    }
    SmallCnn {
        convs,
        norms,
        head: linear(&p / "fc", c_in, n_classes),
    }
}

impl ModuleT for SmallCnn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.shallow_clone();
        for (conv, bn) in self.convs.iter().zip(&self.norms) {
            x = x
                .apply(conv)
                .apply_t(bn, train)
                .relu()
                .max_pool2d_default(2);
        }
        x.adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
            .apply(&self.head)
    }
}
