//! EfficientNet-B0 with torchvision's variable names: `features.0` (stem),
//! `features.1..7` (stages of MBConv blocks, `features.S.I.block.{j}`),
//! `features.8` (1x1 to 1280), `classifier.1`. SiLU, BatchNorm eps 1e-5.
//! Stochastic depth (a training-time regulariser) is left out: in eval mode
//! torchvision's is the identity too.
//!
//! Feature maps `[B, 1280, H/32, W/32]`.

use super::common::{
    Act, InvertedSpec, MobileBody, conv_norm_act, inverted_residual, make_divisible,
};
use tch::nn;

const EPS: f64 = 1e-5;

/// (expand ratio, kernel, stride, c_in, c_out, layers) for B0.
const STAGES: [(i64, i64, i64, i64, i64, usize); 7] = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
];

pub type EfficientNet = MobileBody;

pub fn efficientnet_b0(p: nn::Path) -> EfficientNet {
    let f = &p / "features";
    let mut blocks = Vec::new();
    for (s, &(ratio, kernel, stride, c_in, c_out, layers)) in STAGES.iter().enumerate() {
        let sp = &f / (s + 1).to_string();
        for i in 0..layers {
            let input = if i == 0 { c_in } else { c_out };
            blocks.push(inverted_residual(
                &sp / i.to_string(),
                InvertedSpec {
                    c_in: input,
                    expanded: make_divisible((input * ratio) as f64, 8),
                    c_out,
                    kernel,
                    stride: if i == 0 { stride } else { 1 },
                    squeeze: Some((input / 4).max(1)),
                    act: Act::Silu,
                    se_act: Act::Silu,
                    hard_gate: false,
                    eps: EPS,
                },
            ));
        }
    }
    MobileBody {
        stem: conv_norm_act(&f / "0", 3, 32, 3, 2, 1, EPS, Act::Silu),
        blocks,
        last: conv_norm_act(&f / "8", 320, 1280, 1, 1, 1, EPS, Act::Silu),
        out_channels: 1280,
    }
}
