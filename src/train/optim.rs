//! Optimizers written out so their state can be checkpointed: RAdam exactly
//! as `torch.optim.RAdam` (rectification threshold 5, eps added to sqrt(v),
//! L2 weight decay added to the gradient), Adam as `torch.optim.Adam`, and
//! SGD with momentum 0.9 (PyTorch's form: buf = 0.9 buf + g).

use crate::config::OptimizerKind;
use tch::{Kind, Tensor, nn};

/// Hyper-parameters of one optimizer.
#[derive(Debug, Clone, Copy)]
pub struct OptimConfig {
    pub kind: OptimizerKind,
    pub lr: f64,
    pub betas: [f64; 2],
    pub eps: f64,
    pub weight_decay: f64,
}

pub const SGD_MOMENTUM: f64 = 0.9;

/// One optimizer over the trainable variables of one var store.
#[derive(Debug)]
pub struct Optimizer {
    cfg: OptimConfig,
    /// Steps taken (t in the formulas).
    step: u64,
    /// `(name, parameter, first moment or momentum, second moment)`.
    params: Vec<(String, Tensor, Tensor, Tensor)>,
}

impl Optimizer {
    pub fn new(vs: &nn::VarStore, cfg: OptimConfig) -> Self {
        let mut named: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let params = named
            .into_iter()
            .map(|(name, p)| {
                let m = p.zeros_like().detach();
                let v = p.zeros_like().detach();
                (name, p, m, v)
            })
            .collect();
        Self {
            cfg,
            step: 0,
            params,
        }
    }

    /// Set the learning rate for the following steps (schedules).
    pub fn set_lr(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }

    pub fn steps_taken(&self) -> u64 {
        self.step
    }

    pub fn zero_grad(&mut self) {
        for (_, p, _, _) in &mut self.params {
            p.zero_grad();
        }
    }

    /// The gradients `backward` left on the parameters (none for frozen
    /// ones); they share storage with the parameters' own, so in-place
    /// changes (unscaling) are what the next step sees.
    pub fn gradients(&self) -> Vec<Tensor> {
        self.params
            .iter()
            .map(|(_, p, _, _)| p.grad())
            .filter(Tensor::defined)
            .collect()
    }

    /// Apply one update from the gradients currently stored on the parameters.
    pub fn step(&mut self) {
        self.step += 1;
        let t = self.step as f64;
        let OptimConfig {
            kind,
            lr,
            betas: [b1, b2],
            eps,
            weight_decay,
        } = self.cfg;
        tch::no_grad(|| {
            for (_, p, m, v) in &mut self.params {
                let grad = p.grad();
                if !grad.defined() {
                    continue;
                }
                let g = if weight_decay != 0.0 {
                    &grad + &*p * weight_decay
                } else {
                    grad
                };
                match kind {
                    OptimizerKind::Sgd => {
                        // torch: the first step copies the gradient into the buffer.
                        if self.step == 1 {
                            m.copy_(&g);
                        } else {
                            let _ = m.g_mul_scalar_(SGD_MOMENTUM);
                            let _ = m.g_add_(&g);
                        }
                        let _ = p.g_sub_(&(&*m * lr));
                    }
                    OptimizerKind::Adam => {
                        let _ = m.g_mul_scalar_(b1);
                        let _ = m.g_add_(&(&g * (1.0 - b1)));
                        let _ = v.g_mul_scalar_(b2);
                        let _ = v.g_add_(&(&g * &g * (1.0 - b2)));
                        let bc1 = 1.0 - b1.powf(t);
                        let bc2 = 1.0 - b2.powf(t);
                        let denom = v.sqrt() / bc2.sqrt() + eps;
                        let _ = p.g_sub_(&(&*m / denom * (lr / bc1)));
                    }
                    OptimizerKind::Radam => radam_update(p, m, v, &g, t, self.cfg),
                }
            }
        });
    }

    /// The optimizer's state as named CPU tensors, keys prefixed with `prefix`.
    pub fn state_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut out = vec![(
            format!("{prefix}step"),
            Tensor::from_slice(&[self.step as i64]),
        )];
        for (name, _, m, v) in &self.params {
            // contiguous(): safetensors takes no other layout (channels-last).
            out.push((
                format!("{prefix}m.{name}"),
                m.to_device(tch::Device::Cpu).contiguous(),
            ));
            out.push((
                format!("{prefix}v.{name}"),
                v.to_device(tch::Device::Cpu).contiguous(),
            ));
        }
        out
    }

    /// Restore what [`Optimizer::state_tensors`] saved.
    pub fn load_state(
        &mut self,
        prefix: &str,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> Result<(), String> {
        let step = tensors
            .get(&format!("{prefix}step"))
            .ok_or_else(|| format!("missing {prefix}step"))?;
        self.step = i64::try_from(step.to_kind(Kind::Int64).view([-1]).get(0))
            .map_err(|e| e.to_string())? as u64;
        tch::no_grad(|| {
            for (name, p, m, v) in &mut self.params {
                for (key, dst) in [
                    (format!("{prefix}m.{name}"), &mut *m),
                    (format!("{prefix}v.{name}"), &mut *v),
                ] {
                    let src = tensors.get(&key).ok_or_else(|| format!("missing {key}"))?;
                    if src.size() != p.size() {
                        return Err(format!(
                            "{key}: shape {:?}, expected {:?}",
                            src.size(),
                            p.size()
                        ));
                    }
                    dst.copy_(src);
                }
            }
            Ok(())
        })
    }
}

/// One RAdam update of `p` at step `t` (1-based), as torch's single-tensor
/// RAdam computes it, written with in-place operations (`lerp_`,
/// `addcmul_`, `addcdiv_`) so each step makes three temporaries per
/// parameter where torch's makes six: the optimizer step is memory-bound.
fn radam_update(
    p: &mut Tensor,
    m: &mut Tensor,
    v: &mut Tensor,
    g: &Tensor,
    t: f64,
    cfg: OptimConfig,
) {
    let OptimConfig {
        lr,
        betas: [b1, b2],
        eps,
        ..
    } = cfg;
    let _ = m.lerp_(g, 1.0 - b1);
    let _ = v.g_mul_scalar_(b2);
    let _ = v.addcmul_(&(g * (1.0 - b2)), g);
    let bc1 = 1.0 - b1.powf(t);
    let bc2 = 1.0 - b2.powf(t);
    let rho_inf = 2.0 / (1.0 - b2) - 1.0;
    let rho_t = rho_inf - 2.0 * t * b2.powf(t) / bc2;
    if rho_t > 5.0 {
        let rect = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
            / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
            .sqrt();
        // p -= lr * rect * sqrt(bc2) / bc1 * m / (sqrt(v) + eps)
        let mut denom = v.sqrt();
        let _ = denom.g_add_scalar_(eps);
        let _ = p.addcdiv_(&(&*m * (-lr * rect * bc2.sqrt() / bc1)), &denom);
    } else {
        let _ = p.g_sub_(&(&*m * (lr / bc1)));
    }
}
