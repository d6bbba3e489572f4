//! An exponential moving average of a model's weights: the averaged
//! generator that ProGAN, StyleGAN and BigGAN sample from (Yazici et al.
//! 2019, "The Unusual Effectiveness of Averaging in GAN Training"). The
//! trained model keeps learning from its own weights; the average only
//! follows it, and smooths the swings a GAN's generator makes from one
//! step to the next.

use std::collections::HashMap;
use tch::{Kind, Tensor, nn};

/// Keeps `average` (a var store holding the same model as `live`) at
/// `decay * average + (1 - decay) * live` after every [`update`](Self::update).
pub struct WeightAverage {
    /// (averaged, live) variable pairs, in name order.
    pairs: Vec<(Tensor, Tensor)>,
    decay: f64,
    /// Updates since the average last equalled the live weights.
    updates: u64,
}

impl WeightAverage {
    /// Start the average at `live`'s weights. Both stores must hold the
    /// same variables (names and shapes): build the same model on both.
    pub fn new(average: &nn::VarStore, live: &nn::VarStore, decay: f64) -> Result<Self, String> {
        let live_vars = live.variables();
        let mut names: Vec<(String, Tensor)> = average.variables().into_iter().collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        if names.len() != live_vars.len() {
            return Err(format!(
                "the averaged model has {} variables, the trained one {}",
                names.len(),
                live_vars.len()
            ));
        }
        let mut pairs = Vec::with_capacity(names.len());
        for (name, avg) in names {
            let src = live_vars
                .get(&name)
                .ok_or_else(|| format!("{name}: not in the trained model"))?;
            if src.size() != avg.size() {
                return Err(format!(
                    "{name}: shape {:?} averaged, {:?} trained",
                    avg.size(),
                    src.size()
                ));
            }
            pairs.push((avg, src.shallow_clone()));
        }
        let mut ema = Self {
            pairs,
            decay,
            updates: 0,
        };
        ema.reset();
        Ok(ema)
    }

    /// Set the average to the live weights, as at the start (after the
    /// live model loaded other weights).
    pub fn reset(&mut self) {
        tch::no_grad(|| {
            for (avg, live) in &mut self.pairs {
                avg.copy_(live);
            }
        });
        self.updates = 0;
    }

    /// The decay of the next update: `decay`, less while few updates were
    /// made, `min(decay, (1 + t) / (10 + t))`, so that the first weights,
    /// still random or from another data set, fade out quickly.
    pub fn current_decay(&self) -> f64 {
        let t = (self.updates + 1) as f64;
        self.decay.min((1.0 + t) / (10.0 + t))
    }

    /// Move the average towards the live weights (after an optimiser step).
    pub fn update(&mut self) {
        let keep = self.current_decay();
        tch::no_grad(|| {
            for (avg, live) in &mut self.pairs {
                if avg.is_floating_point() {
                    let _ = avg.lerp_(live, 1.0 - keep);
                } else {
                    avg.copy_(live);
                }
            }
        });
        self.updates += 1;
    }

    /// The update count, for checkpoints (`{prefix}updates`).
    pub fn state_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        vec![(
            format!("{prefix}updates"),
            Tensor::from_slice(&[self.updates as i64]),
        )]
    }

    /// Restore the update count written by [`state_tensors`](Self::state_tensors).
    pub fn load_state(&mut self, prefix: &str, tensors: &HashMap<String, Tensor>) {
        if let Some(t) = tensors.get(&format!("{prefix}updates")) {
            self.updates = t.to_kind(Kind::Int64).int64_value(&[0]).max(0) as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn store(value: f64) -> (nn::VarStore, Tensor) {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs
            .root()
            .var("w", &[3], nn::Init::Const(value))
            .set_requires_grad(false);
        (vs, w)
    }

    #[test]
    fn follows_the_live_weights_with_the_ramped_decay() {
        let (live_vs, mut live) = store(1.0);
        let (avg_vs, avg) = store(0.0);
        let mut ema = WeightAverage::new(&avg_vs, &live_vs, 0.9).expect("same model");
        assert_eq!(avg.double_value(&[0]), 1.0, "starts at the live weights");
        let _ = tch::no_grad(|| live.fill_(3.0));
        // First update: decay min(0.9, 2/11).
        ema.update();
        let expected = 2.0 / 11.0 * 1.0 + 9.0 / 11.0 * 3.0;
        assert!((avg.double_value(&[1]) - expected).abs() < 1e-6);
        // Late in training the decay is the configured one.
        ema.updates = 1000;
        let before = avg.double_value(&[2]);
        ema.update();
        let expected = 0.9 * before + 0.1 * 3.0;
        assert!((avg.double_value(&[2]) - expected).abs() < 1e-6);
        ema.reset();
        assert_eq!(avg.double_value(&[0]), 3.0);
        assert_eq!(ema.current_decay(), 2.0 / 11.0);
    }

    #[test]
    fn refuses_different_models() {
        let (live_vs, _) = store(1.0);
        let other = nn::VarStore::new(Device::Cpu);
        let _ = other.root().var("w", &[4], nn::Init::Const(0.0));
        let err = WeightAverage::new(&other, &live_vs, 0.9)
            .err()
            .expect("shapes differ");
        assert!(err.contains("w: shape [4]"), "{err}");
    }

    #[test]
    fn the_update_count_survives_a_checkpoint() {
        let (live_vs, _) = store(1.0);
        let (avg_vs, _) = store(0.0);
        let mut ema = WeightAverage::new(&avg_vs, &live_vs, 0.99).expect("same model");
        for _ in 0..7 {
            ema.update();
        }
        let saved: HashMap<String, Tensor> = ema.state_tensors("ema.").into_iter().collect();
        let mut back = WeightAverage::new(&avg_vs, &live_vs, 0.99).expect("same model");
        back.load_state("ema.", &saved);
        assert_eq!(back.current_decay(), ema.current_decay());
    }
}
