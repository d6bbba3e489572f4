//! MU-ACGAN (METHOD.md sections 4 and 5): a 4-level U-Net generator with
//! residual dense attention (RDA) blocks, the class-conditioned noise
//! injected at every encoder scale, residual coordinate-attention gates
//! (RCAG) on the skips and bilinear upsampling; and a discriminator of three
//! RDA blocks with two heads.
//!
//! With widths `b = base_channels` (default 32): encoder b, 2b, 4b, 8b at
//! H, H/2, H/4, H/8; bottleneck 16b at H/16; decoder back up to b at H.
//! Image sizes must be divisible by 16; non-square works.

use super::attention::CaActivation;
use super::blocks::{Rcag, Rda, rcag, rda};
use super::layers::{conv1x1, linear};
use super::{Discriminator, Generator, HeadOptions, Judgement, ModelError, check_divisible};
use crate::config::GanArch;
use tch::Tensor;
use tch::nn::{self, Module, ModuleT};

/// Sizes and options shared by both networks.
#[derive(Debug, Clone, Copy)]
pub struct MuAcganDims {
    pub n_classes: i64,
    /// Noise dimension; the label embedding has the same width.
    pub latent_dim: i64,
    pub base_channels: i64,
    /// Channels of each injected noise map (METHOD.md: 1).
    pub scale_channels: i64,
    pub height: i64,
    pub width: i64,
    pub ca_activation: CaActivation,
    /// The noise (with the label embedding) also scales and shifts every
    /// decoder level's features, `x (1 + gamma) + beta` (not in the paper;
    /// against collapse, see the README).
    pub decoder_noise: bool,
}

impl MuAcganDims {
    fn widths(&self) -> [i64; 5] {
        let b = self.base_channels;
        [b, 2 * b, 4 * b, 8 * b, 16 * b]
    }

    /// `(height, width)` of encoder level `i` (0 = full size).
    fn scale(&self, i: u32) -> (i64, i64) {
        (self.height >> i, self.width >> i)
    }
}

#[derive(Debug)]
pub struct MuAcganGenerator {
    dims: MuAcganDims,
    embed: nn::Embedding,
    fc: nn::Linear,
    /// Encoder RDA blocks, levels 0..4.
    enc: Vec<Rda>,
    /// 1x1 convs lifting injected map i (levels 1..4) to the pooled width.
    lift: Vec<nn::Conv2D>,
    /// Gates fusing pooled features with the injected map (levels 1..4).
    gate_enc: Vec<Rcag>,
    bottleneck: Rda,
    /// Decoder levels 3, 2, 1, 0: 1x1 reduce to the skip's width, bilinear
    /// upsample, RCAG with the skip, RDA.
    reduce: Vec<nn::Conv2D>,
    gate_dec: Vec<Rcag>,
    dec: Vec<Rda>,
    /// With `decoder_noise`: per decoder level, [z, label] -> (gamma, beta).
    film: Vec<nn::Linear>,
    out: nn::Conv2D,
}

pub fn mu_acgan_generator(p: nn::Path, dims: MuAcganDims) -> Result<MuAcganGenerator, ModelError> {
    check_divisible(
        "mu-acgan",
        GanArch::MuAcgan.size_divisor() as i64,
        dims.height,
        dims.width,
    )?;
    let w = dims.widths();
    let k = dims.scale_channels;
    let act = dims.ca_activation;
    let map_len: i64 = (0..4)
        .map(|i| {
            let (h, wd) = dims.scale(i);
            h * wd * k
        })
        .sum();
    let mut enc = Vec::new();
    let mut lift = Vec::new();
    let mut gate_enc = Vec::new();
    for i in 0..4usize {
        if i == 0 {
            enc.push(rda(&p / "enc0", k, w[0], act));
        } else {
            lift.push(conv1x1(&p / format!("lift{i}"), k, w[i - 1], true));
            gate_enc.push(rcag(&p / format!("gate_enc{i}"), w[i - 1], act));
            enc.push(rda(&p / format!("enc{i}"), w[i - 1] + k, w[i], act));
        }
    }
    let mut reduce = Vec::new();
    let mut gate_dec = Vec::new();
    let mut dec = Vec::new();
    let mut film = Vec::new();
    for i in (0..4usize).rev() {
        reduce.push(conv1x1(&p / format!("reduce{i}"), w[i + 1], w[i], true));
        gate_dec.push(rcag(&p / format!("gate_dec{i}"), w[i], act));
        dec.push(rda(&p / format!("dec{i}"), w[i], w[i], act));
        if dims.decoder_noise {
            film.push(linear(
                &p / format!("film{i}"),
                2 * dims.latent_dim,
                2 * w[i],
            ));
        }
    }
    Ok(MuAcganGenerator {
        dims,
        embed: nn::embedding(
            &p / "label_embed",
            dims.n_classes,
            dims.latent_dim,
            Default::default(),
        ),
        fc: linear(&p / "fc", 2 * dims.latent_dim, map_len),
        enc,
        lift,
        gate_enc,
        bottleneck: rda(&p / "bottleneck", w[3], w[4], act),
        reduce,
        gate_dec,
        dec,
        film,
        out: conv1x1(&p / "out", w[0], 1, true),
    })
}

impl MuAcganGenerator {
    /// The four injected maps `[B, k, H >> i, W >> i]`, i = 0..4, from the
    /// noise concatenated with the label embedding (`cond`, `[B, 2 latent]`).
    fn injected_maps(&self, cond: &Tensor) -> Vec<Tensor> {
        let d = self.dims;
        let v = cond.apply(&self.fc);
        let sizes: Vec<i64> = (0..4)
            .map(|i| {
                let (h, w) = d.scale(i);
                h * w * d.scale_channels
            })
            .collect();
        v.split_with_sizes(&sizes, 1)
            .into_iter()
            .enumerate()
            .map(|(i, part)| {
                let (h, w) = d.scale(i as u32);
                part.view([-1, d.scale_channels, h, w])
            })
            .collect()
    }
}

impl Generator for MuAcganGenerator {
    fn generate(&self, z: &Tensor, labels: &Tensor, train: bool) -> Tensor {
        let cond = Tensor::cat(&[z.shallow_clone(), self.embed.forward(labels)], 1);
        let maps = self.injected_maps(&cond);
        let mut skips = Vec::with_capacity(4);
        let mut x = self.enc[0].forward_t(&maps[0], train);
        skips.push(x.shallow_clone());
        // Levels 1..4: gate the pooled features with the lifted injected map,
        // then an RDA block on [gated, injected map].
        let levels = maps
            .iter()
            .zip(&self.enc)
            .skip(1)
            .zip(self.lift.iter().zip(&self.gate_enc));
        for ((map, enc), (lift, gate)) in levels {
            let pooled = x.max_pool2d_default(2);
            let gated = gate.fuse(&pooled, &map.apply(lift), train);
            x = enc.forward_t(&Tensor::cat(&[gated, map.shallow_clone()], 1), train);
            skips.push(x.shallow_clone());
        }
        x = self.bottleneck.forward_t(&x.max_pool2d_default(2), train);
        for (j, level) in (0..4usize).rev().enumerate() {
            let (h, w) = self.dims.scale(level as u32);
            let up = x
                .apply(&self.reduce[j])
                .upsample_bilinear2d([h, w], false, None, None);
            let gated = self.gate_dec[j].fuse(&up, &skips[level], train);
            x = self.dec[j].forward_t(&gated, train);
            if let Some(film) = self.film.get(j) {
                let c = x.size()[1];
                let gb = cond.apply(film).view([-1, 2 * c, 1, 1]);
                let (gamma, beta) = (gb.narrow(1, 0, c), gb.narrow(1, c, c));
                x = &x * (gamma + 1.0) + beta;
            }
        }
        x.apply(&self.out).tanh()
    }
}

#[derive(Debug)]
pub struct MuAcganDiscriminator {
    blocks: Vec<Rda>,
    heads: super::Heads,
}

/// Three RDA blocks (b, 2b, 4b), each followed by 2x2 max-pooling; FC1 ->
/// real/fake logit, FC2 -> class logits.
pub fn mu_acgan_discriminator(p: nn::Path, dims: MuAcganDims) -> MuAcganDiscriminator {
    mu_acgan_discriminator_with(p, dims, HeadOptions::default())
}

/// [`mu_acgan_discriminator`] with minibatch standard deviation and/or a
/// twin class head.
pub fn mu_acgan_discriminator_with(
    p: nn::Path,
    dims: MuAcganDims,
    opts: HeadOptions,
) -> MuAcganDiscriminator {
    let w = dims.widths();
    let act = dims.ca_activation;
    let blocks = vec![
        rda(&p / "block0", 1, w[0], act),
        rda(&p / "block1", w[0], w[1], act),
        rda(&p / "block2", w[1], w[2], act),
    ];
    MuAcganDiscriminator {
        blocks,
        heads: super::heads(
            &p,
            [w[2], dims.height / 8, dims.width / 8],
            dims.n_classes,
            opts,
        ),
    }
}

impl Discriminator for MuAcganDiscriminator {
    fn judge_all(&self, images: &Tensor, train: bool) -> Judgement {
        let mut x = images.shallow_clone();
        for block in &self.blocks {
            x = block.forward_t(&x, train).max_pool2d_default(2);
        }
        self.heads.judge(&x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn dims(height: i64, width: i64, base: i64) -> MuAcganDims {
        MuAcganDims {
            n_classes: 3,
            latent_dim: 8,
            base_channels: base,
            scale_channels: 1,
            height,
            width,
            ca_activation: CaActivation::Relu,
            decoder_noise: false,
        }
    }

    #[test]
    fn shapes_at_the_sizes_users_train() {
        for (h, w, base) in [(64, 32, 4), (128, 64, 2), (256, 128, 2), (1024, 256, 1)] {
            let g_vs = nn::VarStore::new(Device::Cpu);
            let d_vs = nn::VarStore::new(Device::Cpu);
            let g = mu_acgan_generator(g_vs.root(), dims(h, w, base)).unwrap();
            let d = mu_acgan_discriminator(d_vs.root(), dims(h, w, base));
            let z = Tensor::randn([2, 8], (Kind::Float, Device::Cpu));
            let x = tch::no_grad(|| g.generate(&z, &Tensor::from_slice(&[0i64, 2]), false));
            assert_eq!(x.size(), vec![2, 1, h, w], "{h}x{w}");
            assert!(f64::try_from(x.abs().max()).unwrap() <= 1.0);
            let (s, c) = tch::no_grad(|| d.judge(&x, false));
            assert_eq!((s.size(), c.size()), (vec![2], vec![2, 3]), "{h}x{w}");
        }
    }

    #[test]
    fn rejects_sizes_not_divisible_by_16() {
        let vs = nn::VarStore::new(Device::Cpu);
        let err = mu_acgan_generator(vs.root(), dims(100, 64, 2))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("divisible by 16") && err.contains("[96, 64]"),
            "{err}"
        );
    }

    #[test]
    fn a_gradient_reaches_every_parameter() {
        for extras in [false, true] {
            gradient_reaches_every_parameter(extras);
        }
    }

    /// With `extras`: decoder noise, minibatch std and the twin head.
    fn gradient_reaches_every_parameter(extras: bool) {
        let g_vs = nn::VarStore::new(Device::Cpu);
        let d_vs = nn::VarStore::new(Device::Cpu);
        let dims = MuAcganDims {
            decoder_noise: extras,
            ..dims(32, 16, 4)
        };
        let heads = HeadOptions {
            minibatch_std: extras,
            twin_classifier: extras,
        };
        let g = mu_acgan_generator(g_vs.root(), dims).unwrap();
        let d = mu_acgan_discriminator_with(d_vs.root(), dims, heads);
        let z = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
        let labels = Tensor::from_slice(&[0i64, 1, 2, 1]);
        let j = d.judge_all(&g.generate(&z, &labels, true), true);
        assert_eq!(j.twin.is_some(), extras);
        let twin = j
            .twin
            .map_or(Tensor::from(0.0f32), |t| t.square().sum(Kind::Float));
        (j.source.sum(Kind::Float) + j.class.square().sum(Kind::Float) + twin).backward();
        assert_eq!(
            g_vs.variables().contains_key("film0.weight"),
            extras,
            "decoder noise layers"
        );
        for vs in [&g_vs, &d_vs] {
            for (name, var) in vs.variables() {
                if !var.requires_grad() {
                    continue;
                }
                let grad = var.grad();
                assert!(grad.defined(), "{name}: no gradient");
                let norm = f64::try_from(grad.abs().sum(Kind::Float)).unwrap();
                assert!(norm.is_finite() && norm > 0.0, "{name}: gradient {norm}");
            }
        }
    }
}
