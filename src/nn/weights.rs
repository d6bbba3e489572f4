//! Reading torchvision checkpoints: `.pth` files written by `torch.save`
//! (the zip format of PyTorch >= 1.6 and the legacy format before it) or `.safetensors`, with DenseNet's legacy
//! key names (`denselayer1.norm.1.weight`) renamed as torchvision does, and a
//! key-for-key, shape-for-shape check against our model.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tch::{Kind, Tensor, nn};

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error(
        "{path}: cannot read weights: {message}; expected a torch.save .pth (zip or legacy format) or a .safetensors file"
    )]
    Read { path: String, message: String },
    #[error("{path}: does not fit {arch}:\n{report}")]
    Mismatch {
        path: String,
        arch: String,
        report: String,
    },
    #[error("{path}: cannot write: {message}")]
    Write { path: String, message: String },
}

/// Every tensor of a checkpoint file, keys as stored: `.safetensors` through
/// tch, anything else as a `torch.save` file (zip or legacy format) through
/// [`crate::nn::pickle::read_torch_checkpoint`].
pub fn read_tensors(path: &Path) -> Result<Vec<(String, Tensor)>, WeightsError> {
    let err = |message: String| WeightsError::Read {
        path: path.display().to_string(),
        message,
    };
    if path.extension().is_some_and(|e| e == "safetensors") {
        Tensor::read_safetensors(path).map_err(|e| {
            let text = e.to_string();
            err(text.lines().next().unwrap_or("unreadable").to_string())
        })
    } else {
        crate::nn::pickle::read_torch_checkpoint(path).map_err(err)
    }
}

/// torchvision's own key clean-up: drop a `module.` prefix (DataParallel),
/// rename DenseNet's legacy `norm.1`/`relu.1`/`conv.1`/`norm.2`/`relu.2`/`conv.2`
/// inside dense layers to `norm1`..., and drop BatchNorm's `num_batches_tracked`
/// counters (our BatchNorm does not keep one).
pub fn normalise_keys(tensors: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    tensors
        .into_iter()
        .filter(|(k, _)| !k.ends_with("num_batches_tracked"))
        .map(|(k, t)| {
            let k = k.strip_prefix("module.").unwrap_or(&k).to_string();
            (rename_legacy_densenet(&k), t)
        })
        .collect()
}

fn rename_legacy_densenet(key: &str) -> String {
    if !key.contains("denselayer") {
        return key.to_string();
    }
    let mut out = key.to_string();
    for part in ["norm", "relu", "conv"] {
        for n in ["1", "2"] {
            out = out.replace(&format!(".{part}.{n}."), &format!(".{part}{n}."));
        }
    }
    out
}

/// How a checkpoint's keys compare with a model's variables.
#[derive(Debug, Default)]
pub struct KeyReport {
    /// In the model, not in the file.
    pub missing: Vec<String>,
    /// In the file, not in the model.
    pub unexpected: Vec<String>,
    /// `(key, file shape, model shape)`.
    pub mismatched: Vec<(String, Vec<i64>, Vec<i64>)>,
    pub matched: usize,
}

impl KeyReport {
    pub fn is_exact(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }
}

impl std::fmt::Display for KeyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "  {} keys match", self.matched)?;
        let list =
            |f: &mut std::fmt::Formatter<'_>, what: &str, keys: &[String]| -> std::fmt::Result {
                if !keys.is_empty() {
                    let shown: Vec<&str> = keys.iter().take(10).map(String::as_str).collect();
                    let more = if keys.len() > 10 {
                        format!(" ... and {} more", keys.len() - 10)
                    } else {
                        String::new()
                    };
                    writeln!(f, "  {} {what}: {}{more}", keys.len(), shown.join(", "))?;
                }
                Ok(())
            };
        list(f, "missing from the file", &self.missing)?;
        list(f, "unexpected in the file", &self.unexpected)?;
        for (k, file, model) in self.mismatched.iter().take(10) {
            writeln!(f, "  shape differs: {k}: file {file:?}, model {model:?}")?;
        }
        Ok(())
    }
}

/// Compare `tensors` (keys after `prefix` is added) with `vs`'s variables.
pub fn compare(vs: &nn::VarStore, prefix: &str, tensors: &[(String, Tensor)]) -> KeyReport {
    let vars: BTreeMap<String, Vec<i64>> = vs
        .variables()
        .into_iter()
        .map(|(k, t)| (k, t.size()))
        .collect();
    let file: HashMap<String, Vec<i64>> = tensors
        .iter()
        .map(|(k, t)| (format!("{prefix}{k}"), t.size()))
        .collect();
    let mut report = KeyReport::default();
    for (key, shape) in &vars {
        match file.get(key) {
            None if key.starts_with(prefix) => report.missing.push(key.clone()),
            None => {}
            Some(s) if s != shape => {
                report
                    .mismatched
                    .push((key.clone(), s.clone(), shape.clone()))
            }
            Some(_) => report.matched += 1,
        }
    }
    let mut unexpected: Vec<String> = file
        .keys()
        .filter(|k| !vars.contains_key(*k))
        .cloned()
        .collect();
    unexpected.sort();
    report.unexpected = unexpected;
    report
}

/// Write tensors as float32 safetensors.
pub fn write_safetensors(tensors: &[(String, Tensor)], path: &Path) -> Result<(), WeightsError> {
    let converted: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.to_kind(Kind::Float).contiguous()))
        .collect();
    Tensor::write_safetensors(&converted, path).map_err(|e| WeightsError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_densenet_keys_are_renamed_like_torchvision() {
        let t = || Tensor::zeros([1], (Kind::Float, tch::Device::Cpu));
        let keys = normalise_keys(vec![
            ("features.denseblock1.denselayer1.norm.1.weight".into(), t()),
            ("features.denseblock1.denselayer1.conv.2.weight".into(), t()),
            ("module.features.norm0.num_batches_tracked".into(), t()),
            ("features.transition1.norm.weight".into(), t()),
        ]);
        let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "features.denseblock1.denselayer1.norm1.weight",
                "features.denseblock1.denselayer1.conv2.weight",
                "features.transition1.norm.weight",
            ]
        );
    }
}

/// What [`load_pretrained`] did.
#[derive(Debug, Default)]
pub struct PretrainedReport {
    pub loaded: usize,
    /// Model variables under the prefix left as initialised (a new head).
    pub fresh: Vec<String>,
}

/// Copy pretrained tensors into the variables of `vs` whose names start with
/// `var_prefix` (`densenet.` for a multi-scale branch, empty for a lone
/// backbone): variable `var_prefix + k` takes file key `k` when the shapes
/// agree. File keys the model lacks (an ImageNet head) are ignored.
pub fn load_pretrained(
    vs: &nn::VarStore,
    var_prefix: &str,
    tensors: &[(String, Tensor)],
) -> Result<PretrainedReport, String> {
    let file: HashMap<&str, &Tensor> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut report = PretrainedReport::default();
    tch::no_grad(|| {
        for (name, mut var) in vars {
            let Some(key) = name.strip_prefix(var_prefix) else {
                continue;
            };
            match file.get(key) {
                Some(src) if src.size() == var.size() => {
                    var.f_copy_(src).map_err(|e| format!("{key}: {e}"))?;
                    report.loaded += 1;
                }
                _ => report.fresh.push(name.clone()),
            }
        }
        Ok(report)
    })
}
