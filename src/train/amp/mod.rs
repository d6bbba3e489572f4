//! Mixed precision (`train.precision`) and memory format
//! (`train.channels_last`) of training steps.
//!
//! `bf16` and `fp16` run each step's forward pass and loss under libtorch's
//! autocast, on CUDA or the CPU alike: convolutions and matrix products in
//! the reduced type, losses, norms and softmax in float32. Weights,
//! gradients and optimizer state stay float32, and backward runs outside the
//! autocast region, as PyTorch's AMP recipe does.
//!
//! `fp16` adds a dynamic gradient scaler with `torch.amp.GradScaler`'s
//! defaults: the loss is multiplied by the scale (2^16 at first) before
//! backward; each optimizer's gradients are divided by it before its step;
//! a step that meets an infinite or NaN gradient is skipped; at the end of
//! an iteration such a gradient halves the scale, and 2000 clean iterations
//! in a row double it. A loss that overflows in the forward pass itself is
//! not the scaler's business: it stops the stage like any non-finite loss.
//!
//! `channels_last` stores every 4-D weight and input batch in NHWC order
//! (same shapes, other strides), the layout cuDNN's and oneDNN's fastest
//! convolution kernels want.

use super::optim::Optimizer;
use crate::config::{Precision, TrainSpec};
use std::collections::HashMap;
use tch::{Device, Kind, Tensor, nn};

mod ffi {
    /// What an autocast region replaced (`ScintiganAutocastState` in
    /// `autocast.cpp`).
    #[repr(C)]
    #[derive(Debug, Clone, Copy)]
    pub struct AutocastState {
        pub enabled: bool,
        pub dtype: i8,
    }

    unsafe extern "C" {
        pub fn scintigan_autocast_enter(cuda: bool, half: bool) -> AutocastState;
        pub fn scintigan_autocast_exit(cuda: bool, previous: AutocastState);
        pub fn scintigan_autocast_is_enabled(cuda: bool) -> bool;
    }
}

/// `torch.amp.GradScaler`'s defaults.
const INITIAL_SCALE: f64 = 65536.0;
const GROWTH_FACTOR: f64 = 2.0;
const BACKOFF_FACTOR: f64 = 0.5;
const GROWTH_INTERVAL: i64 = 2000;

/// An autocast region; it ends (and puts back what it replaced) on drop.
struct AutocastGuard {
    cuda: bool,
    previous: ffi::AutocastState,
}

impl AutocastGuard {
    fn enter(cuda: bool, half: bool) -> Self {
        // SAFETY: the shim only reads and writes libtorch's thread-local
        // autocast settings; any values are valid.
        let previous = unsafe { ffi::scintigan_autocast_enter(cuda, half) };
        Self { cuda, previous }
    }
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        // SAFETY: as in `enter`; `previous` came from libtorch itself.
        unsafe { ffi::scintigan_autocast_exit(self.cuda, self.previous) }
    }
}

/// Whether autocast is on for the CPU (`cuda` false) or CUDA in this thread.
pub fn autocast_enabled(cuda: bool) -> bool {
    // SAFETY: reads a thread-local flag.
    unsafe { ffi::scintigan_autocast_is_enabled(cuda) }
}

/// `x` with the same shape and values in NHWC memory order, when 4-D.
pub fn to_channels_last(x: &Tensor) -> Tensor {
    if x.dim() == 4 {
        x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
    } else {
        x.shallow_clone()
    }
}

/// Whether a 4-D tensor is laid out NHWC (channels vary fastest).
pub fn is_channels_last(x: &Tensor) -> bool {
    let (size, stride) = (x.size(), x.stride());
    x.dim() == 4 && stride[1] == 1 && stride[3] == size[1] && stride[2] == size[1] * size[3]
}

/// The dynamic loss scale of `fp16` training.
#[derive(Debug)]
struct GradScaler {
    /// `[1]` float32: the factor the loss is multiplied by.
    scale: Tensor,
    /// `[1]` int32: clean iterations in a row.
    growth_tracker: Tensor,
    /// `[1]` float32: non-finite gradients met since the last update.
    found_inf: Tensor,
    growth_interval: i64,
    /// Optimizer steps (taken, skipped) since the last report.
    steps: (u64, u64),
}

impl GradScaler {
    fn new(device: Device, growth_interval: i64) -> Self {
        Self {
            scale: Tensor::full([1], INITIAL_SCALE, (Kind::Float, device)),
            growth_tracker: Tensor::zeros([1], (Kind::Int, device)),
            found_inf: Tensor::zeros([1], (Kind::Float, device)),
            growth_interval,
            steps: (0, 0),
        }
    }
}

/// How one stage's training steps are computed: the autocast type, the
/// gradient scaler (`fp16`) and the memory format.
#[derive(Debug)]
pub struct MixedPrecision {
    precision: Precision,
    cuda: bool,
    channels_last: bool,
    scaler: Option<GradScaler>,
}

impl MixedPrecision {
    pub fn new(train: &TrainSpec, device: Device) -> Self {
        Self::with_growth_interval(
            train.precision,
            train.channels_last,
            device,
            GROWTH_INTERVAL,
        )
    }

    fn with_growth_interval(
        precision: Precision,
        channels_last: bool,
        device: Device,
        growth_interval: i64,
    ) -> Self {
        Self {
            precision,
            cuda: device.is_cuda(),
            channels_last,
            scaler: (precision == Precision::Fp16)
                .then(|| GradScaler::new(device, growth_interval)),
        }
    }

    /// Put `vs`'s 4-D variables in the memory format the steps use. Call
    /// before the optimizer is built, so its moments take the same layout
    /// (weights loaded later with `copy_` keep it).
    pub fn prepare(&self, vs: &nn::VarStore) {
        if !self.channels_last {
            return;
        }
        tch::no_grad(|| {
            for (_, mut var) in vs.variables() {
                if var.dim() == 4 {
                    let nhwc = to_channels_last(&var);
                    var.set_data(&nhwc);
                }
            }
        });
    }

    /// An input batch `[N, C, H, W]` in the memory format the steps use.
    pub fn input(&self, x: &Tensor) -> Tensor {
        if self.channels_last {
            to_channels_last(x)
        } else {
            x.shallow_clone()
        }
    }

    /// Run `f` (a forward pass and its loss) under autocast when the
    /// precision asks for it.
    pub fn autocast<T>(&self, f: impl FnOnce() -> T) -> T {
        match self.precision {
            Precision::Fp32 => f(),
            reduced => {
                let _region = AutocastGuard::enter(self.cuda, reduced == Precision::Fp16);
                f()
            }
        }
    }

    /// Backward from `loss`, scaled first under `fp16`.
    pub fn backward(&self, loss: &Tensor) {
        match &self.scaler {
            Some(scaler) => (loss * &scaler.scale).backward(),
            None => loss.backward(),
        }
    }

    /// Take `opt`'s step from the gradients `backward` left: under `fp16`,
    /// unscaled first, and skipped when one is not finite. Returns whether
    /// the step was taken.
    pub fn step(&mut self, opt: &mut Optimizer) -> Result<bool, String> {
        let Some(scaler) = &mut self.scaler else {
            opt.step();
            return Ok(true);
        };
        let inv_scale = scaler.scale.reciprocal();
        let mut found = scaler.found_inf.zeros_like();
        for mut grad in opt.gradients() {
            grad.f_internal_amp_non_finite_check_and_unscale(&mut found, &inv_scale)
                .map_err(|e| format!("unscaling gradients: {e}"))?;
        }
        scaler.found_inf += &found;
        let clean = f64::try_from(&found).map_err(|e| e.to_string())? == 0.0;
        if clean {
            opt.step();
            scaler.steps.0 += 1;
        } else {
            scaler.steps.1 += 1;
        }
        Ok(clean)
    }

    /// End of an iteration: under `fp16`, halve the scale when a gradient
    /// since the last update was not finite, or double it after
    /// `growth_interval` clean iterations.
    pub fn update(&mut self) -> Result<(), String> {
        let Some(scaler) = &mut self.scaler else {
            return Ok(());
        };
        let _new_scale = scaler
            .scale
            .f_internal_amp_update_scale_(
                &scaler.growth_tracker,
                &scaler.found_inf,
                GROWTH_FACTOR,
                BACKOFF_FACTOR,
                scaler.growth_interval,
            )
            .map_err(|e| format!("updating the loss scale: {e}"))?;
        let _ = scaler.found_inf.zero_();
        Ok(())
    }

    /// The current loss scale (`fp16`), for logs and tests.
    pub fn loss_scale(&self) -> Option<f64> {
        self.scaler
            .as_ref()
            .and_then(|s| f64::try_from(&s.scale).ok())
    }

    /// Under `fp16`, when steps were skipped since the last call: how many,
    /// and the loss scale now (a line for the run's log).
    pub fn take_skip_report(&mut self) -> Option<String> {
        let scaler = self.scaler.as_mut()?;
        let (taken, skipped) = std::mem::take(&mut scaler.steps);
        if skipped == 0 {
            return None;
        }
        let scale = f64::try_from(&scaler.scale).ok()?;
        Some(format!(
            "fp16: skipped {skipped} of {} optimizer steps for infinite or NaN gradients; loss scale now {scale}",
            taken + skipped
        ))
    }

    /// The scaler's state as named CPU tensors (none unless `fp16`).
    pub fn state_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        self.scaler.as_ref().map_or_else(Vec::new, |s| {
            vec![
                (format!("{prefix}scale"), s.scale.to_device(Device::Cpu)),
                (
                    format!("{prefix}growth_tracker"),
                    s.growth_tracker.to_device(Device::Cpu),
                ),
            ]
        })
    }

    /// Restore what [`MixedPrecision::state_tensors`] saved; a checkpoint
    /// written at another precision leaves the scaler fresh.
    /// Restore the fp16 loss scaler from a checkpoint; returns a warning
    /// naming what the checkpoint lacked (the scaler then starts afresh at
    /// 2^16, as a new run's does), or `None` when all was there.
    pub fn load_state(
        &mut self,
        prefix: &str,
        tensors: &HashMap<String, Tensor>,
    ) -> Option<String> {
        let scaler = self.scaler.as_mut()?;
        let mut missing = Vec::new();
        tch::no_grad(|| {
            for (key, dst) in [
                (format!("{prefix}scale"), &mut scaler.scale),
                (
                    format!("{prefix}growth_tracker"),
                    &mut scaler.growth_tracker,
                ),
            ] {
                match tensors.get(&key).filter(|t| t.size() == [1]) {
                    Some(src) => {
                        dst.copy_(src);
                    }
                    None => missing.push(key),
                }
            }
        });
        (!missing.is_empty()).then(|| {
            format!(
                "the checkpoint has no {} (written without fp16?): the fp16 loss scale starts afresh at 2^16 and may skip a few steps while it settles",
                missing.join(" or ")
            )
        })
    }
}

#[cfg(test)]
mod tests;
