//! `scintigan model summary`: parameters per layer group and output shapes
//! of any model at a given input size.

use super::ModelError;
use super::acgan::{AcganDims, acgan_discriminator, acgan_generator};
use super::attention::CaActivation;
use super::backbones::{backbone_classifier, imagenet_input};
use super::mu_acgan::{MuAcganDims, mu_acgan_discriminator, mu_acgan_generator};
use super::multiscale::multiscale;
use super::small_cnn::small_cnn;
use super::{Discriminator, Generator};
use crate::config::{ClassifierArch, GanArch};
use serde::Serialize;
use std::collections::BTreeMap;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

#[derive(Debug, Serialize)]
pub struct Summary {
    pub arch: String,
    /// `[height, width]` of the grayscale input.
    pub input: [i64; 2],
    pub classes: i64,
    /// Parameters per layer group, in name order.
    pub groups: Vec<Group>,
    pub total_parameters: i64,
    /// Shapes of the main outputs for a batch of one.
    pub outputs: Vec<Output>,
}

#[derive(Debug, Serialize)]
pub struct Group {
    pub name: String,
    pub parameters: i64,
    pub tensors: usize,
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub name: String,
    pub shape: Vec<i64>,
}

/// Layer group of a variable: its first two name components (three below
/// a multi-scale branch), e.g. `features.denseblock1`, `layer3`, `enc2`.
fn group_of(name: &str) -> String {
    let parts: Vec<&str> = name.split('.').collect();
    let depth = if matches!(parts[0], "densenet" | "vgg" | "resnext") {
        3
    } else {
        2
    };
    parts[..parts.len().saturating_sub(1).clamp(1, depth)].join(".")
}

fn groups(vs: &nn::VarStore) -> (Vec<Group>, i64) {
    let mut map: BTreeMap<String, (i64, usize)> = BTreeMap::new();
    for (name, t) in vs.variables() {
        if t.requires_grad() {
            let e = map.entry(group_of(&name)).or_default();
            e.0 += t.numel() as i64;
            e.1 += 1;
        }
    }
    let total = map.values().map(|v| v.0).sum();
    let mut entries: Vec<(String, (i64, usize))> = map.into_iter().collect();
    entries.sort_by_key(|(name, _)| natural_key(name));
    let groups = entries
        .into_iter()
        .map(|(name, (parameters, tensors))| Group {
            name,
            parameters,
            tensors,
        })
        .collect();
    (groups, total)
}

/// Build `arch` for `classes` classes at `height` x `width`, run a batch of
/// one through it, and describe it.
pub fn summarize(arch: &str, height: i64, width: i64, classes: i64) -> Result<Summary, ModelError> {
    let vs = nn::VarStore::new(Device::Cpu);
    let x = Tensor::zeros([1, 1, height, width], (Kind::Float, Device::Cpu));
    let shape = |name: &str, t: &Tensor| Output {
        name: name.to_string(),
        shape: t.size(),
    };
    let outputs = tch::no_grad(|| -> Result<Vec<Output>, ModelError> {
        if let Some(gan) = GanArch::parse(arch) {
            let z = Tensor::zeros([1, 100], (Kind::Float, Device::Cpu));
            let label = Tensor::zeros([1], (Kind::Int64, Device::Cpu));
            let (g, d): (Box<dyn Generator>, Box<dyn Discriminator>) = match gan {
                GanArch::MuAcgan => {
                    let dims = MuAcganDims {
                        n_classes: classes,
                        latent_dim: 100,
                        base_channels: 32,
                        scale_channels: 1,
                        height,
                        width,
                        ca_activation: CaActivation::Relu,
                        decoder_noise: false,
                    };
                    (
                        Box::new(mu_acgan_generator(vs.root() / "g", dims)?),
                        Box::new(mu_acgan_discriminator(vs.root() / "d", dims)),
                    )
                }
                GanArch::Acgan => {
                    let dims = AcganDims {
                        n_classes: classes,
                        latent_dim: 100,
                        base_channels: 32,
                        height,
                        width,
                    };
                    (
                        Box::new(acgan_generator(vs.root() / "g", dims)?),
                        Box::new(acgan_discriminator(vs.root() / "d", dims)),
                    )
                }
            };
            let image = g.generate(&z, &label, false);
            let (source, class) = d.judge(&image, false);
            return Ok(vec![
                shape("generator image", &image),
                shape("real/fake logit", &source),
                shape("class logits", &class),
            ]);
        }
        let parsed = ClassifierArch::parse(arch).ok_or_else(|| {
            ModelError::NotAvailable(
                arch.to_string(),
                "mu-acgan, acgan, and the classifier archs of the config reference",
            )
        })?;
        let min = super::backbones::min_input_size(parsed);
        if height.min(width) < min {
            return Err(ModelError::TooSmall {
                arch: arch.to_string(),
                min,
                height,
                width,
            });
        }
        Ok(match parsed {
            ClassifierArch::SmallCnn => {
                let m = small_cnn(vs.root(), 32, classes);
                vec![shape("logits", &m.forward_t(&x, false))]
            }
            ClassifierArch::Multiscale => {
                let m = multiscale(vs.root(), classes);
                let maps = m.branch_maps(&imagenet_input(&x), false);
                let mut out: Vec<Output> = super::multiscale::BRANCHES
                    .iter()
                    .zip(&maps)
                    .map(|(b, t)| shape(&format!("{b} feature maps"), t))
                    .collect();
                out.push(shape("logits", &m.head(&maps)));
                out
            }
            other => {
                let m = backbone_classifier(vs.root(), other, classes)?;
                let maps = m.body().feature_maps(&imagenet_input(&x), false);
                vec![
                    shape("feature maps", &maps),
                    shape("logits", &m.head(&maps, false)),
                ]
            }
        })
    })?;
    let (groups, total_parameters) = groups(&vs);
    Ok(Summary {
        arch: arch.to_string(),
        input: [height, width],
        classes,
        groups,
        total_parameters,
        outputs,
    })
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [h, w] = self.input;
        writeln!(
            f,
            "{} for {} classes, input 1x{h}x{w}",
            self.arch, self.classes
        )?;
        let width = self
            .groups
            .iter()
            .map(|g| g.name.len())
            .max()
            .unwrap_or(5)
            .max(5);
        writeln!(
            f,
            "{:<width$}  {:>13}  {:>7}",
            "layer", "parameters", "tensors"
        )?;
        for g in &self.groups {
            writeln!(
                f,
                "{:<width$}  {:>13}  {:>7}",
                g.name,
                thousands(g.parameters),
                g.tensors
            )?;
        }
        writeln!(
            f,
            "{:<width$}  {:>13}",
            "total",
            thousands(self.total_parameters)
        )?;
        for o in &self.outputs {
            writeln!(f, "{}: {:?}", o.name, o.shape)?;
        }
        Ok(())
    }
}

/// Sort key that orders `features.5` before `features.28`.
fn natural_key(name: &str) -> Vec<(String, u64)> {
    name.split('.')
        .map(|part| match part.parse::<u64>() {
            Ok(n) => (String::new(), n),
            Err(_) => (part.to_string(), 0),
        })
        .collect()
}

/// `25028904` -> `25,028,904`.
pub fn thousands(n: i64) -> String {
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnext_summary_counts_like_torchvision() {
        let s = summarize("resnext50_32x4d", 224, 224, 1000).unwrap();
        assert_eq!(s.total_parameters, 25_028_904);
        assert_eq!(s.outputs[0].shape, vec![1, 2048, 7, 7]);
        assert!(
            s.to_string().contains("total          25,028,904")
                || s.to_string().contains("25,028,904")
        );
        assert!(s.groups.iter().any(|g| g.name == "layer3.0"));
    }

    #[test]
    fn gan_summary_has_both_networks() {
        let s = summarize("mu-acgan", 64, 32, 3).unwrap();
        assert_eq!(s.outputs[0].shape, vec![1, 1, 64, 32]);
        assert_eq!(s.outputs[2].shape, vec![1, 3]);
        assert!(s.groups.iter().any(|g| g.name == "g.enc0"));
        assert!(s.groups.iter().any(|g| g.name == "d.block2"));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(138_357_544), "138,357,544");
        assert_eq!(thousands(999), "999");
    }
}
