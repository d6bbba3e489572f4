//! Named tensors in and out of checkpoints.
//!
//! Keys are `<part>.<variable path>`: `g.fc.weight`, `d.conv0.bias`,
//! `opt_g.m.fc.weight`, `model.head.weight`...

use std::collections::HashMap;
use std::path::Path;
use tch::{Tensor, nn};

/// A model's variables (BatchNorm running statistics included) as
/// contiguous CPU tensors (whatever their layout in training) with
/// `prefix` before each name.
pub fn var_store_tensors(vs: &nn::VarStore, prefix: &str) -> Vec<(String, Tensor)> {
    let mut out: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(name, t)| {
            (
                format!("{prefix}{name}"),
                t.detach().to_device(tch::Device::Cpu).contiguous(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Bytes of tensor data `tensors` hold: what a safetensors file of them
/// needs, less its small header.
pub fn payload_bytes(tensors: &[(String, Tensor)]) -> u64 {
    tensors
        .iter()
        .map(|(_, t)| t.numel() as u64 * t.kind().elt_size_in_bytes() as u64)
        .sum()
}

pub fn write(tensors: &[(String, Tensor)], path: &Path) -> Result<(), String> {
    Tensor::write_safetensors(tensors, path).map_err(|e| e.to_string())
}

pub fn read(path: &Path) -> Result<HashMap<String, Tensor>, String> {
    Tensor::read_safetensors(path)
        .map(|v| v.into_iter().collect())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// What loading into a var store did.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub loaded: usize,
    /// Variables left as initialised: missing from the file, or of another
    /// shape (e.g. class-dependent layers when the class count changed).
    pub reinitialised: Vec<String>,
}

/// Copy `prefix`-ed tensors into `vs`. With `strict`, a missing or
/// mis-shaped variable is an error; without, it is left as initialised and
/// listed in the report (transfer learning).
pub fn load_var_store(
    vs: &nn::VarStore,
    prefix: &str,
    tensors: &HashMap<String, Tensor>,
    strict: bool,
) -> Result<LoadReport, String> {
    let mut report = LoadReport::default();
    let mut names: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        for (name, mut var) in names {
            let key = format!("{prefix}{name}");
            match tensors.get(&key) {
                Some(src) if src.size() == var.size() => {
                    var.f_copy_(src).map_err(|e| format!("{key}: {e}"))?;
                    report.loaded += 1;
                }
                Some(src) if strict => {
                    return Err(format!(
                        "{key}: shape {:?} in file, model expects {:?}",
                        src.size(),
                        var.size()
                    ));
                }
                None if strict => return Err(format!("{key}: missing from checkpoint")),
                _ => report.reinitialised.push(name),
            }
        }
        Ok(report)
    })
}
