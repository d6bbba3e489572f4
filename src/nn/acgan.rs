//! The plain ACGAN baseline (Odena et al. 2017), DCGAN-style: the comparison
//! model of the paper's Fig. 11 and Tables 3-4.
//!
//! Generator: label embedding concatenated with the noise (as MU-ACGAN
//! does, so the comparison is fair), linear to
//! `[4C, H/4, W/4]`, two (nearest upsample x2, 3x3 conv, BN, LeakyReLU)
//! stages, a 3x3 conv to one channel, tanh. Discriminator: four stride-2 3x3
//! convs (C, 2C, 4C, 8C; BN from the second on; LeakyReLU 0.2), flatten, then
//! FC1 -> 1 real/fake logit and FC2 -> class logits.

use super::layers::{batch_norm2d, conv3x3, leaky_relu_02, linear_no_bias, stride2_size};
use super::{Discriminator, Generator, HeadOptions, Judgement, ModelError, check_divisible};
use crate::config::GanArch;
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// Sizes shared by both halves.
#[derive(Debug, Clone, Copy)]
pub struct AcganDims {
    pub n_classes: i64,
    pub latent_dim: i64,
    pub base_channels: i64,
    pub height: i64,
    pub width: i64,
}

#[derive(Debug)]
pub struct AcganGenerator {
    dims: AcganDims,
    embed: nn::Embedding,
    fc: nn::Linear,
    bn0: nn::BatchNorm,
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    out: nn::Conv2D,
}

pub fn acgan_generator(p: nn::Path, dims: AcganDims) -> Result<AcganGenerator, ModelError> {
    check_divisible(
        "acgan",
        GanArch::Acgan.size_divisor() as i64,
        dims.height,
        dims.width,
    )?;
    let c = dims.base_channels;
    let (h0, w0) = (dims.height / 4, dims.width / 4);
    Ok(AcganGenerator {
        dims,
        embed: nn::embedding(
            &p / "label_embed",
            dims.n_classes,
            dims.latent_dim,
            Default::default(),
        ),
        // Layers feeding a BatchNorm carry no bias: it would cancel out.
        fc: linear_no_bias(&p / "fc", 2 * dims.latent_dim, 4 * c * h0 * w0),
        bn0: batch_norm2d(&p / "bn0", 4 * c),
        conv1: conv3x3(&p / "conv1", 4 * c, 2 * c, 1, false),
        bn1: batch_norm2d(&p / "bn1", 2 * c),
        conv2: conv3x3(&p / "conv2", 2 * c, c, 1, false),
        bn2: batch_norm2d(&p / "bn2", c),
        out: conv3x3(&p / "out", c, 1, 1, true),
    })
}

impl Generator for AcganGenerator {
    fn generate(&self, z: &Tensor, labels: &Tensor, train: bool) -> Tensor {
        let d = self.dims;
        let (h0, w0) = (d.height / 4, d.width / 4);
        let x = Tensor::cat(&[z.shallow_clone(), self.embed.forward(labels)], 1).apply(&self.fc);
        let x = x
            .view([-1, 4 * d.base_channels, h0, w0])
            .apply_t(&self.bn0, train);
        let x = x
            .upsample_nearest2d([h0 * 2, w0 * 2], None, None)
            .apply(&self.conv1);
        let x = leaky_relu_02(&x.apply_t(&self.bn1, train));
        let x = x
            .upsample_nearest2d([d.height, d.width], None, None)
            .apply(&self.conv2);
        let x = leaky_relu_02(&x.apply_t(&self.bn2, train));
        x.apply(&self.out).tanh()
    }
}

#[derive(Debug)]
pub struct AcganDiscriminator {
    convs: Vec<nn::Conv2D>,
    norms: Vec<Option<nn::BatchNorm>>,
    heads: super::Heads,
}

pub fn acgan_discriminator(p: nn::Path, dims: AcganDims) -> AcganDiscriminator {
    acgan_discriminator_with(p, dims, HeadOptions::default())
}

/// [`acgan_discriminator`] with minibatch standard deviation and/or a twin
/// class head.
pub fn acgan_discriminator_with(
    p: nn::Path,
    dims: AcganDims,
    opts: HeadOptions,
) -> AcganDiscriminator {
    let c = dims.base_channels;
    let widths = [c, 2 * c, 4 * c, 8 * c];
    let mut convs = Vec::new();
    let mut norms = Vec::new();
    let (mut h, mut w, mut c_in) = (dims.height, dims.width, 1);
    for (i, &c_out) in widths.iter().enumerate() {
        convs.push(conv3x3(&p / format!("conv{i}"), c_in, c_out, 2, i == 0));
        norms.push((i > 0).then(|| batch_norm2d(&p / format!("bn{i}"), c_out)));
        (h, w, c_in) = (stride2_size(h), stride2_size(w), c_out);
    }
    AcganDiscriminator {
        convs,
        norms,
        heads: super::heads(&p, [c_in, h, w], dims.n_classes, opts),
    }
}

impl Discriminator for AcganDiscriminator {
    fn judge_all(&self, images: &Tensor, train: bool) -> Judgement {
        let mut x = images.shallow_clone();
        for (conv, norm) in self.convs.iter().zip(&self.norms) {
            x = x.apply(conv);
            if let Some(bn) = norm {
                x = x.apply_t(bn, train);
            }
            x = leaky_relu_02(&x);
        }
        self.heads.judge(&x)
    }
}

/// Random labels `[n]` in `0..n_classes` on `device`, for fake images.
pub fn random_labels(n: i64, n_classes: i64, device: tch::Device) -> Tensor {
    Tensor::randint(n_classes, [n], (Kind::Int64, device))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims() -> AcganDims {
        AcganDims {
            n_classes: 3,
            latent_dim: 8,
            base_channels: 4,
            height: 32,
            width: 16,
        }
    }

    #[test]
    fn shapes_for_a_tall_image() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let g = acgan_generator(vs.root() / "g", dims()).unwrap();
        let d = acgan_discriminator(vs.root() / "d", dims());
        let z = Tensor::randn([5, 8], (Kind::Float, tch::Device::Cpu));
        let labels = Tensor::from_slice(&[0i64, 1, 2, 0, 1]);
        let x = g.generate(&z, &labels, true);
        assert_eq!(x.size(), vec![5, 1, 32, 16]);
        let max = f64::try_from(x.abs().max()).unwrap();
        assert!(max <= 1.0);
        let (s, c) = d.judge(&x, true);
        assert_eq!(s.size(), vec![5]);
        assert_eq!(c.size(), vec![5, 3]);
    }

    #[test]
    fn shapes_at_the_sizes_users_train() {
        for (h, w) in [(64, 32), (128, 64), (256, 128), (1024, 256)] {
            let dims = AcganDims {
                n_classes: 3,
                latent_dim: 8,
                base_channels: 2,
                height: h,
                width: w,
            };
            let vs = nn::VarStore::new(tch::Device::Cpu);
            let g = acgan_generator(vs.root() / "g", dims).unwrap();
            let d = acgan_discriminator(vs.root() / "d", dims);
            let z = Tensor::randn([2, 8], (Kind::Float, tch::Device::Cpu));
            let x = tch::no_grad(|| g.generate(&z, &Tensor::from_slice(&[1i64, 2]), false));
            assert_eq!(x.size(), vec![2, 1, h, w]);
            let (s, c) = tch::no_grad(|| d.judge(&x, false));
            assert_eq!((s.size(), c.size()), (vec![2], vec![2, 3]));
        }
    }

    #[test]
    fn a_gradient_reaches_every_parameter() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let g = acgan_generator(vs.root() / "g", dims()).unwrap();
        let d = acgan_discriminator(vs.root() / "d", dims());
        let z = Tensor::randn([4, 8], (Kind::Float, tch::Device::Cpu));
        let (s, c) = d.judge(
            &g.generate(&z, &Tensor::from_slice(&[0i64, 1, 2, 1]), true),
            true,
        );
        (s.sum(Kind::Float) + c.square().sum(Kind::Float)).backward();
        for (name, var) in vs.variables() {
            if var.requires_grad() {
                let grad = var.grad();
                assert!(grad.defined(), "{name}: no gradient");
                let norm = f64::try_from(grad.abs().sum(Kind::Float)).unwrap();
                assert!(norm.is_finite() && norm > 0.0, "{name}: gradient {norm}");
            }
        }
    }

    #[test]
    fn rejects_sizes_not_divisible_by_four() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let mut bad = dims();
        bad.height = 30;
        let err = acgan_generator(vs.root(), bad).unwrap_err().to_string();
        assert!(err.contains("[32, 16]"), "{err}");
    }
}
