//! MobileNetV3-Large with torchvision's variable names: `features.0`
//! (stem), `features.1..15` (inverted residuals, `block.{j}`), `features.16`
//! (1x1 to 960), `classifier.{0,3}`. BatchNorm eps 0.001.
//!
//! Feature maps `[B, 960, H/32, W/32]`.

use super::common::{
    Act, InvertedSpec, MobileBody, conv_norm_act, inverted_residual, make_divisible,
};
use tch::nn;

const EPS: f64 = 0.001;

/// (c_in, kernel, expanded, c_out, squeeze-excitation, hard-swish, stride)
const CONFIG: [(i64, i64, i64, i64, bool, bool, i64); 15] = [
    (16, 3, 16, 16, false, false, 1),
    (16, 3, 64, 24, false, false, 2),
    (24, 3, 72, 24, false, false, 1),
    (24, 5, 72, 40, true, false, 2),
    (40, 5, 120, 40, true, false, 1),
    (40, 5, 120, 40, true, false, 1),
    (40, 3, 240, 80, false, true, 2),
    (80, 3, 200, 80, false, true, 1),
    (80, 3, 184, 80, false, true, 1),
    (80, 3, 184, 80, false, true, 1),
    (80, 3, 480, 112, true, true, 1),
    (112, 3, 672, 112, true, true, 1),
    (112, 5, 672, 160, true, true, 2),
    (160, 5, 960, 160, true, true, 1),
    (160, 5, 960, 160, true, true, 1),
];

pub type MobileNetV3 = MobileBody;

pub fn mobilenet_v3_large(p: nn::Path) -> MobileNetV3 {
    let f = &p / "features";
    let blocks = CONFIG
        .iter()
        .enumerate()
        .map(|(i, &(c_in, kernel, expanded, c_out, se, hs, stride))| {
            let act = if hs { Act::Hardswish } else { Act::Relu };
            inverted_residual(
                &f / (i + 1).to_string(),
                InvertedSpec {
                    c_in,
                    expanded,
                    c_out,
                    kernel,
                    stride,
                    squeeze: se.then(|| make_divisible(expanded as f64 / 4.0, 8)),
                    act,
                    se_act: Act::Relu,
                    hard_gate: true,
                    eps: EPS,
                },
            )
        })
        .collect();
    MobileBody {
        stem: conv_norm_act(&f / "0", 3, 16, 3, 2, 1, EPS, Act::Hardswish),
        blocks,
        last: conv_norm_act(&f / "16", 160, 960, 1, 1, 1, EPS, Act::Hardswish),
        out_channels: 960,
    }
}
