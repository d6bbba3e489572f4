//! Coordinate Attention (Hou et al., CVPR 2021), METHOD.md section 6.
//!
//! `x [B, C, H, W]` is averaged over W (`[B, C, H, 1]`) and over H
//! (`[B, C, 1, W]`, transposed to `[B, C, W, 1]`); the two are concatenated
//! along the spatial axis (`[B, C, H + W, 1]`), squeezed by a 1x1 conv to
//! `mip = max(8, C / 32)` channels, batch-normalised and passed through the
//! non-linearity, split back, and each half expanded by its own 1x1 conv to
//! C channels and a sigmoid: `out = x * a_h * a_w`. No residual inside.

use super::layers::{batch_norm2d, conv1x1};
use tch::Tensor;
use tch::nn::{self, ModuleT};

pub use crate::config::CaActivation;

/// Apply the CA non-linearity.
pub fn activate(activation: CaActivation, x: &Tensor) -> Tensor {
    match activation {
        CaActivation::Relu => x.relu(),
        CaActivation::HSwish => x * (x + 3.0).clamp(0.0, 6.0) / 6.0,
    }
}

/// The squeezed width of the official implementation.
pub fn ca_mip(channels: i64) -> i64 {
    (channels / 32).max(8)
}

#[derive(Debug)]
pub struct CoordAttention {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv_h: nn::Conv2D,
    conv_w: nn::Conv2D,
    activation: CaActivation,
}

/// A CA module over `channels` channels; sub-paths `conv1`, `bn1`, `conv_h`, `conv_w`.
pub fn coord_attention(p: nn::Path, channels: i64, activation: CaActivation) -> CoordAttention {
    let mip = ca_mip(channels);
    CoordAttention {
        // conv1 feeds a BatchNorm, so its bias would be cancelled: none.
        conv1: conv1x1(&p / "conv1", channels, mip, false),
        bn1: batch_norm2d(&p / "bn1", mip),
        conv_h: conv1x1(&p / "conv_h", mip, channels, true),
        conv_w: conv1x1(&p / "conv_w", mip, channels, true),
        activation,
    }
}

impl ModuleT for CoordAttention {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let (h, w) = (x.size()[2], x.size()[3]);
        let z_h = x.mean_dim(3, true, None); // [B, C, H, 1]
        let z_w = x.mean_dim(2, true, None).permute([0, 1, 3, 2]); // [B, C, W, 1]
        let y = pointwise(&Tensor::cat(&[z_h, z_w], 2), &self.conv1).apply_t(&self.bn1, train);
        let y = activate(self.activation, &y);
        let parts = y.split_with_sizes([h, w], 2);
        let a_h = pointwise(&parts[0], &self.conv_h).sigmoid(); // [B, C, H, 1]
        let a_w = pointwise(&parts[1], &self.conv_w)
            .permute([0, 1, 3, 2])
            .sigmoid(); // [B, C, 1, W]
        x * a_h * a_w
    }
}

/// The 1x1 convolution `conv` of a column `x: [B, C_in, L, 1]` as one
/// matrix product per image, `[C_out, C_in] @ [C_in, L]` (plus the bias):
/// the same result, without the convolution's set-up, which on the CPU
/// costs more than the arithmetic on columns this thin.
fn pointwise(x: &Tensor, conv: &nn::Conv2D) -> Tensor {
    let size = x.size();
    let weight = conv.ws.flatten(1, -1); // [C_out, C_in]
    let y = weight.matmul(&x.flatten(2, -1)); // [B, C_out, L]
    let y = match &conv.bs {
        Some(bias) => y + bias.view([1, -1, 1]),
        None => y,
    };
    y.view([size[0], -1, size[2], size[3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn keeps_shape_and_only_rescales_by_gates_in_zero_one() {
        let vs = nn::VarStore::new(Device::Cpu);
        let ca = coord_attention(vs.root(), 16, CaActivation::HSwish);
        let x = Tensor::rand([2, 16, 12, 7], (Kind::Float, Device::Cpu)) + 0.1;
        let y = ca.forward_t(&x, true);
        assert_eq!(y.size(), x.size());
        // out = x * gate with gate in (0, 1): 0 < y / x < 1 everywhere.
        let ratio = &y / &x;
        assert!(f64::try_from(ratio.min()).unwrap() > 0.0);
        assert!(f64::try_from(ratio.max()).unwrap() < 1.0);
    }

    #[test]
    fn pointwise_is_the_1x1_convolution() {
        let vs = nn::VarStore::new(Device::Cpu);
        for bias in [true, false] {
            let conv = conv1x1(vs.root() / format!("c{bias}"), 6, 4, bias);
            let x = Tensor::randn([3, 6, 11, 1], (Kind::Float, Device::Cpu));
            let gap = (pointwise(&x, &conv) - x.apply(&conv)).abs().max();
            assert!(f64::try_from(gap).unwrap() < 1e-6, "bias {bias}");
        }
    }

    #[test]
    fn mip_follows_the_official_rule() {
        assert_eq!(ca_mip(32), 8);
        assert_eq!(ca_mip(512), 16);
    }

    #[test]
    fn h_swish_values() {
        let x = Tensor::from_slice(&[-4.0f32, -1.0, 0.0, 1.0, 4.0]);
        let y = Vec::<f32>::try_from(activate(CaActivation::HSwish, &x)).unwrap();
        // x * relu6(x + 3) / 6 at -4, -1, 0, 1, 4
        let want = [0.0, -2.0 / 6.0, 0.0, 4.0 / 6.0, 4.0];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{y:?}");
        }
    }
}
