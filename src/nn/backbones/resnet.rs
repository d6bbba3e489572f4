//! ResNet34 and ResNeXt50 (32x4d) with torchvision's variable names:
//! `conv1`, `bn1`, `layerN.i.conv1..3`, `layerN.i.bn1..3`,
//! `layerN.0.downsample.0/1`, `fc`.
//!
//! Input `[B, 3, H, W]` (ImageNet-normalised); feature maps `[B, C, H/32, W/32]`
//! with C = 512 (ResNet34) or 2048 (ResNeXt50).

use super::FeatureExtractor;
use crate::nn::layers::{ConvSpec, batch_norm2d, conv2d};
use tch::Tensor;
use tch::nn;

#[derive(Debug, Clone, Copy)]
pub enum ResNetKind {
    /// BasicBlocks [3, 4, 6, 3].
    ResNet34,
    /// Bottlenecks [3, 4, 6, 3], 32 groups of width 4.
    ResNeXt50,
}

#[derive(Debug)]
struct Block {
    convs: Vec<nn::Conv2D>,
    norms: Vec<nn::BatchNorm>,
    downsample: Option<(nn::Conv2D, nn::BatchNorm)>,
}

impl Block {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.shallow_clone();
        let last = self.convs.len() - 1;
        for (i, (conv, bn)) in self.convs.iter().zip(&self.norms).enumerate() {
            y = y.apply(conv).apply_t(bn, train);
            if i < last {
                y = y.relu_();
            }
        }
        let identity = match &self.downsample {
            Some((conv, bn)) => x.apply(conv).apply_t(bn, train),
            None => x.shallow_clone(),
        };
        (y + identity).relu_()
    }
}

#[derive(Debug)]
pub struct ResNet {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    layers: Vec<Vec<Block>>,
    out_channels: i64,
}

pub fn resnet(p: nn::Path, kind: ResNetKind) -> ResNet {
    let (expansion, groups, base_width) = match kind {
        ResNetKind::ResNet34 => (1, 1, 64),
        ResNetKind::ResNeXt50 => (4, 32, 4),
    };
    let mut inplanes = 64;
    let mut layers = Vec::new();
    for (li, (&planes, &blocks)) in [64i64, 128, 256, 512]
        .iter()
        .zip(&[3usize, 4, 6, 3])
        .enumerate()
    {
        let lp = &p / format!("layer{}", li + 1);
        let stride = if li == 0 { 1 } else { 2 };
        let mut layer = Vec::new();
        for bi in 0..blocks {
            let bp = &lp / bi.to_string();
            let s = if bi == 0 { stride } else { 1 };
            let out = planes * expansion;
            let downsample = (bi == 0 && (s != 1 || inplanes != out)).then(|| {
                let dp = &bp / "downsample";
                (
                    conv2d(&dp / "0", inplanes, out, 1, ConvSpec::PLAIN.stride(s)),
                    batch_norm2d(&dp / "1", out),
                )
            });
            let (convs, norms) = match kind {
                ResNetKind::ResNet34 => (
                    vec![
                        conv2d(
                            &bp / "conv1",
                            inplanes,
                            planes,
                            3,
                            ConvSpec::PLAIN.stride(s).padding(1),
                        ),
                        conv2d(&bp / "conv2", planes, planes, 3, ConvSpec::PLAIN.padding(1)),
                    ],
                    vec![
                        batch_norm2d(&bp / "bn1", planes),
                        batch_norm2d(&bp / "bn2", planes),
                    ],
                ),
                ResNetKind::ResNeXt50 => {
                    let width = planes * base_width / 64 * groups;
                    (
                        vec![
                            conv2d(&bp / "conv1", inplanes, width, 1, ConvSpec::PLAIN),
                            conv2d(
                                &bp / "conv2",
                                width,
                                width,
                                3,
                                ConvSpec::PLAIN.stride(s).padding(1).groups(groups),
                            ),
                            conv2d(&bp / "conv3", width, out, 1, ConvSpec::PLAIN),
                        ],
                        vec![
                            batch_norm2d(&bp / "bn1", width),
                            batch_norm2d(&bp / "bn2", width),
                            batch_norm2d(&bp / "bn3", out),
                        ],
                    )
                }
            };
            layer.push(Block {
                convs,
                norms,
                downsample,
            });
            inplanes = out;
        }
        layers.push(layer);
    }
    ResNet {
        conv1: conv2d(&p / "conv1", 3, 64, 7, ConvSpec::PLAIN.stride(2).padding(3)),
        bn1: batch_norm2d(&p / "bn1", 64),
        layers,
        out_channels: inplanes,
    }
}

impl FeatureExtractor for ResNet {
    fn feature_maps(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.apply(&self.conv1).apply_t(&self.bn1, train).relu_();
        y = y.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        for layer in &self.layers {
            for block in layer {
                y = block.forward_t(&y, train);
            }
        }
        y
    }

    fn out_channels(&self) -> i64 {
        self.out_channels
    }
}
