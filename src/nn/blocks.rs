//! The paper's two building blocks (METHOD.md sections 7 and 8).

use super::attention::{CaActivation, CoordAttention, coord_attention};
use super::layers::{PRelu, batch_norm2d, conv1x1, conv3x3, prelu};
use tch::Tensor;
use tch::nn::{self, ModuleT};

/// Residual dense attention block, `[B, c_in, H, W] -> [B, c_out, H, W]`.
///
/// Three 3x3 conv + BN + PReLU stages with dense connections: stage 1 sees
/// the input; stage i > 1 sees the concatenation of the input and every
/// earlier stage's output, compressed to `c_out` by a 1x1 conv (`fuse{i-1}`).
/// After the third stage the same concatenation is compressed once more
/// (`fuse3`), passed through CA, and added to the input (through a 1x1
/// projection `proj` when `c_in != c_out`).
#[derive(Debug)]
pub struct Rda {
    convs: Vec<nn::Conv2D>,
    norms: Vec<nn::BatchNorm>,
    acts: Vec<PRelu>,
    fuses: Vec<nn::Conv2D>,
    ca: CoordAttention,
    proj: Option<nn::Conv2D>,
}

pub fn rda(p: nn::Path, c_in: i64, c_out: i64, activation: CaActivation) -> Rda {
    let mut convs = Vec::new();
    let mut norms = Vec::new();
    let mut acts = Vec::new();
    let mut fuses = Vec::new();
    for i in 1..=3 {
        let c_stage_in = if i == 1 { c_in } else { c_out };
        convs.push(conv3x3(
            &p / format!("conv{i}"),
            c_stage_in,
            c_out,
            1,
            false,
        ));
        norms.push(batch_norm2d(&p / format!("bn{i}"), c_out));
        acts.push(prelu(&p / format!("prelu{i}")));
        // After stage i: concat(input, s1..si) has c_in + i * c_out channels.
        fuses.push(conv1x1(
            &p / format!("fuse{i}"),
            c_in + i * c_out,
            c_out,
            true,
        ));
    }
    Rda {
        convs,
        norms,
        acts,
        fuses,
        ca: coord_attention(&p / "ca", c_out, activation),
        proj: (c_in != c_out).then(|| conv1x1(&p / "proj", c_in, c_out, true)),
    }
}

impl ModuleT for Rda {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut features = vec![x.shallow_clone()];
        let mut stage_in = x.shallow_clone();
        let mut fused = x.shallow_clone();
        for i in 0..3 {
            let s = self.acts[i].forward(
                &stage_in
                    .apply(&self.convs[i])
                    .apply_t(&self.norms[i], train),
            );
            features.push(s);
            fused = Tensor::cat(&features, 1).apply(&self.fuses[i]);
            stage_in = fused.shallow_clone();
        }
        let attended = self.ca.forward_t(&fused, train);
        let residual = match &self.proj {
            Some(proj) => x.apply(proj),
            None => x.shallow_clone(),
        };
        attended + residual
    }
}

/// Residual coordinate-attention gate: fuses a high-level and a low-level
/// map of C channels each into C channels.
/// `x_c = cat(high, low)`; `out = PReLU(BN(Conv1x1(x_c + CA(x_c))))`.
#[derive(Debug)]
pub struct Rcag {
    ca: CoordAttention,
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
    act: PRelu,
}

pub fn rcag(p: nn::Path, channels: i64, activation: CaActivation) -> Rcag {
    Rcag {
        ca: coord_attention(&p / "ca", 2 * channels, activation),
        conv: conv1x1(&p / "conv", 2 * channels, channels, false),
        bn: batch_norm2d(&p / "bn", channels),
        act: prelu(&p / "prelu"),
    }
}

impl Rcag {
    /// `high, low: [B, C, H, W]` -> `[B, C, H, W]`.
    pub fn fuse(&self, high: &Tensor, low: &Tensor, train: bool) -> Tensor {
        let x_c = Tensor::cat(&[high, low], 1);
        let attended = self.ca.forward_t(&x_c, train);
        self.act
            .forward(&(x_c + attended).apply(&self.conv).apply_t(&self.bn, train))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn rda_shapes_and_parameter_names() {
        let vs = nn::VarStore::new(Device::Cpu);
        let block = rda(vs.root() / "enc0", 3, 8, CaActivation::Relu);
        let y = block.forward_t(
            &Tensor::randn([2, 3, 16, 8], (Kind::Float, Device::Cpu)),
            true,
        );
        assert_eq!(y.size(), vec![2, 8, 16, 8]);
        let names = vs.variables();
        for key in [
            "enc0.conv1.weight",
            "enc0.fuse3.weight",
            "enc0.prelu2.weight",
            "enc0.ca.conv_h.weight",
            "enc0.proj.weight",
        ] {
            assert!(names.contains_key(key), "missing {key}");
        }
        // fuse3 compresses input + 3 stages: 3 + 3 * 8 = 27 channels.
        assert_eq!(names["enc0.fuse3.weight"].size(), vec![8, 27, 1, 1]);
    }

    #[test]
    fn rda_without_projection_when_widths_match() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = rda(vs.root(), 8, 8, CaActivation::Relu);
        assert!(!vs.variables().contains_key("proj.weight"));
    }

    #[test]
    fn rcag_fuses_two_maps_into_one() {
        let vs = nn::VarStore::new(Device::Cpu);
        let gate = rcag(vs.root(), 8, CaActivation::Relu);
        let a = Tensor::randn([2, 8, 6, 4], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([2, 8, 6, 4], (Kind::Float, Device::Cpu));
        assert_eq!(gate.fuse(&a, &b, true).size(), vec![2, 8, 6, 4]);
        assert_eq!(vs.variables()["ca.conv1.weight"].size(), vec![8, 16, 1, 1]);
    }
}
