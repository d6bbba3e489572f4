//! Inception v3 with torchvision's variable names (`Conv2d_1a_3x3.conv`,
//! `Conv2d_1a_3x3.bn`, `Mixed_5b.branch1x1`, ..., `AuxLogits.*`, `fc`).
//! Each `BasicConv2d` is conv (no bias) + BatchNorm (eps 0.001) + ReLU.
//!
//! The auxiliary classifier is built (so checkpoints load key for key and
//! parameter counts match torchvision's 27,161,264) but not used: the model
//! returns the main logits, as torchvision does in eval mode. With
//! `transform_input` (torchvision turns it on for its ImageNet weights) the
//! ImageNet-normalised input is re-normalised to the (x - 0.5) / 0.5 scale
//! those weights were trained on. Inputs must be at least 75x75.
//!
//! Feature maps `[B, 2048, h, w]` (after `Mixed_7c`).

use super::FeatureExtractor;
use super::common::batch_norm_eps;
use crate::nn::layers::linear;
use tch::Tensor;
use tch::nn;

#[derive(Debug)]
struct BasicConv {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

/// `kernel`, `stride`, `padding` as (height, width).
fn basic(
    p: nn::Path,
    c_in: i64,
    c_out: i64,
    kernel: [i64; 2],
    stride: i64,
    padding: [i64; 2],
) -> BasicConv {
    let cfg = nn::ConvConfigND::<[i64; 2]> {
        stride: [stride, stride],
        padding,
        dilation: [1, 1],
        groups: 1,
        bias: false,
        ws_init: nn::Init::Randn {
            mean: 0.0,
            stdev: 0.1,
        },
        bs_init: nn::Init::Const(0.0),
        padding_mode: nn::PaddingMode::Zeros,
    };
    BasicConv {
        conv: nn::conv(&p / "conv", c_in, c_out, kernel, cfg),
        bn: batch_norm_eps(&p / "bn", c_out, 0.001),
    }
}

fn sq(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, pad: i64) -> BasicConv {
    basic(p, c_in, c_out, [k, k], stride, [pad, pad])
}

impl BasicConv {
    fn f(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.conv).apply_t(&self.bn, train).relu()
    }
}

fn chain(convs: &[BasicConv], x: &Tensor, train: bool) -> Tensor {
    convs.iter().fold(x.shallow_clone(), |y, c| c.f(&y, train))
}

fn avg3(x: &Tensor) -> Tensor {
    x.avg_pool2d([3, 3], [1, 1], [1, 1], false, true, None)
}

fn max3s2(x: &Tensor) -> Tensor {
    x.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false)
}

#[derive(Debug)]
enum Mixed {
    /// InceptionA: 1x1; 5x5; double 3x3; pool + 1x1.
    A([Vec<BasicConv>; 4]),
    /// InceptionB: 3x3 stride 2; double 3x3 stride 2; max-pool.
    B([Vec<BasicConv>; 2]),
    /// InceptionC: 1x1; 1x7-7x1; double 7x1-1x7; pool + 1x1.
    C([Vec<BasicConv>; 4]),
    /// InceptionD: 3x3 stride 2; 7x7x3 stride 2; max-pool.
    D([Vec<BasicConv>; 2]),
    /// InceptionE: 1x1; 3x3 split; double 3x3 split; pool + 1x1.
    E(Box<MixedE>),
}

#[derive(Debug)]
struct MixedE {
    b1: BasicConv,
    b3: [BasicConv; 3],
    b3dbl: [BasicConv; 4],
    pool: BasicConv,
}

fn inception_a(p: nn::Path, c: i64, pool_features: i64) -> Mixed {
    Mixed::A([
        vec![sq(&p / "branch1x1", c, 64, 1, 1, 0)],
        vec![
            sq(&p / "branch5x5_1", c, 48, 1, 1, 0),
            sq(&p / "branch5x5_2", 48, 64, 5, 1, 2),
        ],
        vec![
            sq(&p / "branch3x3dbl_1", c, 64, 1, 1, 0),
            sq(&p / "branch3x3dbl_2", 64, 96, 3, 1, 1),
            sq(&p / "branch3x3dbl_3", 96, 96, 3, 1, 1),
        ],
        vec![sq(&p / "branch_pool", c, pool_features, 1, 1, 0)],
    ])
}

fn inception_b(p: nn::Path, c: i64) -> Mixed {
    Mixed::B([
        vec![sq(&p / "branch3x3", c, 384, 3, 2, 0)],
        vec![
            sq(&p / "branch3x3dbl_1", c, 64, 1, 1, 0),
            sq(&p / "branch3x3dbl_2", 64, 96, 3, 1, 1),
            sq(&p / "branch3x3dbl_3", 96, 96, 3, 2, 0),
        ],
    ])
}

fn inception_c(p: nn::Path, c: i64, c7: i64) -> Mixed {
    let (r, col) = ([1, 7], [7, 1]);
    let (pr, pc) = ([0, 3], [3, 0]);
    Mixed::C([
        vec![sq(&p / "branch1x1", c, 192, 1, 1, 0)],
        vec![
            sq(&p / "branch7x7_1", c, c7, 1, 1, 0),
            basic(&p / "branch7x7_2", c7, c7, r, 1, pr),
            basic(&p / "branch7x7_3", c7, 192, col, 1, pc),
        ],
        vec![
            sq(&p / "branch7x7dbl_1", c, c7, 1, 1, 0),
            basic(&p / "branch7x7dbl_2", c7, c7, col, 1, pc),
            basic(&p / "branch7x7dbl_3", c7, c7, r, 1, pr),
            basic(&p / "branch7x7dbl_4", c7, c7, col, 1, pc),
            basic(&p / "branch7x7dbl_5", c7, 192, r, 1, pr),
        ],
        vec![sq(&p / "branch_pool", c, 192, 1, 1, 0)],
    ])
}

fn inception_d(p: nn::Path, c: i64) -> Mixed {
    Mixed::D([
        vec![
            sq(&p / "branch3x3_1", c, 192, 1, 1, 0),
            sq(&p / "branch3x3_2", 192, 320, 3, 2, 0),
        ],
        vec![
            sq(&p / "branch7x7x3_1", c, 192, 1, 1, 0),
            basic(&p / "branch7x7x3_2", 192, 192, [1, 7], 1, [0, 3]),
            basic(&p / "branch7x7x3_3", 192, 192, [7, 1], 1, [3, 0]),
            sq(&p / "branch7x7x3_4", 192, 192, 3, 2, 0),
        ],
    ])
}

fn inception_e(p: nn::Path, c: i64) -> Mixed {
    Mixed::E(Box::new(MixedE {
        b1: sq(&p / "branch1x1", c, 320, 1, 1, 0),
        b3: [
            sq(&p / "branch3x3_1", c, 384, 1, 1, 0),
            basic(&p / "branch3x3_2a", 384, 384, [1, 3], 1, [0, 1]),
            basic(&p / "branch3x3_2b", 384, 384, [3, 1], 1, [1, 0]),
        ],
        b3dbl: [
            sq(&p / "branch3x3dbl_1", c, 448, 1, 1, 0),
            sq(&p / "branch3x3dbl_2", 448, 384, 3, 1, 1),
            basic(&p / "branch3x3dbl_3a", 384, 384, [1, 3], 1, [0, 1]),
            basic(&p / "branch3x3dbl_3b", 384, 384, [3, 1], 1, [1, 0]),
        ],
        pool: sq(&p / "branch_pool", c, 192, 1, 1, 0),
    }))
}

impl Mixed {
    fn f(&self, x: &Tensor, t: bool) -> Tensor {
        let parts = match self {
            Mixed::A([b1, b5, b3, pool]) | Mixed::C([b1, b5, b3, pool]) => {
                vec![
                    chain(b1, x, t),
                    chain(b5, x, t),
                    chain(b3, x, t),
                    chain(pool, &avg3(x), t),
                ]
            }
            Mixed::B([b3, b3dbl]) | Mixed::D([b3, b3dbl]) => {
                vec![chain(b3, x, t), chain(b3dbl, x, t), max3s2(x)]
            }
            Mixed::E(e) => {
                let MixedE {
                    b1,
                    b3,
                    b3dbl,
                    pool,
                } = e.as_ref();
                let y3 = b3[0].f(x, t);
                let y3 = Tensor::cat(&[b3[1].f(&y3, t), b3[2].f(&y3, t)], 1);
                let yd = b3dbl[1].f(&b3dbl[0].f(x, t), t);
                let yd = Tensor::cat(&[b3dbl[2].f(&yd, t), b3dbl[3].f(&yd, t)], 1);
                vec![b1.f(x, t), y3, yd, pool.f(&avg3(x), t)]
            }
        };
        Tensor::cat(&parts, 1)
    }
}

#[derive(Debug)]
pub struct InceptionV3 {
    stem: Vec<BasicConv>,
    mixed: Vec<Mixed>,
    /// Built for key-for-key loading; unused in the forward pass.
    _aux: (BasicConv, BasicConv, nn::Linear),
    transform_input: bool,
}

/// Inception v3; `aux_classes` sizes the unused auxiliary head.
pub fn inception_v3(p: nn::Path, aux_classes: i64, transform_input: bool) -> InceptionV3 {
    let stem = vec![
        sq(&p / "Conv2d_1a_3x3", 3, 32, 3, 2, 0),
        sq(&p / "Conv2d_2a_3x3", 32, 32, 3, 1, 0),
        sq(&p / "Conv2d_2b_3x3", 32, 64, 3, 1, 1),
        sq(&p / "Conv2d_3b_1x1", 64, 80, 1, 1, 0),
        sq(&p / "Conv2d_4a_3x3", 80, 192, 3, 1, 0),
    ];
    let mixed = vec![
        inception_a(&p / "Mixed_5b", 192, 32),
        inception_a(&p / "Mixed_5c", 256, 64),
        inception_a(&p / "Mixed_5d", 288, 64),
        inception_b(&p / "Mixed_6a", 288),
        inception_c(&p / "Mixed_6b", 768, 128),
        inception_c(&p / "Mixed_6c", 768, 160),
        inception_c(&p / "Mixed_6d", 768, 160),
        inception_c(&p / "Mixed_6e", 768, 192),
        inception_d(&p / "Mixed_7a", 768),
        inception_e(&p / "Mixed_7b", 1280),
        inception_e(&p / "Mixed_7c", 2048),
    ];
    let aux = &p / "AuxLogits";
    InceptionV3 {
        stem,
        mixed,
        _aux: (
            sq(&aux / "conv0", 768, 128, 1, 1, 0),
            sq(&aux / "conv1", 128, 768, 5, 1, 0),
            linear(&aux / "fc", 768, aux_classes),
        ),
        transform_input,
    }
}

impl FeatureExtractor for InceptionV3 {
    fn feature_maps(&self, x: &Tensor, train: bool) -> Tensor {
        let x = if self.transform_input {
            // torchvision: from ImageNet normalisation to (x - 0.5) / 0.5.
            let chans: Vec<Tensor> = (0..3)
                .map(|c| {
                    let (m, s) = (super::IMAGENET_MEAN[c], super::IMAGENET_STD[c]);
                    x.narrow(1, c as i64, 1) * (s / 0.5) + (m - 0.5) / 0.5
                })
                .collect();
            Tensor::cat(&chans, 1)
        } else {
            x.shallow_clone()
        };
        let s = &self.stem;
        let mut y = s[2].f(&s[1].f(&s[0].f(&x, train), train), train);
        y = max3s2(&y);
        y = max3s2(&s[4].f(&s[3].f(&y, train), train));
        for m in &self.mixed {
            y = m.f(&y, train);
        }
        y
    }

    fn out_channels(&self) -> i64 {
        2048
    }
}
