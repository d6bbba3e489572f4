//! Pieces torchvision's mobile backbones share: `Conv2dNormActivation`
//! (keys `.0` conv, `.1` BatchNorm) and `SqueezeExcitation` (`fc1`, `fc2`).

use crate::nn::layers::{ConvSpec, conv2d};
use tch::Tensor;
use tch::nn::{self, ModuleT};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Identity,
    Relu,
    Hardswish,
    Silu,
}

impl Act {
    pub fn apply(self, x: Tensor) -> Tensor {
        match self {
            Act::Identity => x,
            Act::Relu => x.relu(),
            Act::Hardswish => hardswish(&x),
            Act::Silu => x.silu(),
        }
    }
}

/// `x * relu6(x + 3) / 6`.
pub fn hardswish(x: &Tensor) -> Tensor {
    x * hardsigmoid(x)
}

/// `relu6(x + 3) / 6`.
pub fn hardsigmoid(x: &Tensor) -> Tensor {
    (x + 3.0).clamp(0.0, 6.0) / 6.0
}

/// BatchNorm with PyTorch's initialisation and the given eps.
pub fn batch_norm_eps(p: nn::Path, channels: i64, eps: f64) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig {
        eps,
        ws_init: nn::Init::Const(1.0),
        ..Default::default()
    };
    nn::batch_norm2d(p, channels, cfg)
}

/// Conv (no bias, padding `(k - 1) / 2`) + BatchNorm + activation.
#[derive(Debug)]
pub struct ConvNormAct {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
    act: Act,
}

#[allow(clippy::too_many_arguments)]
pub fn conv_norm_act(
    p: nn::Path,
    c_in: i64,
    c_out: i64,
    kernel: i64,
    stride: i64,
    groups: i64,
    eps: f64,
    act: Act,
) -> ConvNormAct {
    let spec = ConvSpec::PLAIN
        .stride(stride)
        .padding((kernel - 1) / 2)
        .groups(groups);
    ConvNormAct {
        conv: conv2d(&p / "0", c_in, c_out, kernel, spec),
        bn: batch_norm_eps(&p / "1", c_out, eps),
        act,
    }
}

impl ModuleT for ConvNormAct {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.act.apply(x.apply(&self.conv).apply_t(&self.bn, train))
    }
}

/// Squeeze-and-excitation: global average pool, `fc1` (1x1 conv) +
/// activation, `fc2` (1x1 conv) + gate; `x * gate`.
#[derive(Debug)]
pub struct SqueezeExcitation {
    fc1: nn::Conv2D,
    fc2: nn::Conv2D,
    act: Act,
    /// Hard sigmoid (MobileNetV3) or sigmoid (EfficientNet).
    hard_gate: bool,
}

pub fn squeeze_excitation(
    p: nn::Path,
    channels: i64,
    squeeze: i64,
    act: Act,
    hard_gate: bool,
) -> SqueezeExcitation {
    let spec = ConvSpec::PLAIN.bias(true);
    SqueezeExcitation {
        fc1: conv2d(&p / "fc1", channels, squeeze, 1, spec),
        fc2: conv2d(&p / "fc2", squeeze, channels, 1, spec),
        act,
        hard_gate,
    }
}

impl ModuleT for SqueezeExcitation {
    fn forward_t(&self, x: &Tensor, _train: bool) -> Tensor {
        let s = self
            .act
            .apply(x.adaptive_avg_pool2d([1, 1]).apply(&self.fc1))
            .apply(&self.fc2);
        let gate = if self.hard_gate {
            hardsigmoid(&s)
        } else {
            s.sigmoid()
        };
        x * gate
    }
}

/// torchvision's `_make_divisible(v, 8)`: round to the nearest multiple of 8,
/// never more than 10 % below `v`.
pub fn make_divisible(v: f64, divisor: i64) -> i64 {
    let d = divisor as f64;
    let mut new = (d.max(((v + d / 2.0) / d).floor() * d)) as i64;
    if (new as f64) < 0.9 * v {
        new += divisor;
    }
    new
}

/// An inverted-residual block as both mobile nets build it: optional 1x1
/// expansion, depthwise conv, optional squeeze-excitation, 1x1 projection;
/// residual when the stride is 1 and the widths agree. Keys `block.{j}`.
#[derive(Debug)]
pub struct InvertedResidual {
    layers: Vec<Box<dyn ModuleT>>,
    residual: bool,
}

/// The shape of one inverted-residual block.
#[derive(Debug, Clone, Copy)]
pub struct InvertedSpec {
    pub c_in: i64,
    pub expanded: i64,
    pub c_out: i64,
    pub kernel: i64,
    pub stride: i64,
    /// Squeeze width, or None for no squeeze-excitation.
    pub squeeze: Option<i64>,
    pub act: Act,
    pub se_act: Act,
    pub hard_gate: bool,
    pub eps: f64,
}

pub fn inverted_residual(p: nn::Path, s: InvertedSpec) -> InvertedResidual {
    let b = &p / "block";
    let mut layers: Vec<Box<dyn ModuleT>> = Vec::new();
    if s.expanded != s.c_in {
        let j = layers.len().to_string();
        layers.push(Box::new(conv_norm_act(
            &b / j,
            s.c_in,
            s.expanded,
            1,
            1,
            1,
            s.eps,
            s.act,
        )));
    }
    let j = layers.len().to_string();
    layers.push(Box::new(conv_norm_act(
        &b / j,
        s.expanded,
        s.expanded,
        s.kernel,
        s.stride,
        s.expanded,
        s.eps,
        s.act,
    )));
    if let Some(squeeze) = s.squeeze {
        let j = layers.len().to_string();
        layers.push(Box::new(squeeze_excitation(
            &b / j,
            s.expanded,
            squeeze,
            s.se_act,
            s.hard_gate,
        )));
    }
    let j = layers.len().to_string();
    layers.push(Box::new(conv_norm_act(
        &b / j,
        s.expanded,
        s.c_out,
        1,
        1,
        1,
        s.eps,
        Act::Identity,
    )));
    InvertedResidual {
        layers,
        residual: s.stride == 1 && s.c_in == s.c_out,
    }
}

impl ModuleT for InvertedResidual {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.shallow_clone();
        for layer in &self.layers {
            y = layer.forward_t(&y, train);
        }
        if self.residual { y + x } else { y }
    }
}

/// The body both mobile nets share: a stem, inverted-residual blocks, and
/// a last 1x1 conv to `out_channels`.
#[derive(Debug)]
pub struct MobileBody {
    pub stem: ConvNormAct,
    pub blocks: Vec<InvertedResidual>,
    pub last: ConvNormAct,
    pub out_channels: i64,
}

impl super::FeatureExtractor for MobileBody {
    fn feature_maps(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = self.stem.forward_t(x, train);
        for block in &self.blocks {
            y = block.forward_t(&y, train);
        }
        self.last.forward_t(&y, train)
    }

    fn out_channels(&self) -> i64 {
        self.out_channels
    }
}

#[cfg(test)]
mod tests {
    use super::make_divisible;

    #[test]
    fn make_divisible_matches_torchvision() {
        assert_eq!(make_divisible(16.0, 8), 16);
        assert_eq!(make_divisible(72.0 / 4.0, 8), 24);
        assert_eq!(make_divisible(240.0 / 4.0, 8), 64);
        assert_eq!(make_divisible(32.0 * 6.0, 8), 192);
    }
}
