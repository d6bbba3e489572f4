//! The ACGAN stage: one D step and one G step per iteration, the objective
//! of METHOD.md section 3 with logits (BCE-with-logits for real/fake,
//! cross-entropy for the class head; G uses the non-saturating form).

use super::amp::MixedPrecision;
use super::ema::WeightAverage;
use super::optim::{OptimConfig, Optimizer};
use super::step_loop::StageTrainer;
use super::{StageContext, TrainError, checkpoint, samples, ssim};
use crate::config::{GanArch, ModelSpec, StageSpec};
use crate::data::Split;
use crate::nn::acgan::{AcganDims, acgan_discriminator_with, acgan_generator};
use crate::nn::mu_acgan::{MuAcganDims, mu_acgan_discriminator_with, mu_acgan_generator};
use crate::nn::{Discriminator, Generator, HeadOptions, ModelError};
use crate::store::{self, Event};
use std::collections::HashMap;
use tch::{Device, Kind, Reduction, Tensor, nn};

/// Sample grid columns per class.
const SAMPLES_PER_CLASS: i64 = 8;

/// Images met at once by each generated image in a batched SSIM evaluation.
const SSIM_CHUNK: i64 = 16;

/// At most this many training images of a class enter the real-vs-real
/// ceiling (evenly spaced through the class; all pairs of 128 images are
/// 16,256 SSIMs, once per stage).
const CEILING_MAX_IMAGES: i64 = 128;

/// Turn gradient tracking of `weights` on or off.
fn set_requires_grad(weights: &[Tensor], on: bool) {
    for w in weights {
        let _ = w.set_requires_grad(on);
    }
}

/// The images of one class that the real-vs-real ceiling compares.
fn ceiling_subset(real: &Tensor) -> Tensor {
    let n = real.size()[0];
    if n <= CEILING_MAX_IMAGES {
        return real.shallow_clone();
    }
    let idx: Vec<i64> = (0..CEILING_MAX_IMAGES)
        .map(|i| i * n / CEILING_MAX_IMAGES)
        .collect();
    real.index_select(0, &Tensor::from_slice(&idx).to_device(real.device()))
}

/// Per-class generation scores, in class order (see [`GanTrainer::quality`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Quality {
    pub ssim: Vec<f64>,
    pub diversity: Vec<f64>,
    pub real: Vec<f64>,
}

/// Sums since the last step event, kept on the device (no sync per step).
struct Window {
    g_loss: Tensor,
    d_loss: Tensor,
    real_ok: Tensor,
    fake_ok: Tensor,
    class_ok: Tensor,
    images: i64,
    steps: i64,
}

impl Window {
    fn new(device: Device) -> Self {
        let z = || Tensor::zeros([], (Kind::Float, device));
        Self {
            g_loss: z(),
            d_loss: z(),
            real_ok: z(),
            fake_ok: z(),
            class_ok: z(),
            images: 0,
            steps: 0,
        }
    }
}

pub struct GanTrainer {
    stage: String,
    g_vs: nn::VarStore,
    d_vs: nn::VarStore,
    generator: Box<dyn Generator>,
    discriminator: Box<dyn Discriminator>,
    opt_g: Optimizer,
    opt_d: Optimizer,
    amp: MixedPrecision,
    /// Training images `[N, 1, H, W]` in [-1, 1], on the device.
    images: Tensor,
    labels: Tensor,
    classes: Vec<String>,
    test_len: usize,
    latent_dim: i64,
    /// Fixed noise and labels for the per-epoch sample grid.
    fixed_z: Tensor,
    fixed_labels: Tensor,
    window: Window,
    device: Device,
    epochs: u64,
    ssim_every: u64,
    ssim_samples: i64,
    /// Real-vs-real SSIM per class, once computed.
    real_within: Option<Vec<f64>>,
    /// Weight of the mode-seeking term; 0 = off.
    mode_seeking: f64,
    /// The averaged generator that samples, when `train.ema` > 0.
    average: Option<AveragedGenerator>,
}

/// A second copy of the generator whose weights follow the trained one's
/// moving average ([`WeightAverage`]).
struct AveragedGenerator {
    vs: nn::VarStore,
    generator: Box<dyn Generator>,
    ema: WeightAverage,
}

/// `model`'s GAN architecture, or the error naming those available.
fn gan_arch(model: &ModelSpec) -> Result<GanArch, ModelError> {
    model
        .gan_arch()
        .ok_or_else(|| ModelError::NotAvailable(model.arch.clone(), "mu-acgan, acgan"))
}

/// MU-ACGAN's sizes: `dims` and the MU-ACGAN options of `model`.
fn mu_dims(model: &ModelSpec, dims: AcganDims) -> MuAcganDims {
    MuAcganDims {
        n_classes: dims.n_classes,
        latent_dim: dims.latent_dim,
        base_channels: dims.base_channels,
        scale_channels: model.scale_channels as i64,
        height: dims.height,
        width: dims.width,
        ca_activation: model.ca_activation,
        decoder_noise: model.decoder_noise,
    }
}

/// The generator of `model` on `dims`, on `p`.
fn build_generator(
    model: &ModelSpec,
    dims: AcganDims,
    p: nn::Path,
) -> Result<Box<dyn Generator>, ModelError> {
    Ok(match gan_arch(model)? {
        GanArch::Acgan => Box::new(acgan_generator(p, dims)?),
        GanArch::MuAcgan => Box::new(mu_acgan_generator(p, mu_dims(model, dims))?),
    })
}

/// The discriminator of `model` on `dims`, on `p`.
fn build_discriminator(
    model: &ModelSpec,
    dims: AcganDims,
    heads: HeadOptions,
    p: nn::Path,
) -> Result<Box<dyn Discriminator>, ModelError> {
    Ok(match gan_arch(model)? {
        GanArch::Acgan => Box::new(acgan_discriminator_with(p, dims, heads)),
        GanArch::MuAcgan => Box::new(mu_acgan_discriminator_with(p, mu_dims(model, dims), heads)),
    })
}

impl GanTrainer {
    pub fn new(spec: &StageSpec, data: Split, device: Device) -> Result<Self, TrainError> {
        let [h, w] = spec.data.image_size;
        let classes = data.train.classes.clone();
        let dims = AcganDims {
            n_classes: classes.len() as i64,
            latent_dim: spec.model.latent_dim as i64,
            base_channels: spec.model.base_channels as i64,
            height: h as i64,
            width: w as i64,
        };
        // Weight initialisation draws from torch's RNG: seed it for reproducible runs.
        tch::manual_seed((spec.train.seed >> 1) as i64);
        let g_vs = nn::VarStore::new(device);
        let d_vs = nn::VarStore::new(device);
        let heads = HeadOptions {
            minibatch_std: spec.model.minibatch_std,
            twin_classifier: spec.model.twin_classifier,
        };
        let generator = build_generator(&spec.model, dims, g_vs.root())?;
        let discriminator = build_discriminator(&spec.model, dims, heads, d_vs.root())?;
        let amp = MixedPrecision::new(&spec.train, device);
        amp.prepare(&g_vs);
        amp.prepare(&d_vs);
        let average = if spec.train.ema > 0.0 {
            let vs = nn::VarStore::new(device);
            let generator = build_generator(&spec.model, dims, vs.root())?;
            amp.prepare(&vs);
            let ema = WeightAverage::new(&vs, &g_vs, spec.train.ema)
                .map_err(|m| TrainError::torch(&spec.name, m))?;
            Some(AveragedGenerator { vs, generator, ema })
        } else {
            None
        };
        let cfg = OptimConfig {
            kind: spec.train.optimizer,
            lr: spec.train.lr,
            betas: spec.train.betas,
            eps: 1e-8,
            weight_decay: spec.train.weight_decay,
        };
        let n_classes = classes.len() as i64;
        tch::manual_seed((spec.train.seed >> 1) as i64 ^ 0x5A3F);
        let fixed_z = Tensor::randn(
            [n_classes * SAMPLES_PER_CLASS, dims.latent_dim],
            (Kind::Float, Device::Cpu),
        )
        .to_device(device);
        let fixed_labels = Tensor::arange(n_classes, (Kind::Int64, device))
            .repeat_interleave_self_int(SAMPLES_PER_CLASS, None, None);
        Ok(Self {
            stage: spec.name.clone(),
            opt_g: Optimizer::new(&g_vs, cfg),
            opt_d: Optimizer::new(&d_vs, cfg),
            amp,
            g_vs,
            d_vs,
            generator,
            discriminator,
            images: (data.train.images.to_device(device) * 2.0 - 1.0).detach(),
            labels: data.train.labels.to_device(device),
            test_len: data.test.len(),
            classes,
            latent_dim: dims.latent_dim,
            fixed_z,
            fixed_labels,
            window: Window::new(device),
            device,
            epochs: spec.train.epochs as u64,
            ssim_every: spec.train.ssim_every as u64,
            ssim_samples: spec.train.ssim_samples as i64,
            real_within: None,
            mode_seeking: spec.train.mode_seeking,
            average,
        })
    }

    /// Start from another GAN's weights; layers whose shape differs (the
    /// class-dependent ones when the class count changed) stay fresh.
    /// Returns the names of those re-initialised layers.
    pub fn load_init(&mut self, tensors: &HashMap<String, Tensor>) -> Result<Vec<String>, String> {
        let g = checkpoint::load_var_store(&self.g_vs, "g.", tensors, false)?;
        let d = checkpoint::load_var_store(&self.d_vs, "d.", tensors, false)?;
        if g.loaded + d.loaded == 0 {
            return Err("no generator or discriminator weights (g.*, d.*) in the file".into());
        }
        if let Some(avg) = &mut self.average {
            avg.ema.reset();
        }
        let mut fresh: Vec<String> = g.reinitialised.iter().map(|n| format!("g.{n}")).collect();
        fresh.extend(d.reinitialised.iter().map(|n| format!("d.{n}")));
        Ok(fresh)
    }

    /// The training images of class `c`, `[N, 1, H, W]` in [0, 1].
    fn real_of_class(&self, c: i64) -> Tensor {
        let rows = self.labels.eq(c).nonzero().squeeze_dim(1);
        (self.images.index_select(0, &rows) + 1.0) / 2.0
    }

    /// Per class, the real-vs-real ceiling, computed once per stage.
    fn real_within(&mut self) -> Vec<f64> {
        if self.real_within.is_none() {
            let within = (0..self.classes.len() as i64)
                .map(|c| {
                    ssim::mean_within_ssim(&ceiling_subset(&self.real_of_class(c)), SSIM_CHUNK)
                })
                .collect();
            self.real_within = Some(within);
        }
        self.real_within.clone().unwrap_or_default()
    }

    /// Per class, from `ssim_samples` generated images (eval mode):
    /// generated-vs-real SSIM (against every training image of the class,
    /// brightness and contrast matched), diversity (generated against
    /// generated) and the real-vs-real ceiling (computed once per stage).
    pub fn quality(&mut self) -> Quality {
        let n = self.ssim_samples;
        let mut quality = Quality {
            ssim: Vec::new(),
            diversity: Vec::new(),
            real: self.real_within(),
        };
        for c in 0..self.classes.len() as i64 {
            let fake = self.draw(c, n);
            let (ssim, diversity) = self.score_class(c, &fake);
            quality.ssim.push(ssim);
            quality.diversity.push(diversity);
        }
        quality
    }

    /// `n` images of class `c` from fresh noise (the torch RNG), drawn by
    /// [`generator`](Self::generator) in eval mode 16 at a time: `[n, 1, H,
    /// W]` in [0, 1].
    pub fn draw(&self, c: i64, n: i64) -> Tensor {
        let z = Tensor::randn([n, self.latent_dim], (Kind::Float, self.device));
        let labels = Tensor::full([n], c, (Kind::Int64, self.device));
        let chunks: Vec<Tensor> = (0..n)
            .step_by(SSIM_CHUNK as usize)
            .map(|i| {
                let m = (n - i).min(SSIM_CHUNK);
                tch::no_grad(|| {
                    self.generator()
                        .generate(&z.narrow(0, i, m), &labels.narrow(0, i, m), false)
                })
            })
            .collect();
        (Tensor::cat(&chunks, 0) + 1.0) / 2.0
    }

    /// [`Quality`] of given images, per class `[N, 1, H, W]` in [0, 1] on
    /// the stage's device (`None`: that class's scores are NaN, its
    /// ceiling is still computed).
    pub fn quality_of(&mut self, generated: &[Option<Tensor>]) -> Quality {
        let mut quality = Quality {
            ssim: Vec::new(),
            diversity: Vec::new(),
            real: self.real_within(),
        };
        for c in 0..self.classes.len() {
            let (ssim, diversity) = match generated.get(c).and_then(Option::as_ref) {
                Some(fake) => self.score_class(c as i64, fake),
                None => (f64::NAN, f64::NAN),
            };
            quality.ssim.push(ssim);
            quality.diversity.push(diversity);
        }
        quality
    }

    /// Generated images `fake` of class `c`: (SSIM against the class's
    /// training images, diversity among themselves).
    fn score_class(&self, c: i64, fake: &Tensor) -> (f64, f64) {
        let real = self.real_of_class(c);
        (
            ssim::mean_pairwise_ssim(fake, &real, SSIM_CHUNK),
            ssim::mean_within_ssim(fake, SSIM_CHUNK),
        )
    }

    /// Load a trained generator (`g.*`, every tensor, shapes equal) and,
    /// with `train.ema`, its average (`g_ema.*`; a file without one, from a
    /// run without `ema`, starts the average at `g.*`).
    pub fn load_generator(&mut self, tensors: &HashMap<String, Tensor>) -> Result<(), String> {
        checkpoint::load_var_store(&self.g_vs, "g.", tensors, true)?;
        self.load_average(tensors)
    }

    /// The average's weights and update count from `tensors`, or (none
    /// there) the trained generator's weights.
    fn load_average(&mut self, tensors: &HashMap<String, Tensor>) -> Result<(), String> {
        let Some(avg) = &mut self.average else {
            return Ok(());
        };
        if tensors.keys().any(|k| k.starts_with(AVERAGE_PREFIX)) {
            checkpoint::load_var_store(&avg.vs, AVERAGE_PREFIX, tensors, true)?;
            avg.ema.load_state("ema.", tensors);
        } else {
            avg.ema.reset();
        }
        Ok(())
    }

    /// The generator that draws samples, grids and generated images: the
    /// averaged one with `train.ema`, else the trained one.
    pub fn generator(&self) -> &dyn Generator {
        match &self.average {
            Some(avg) => avg.generator.as_ref(),
            None => self.generator.as_ref(),
        }
    }
}

/// Checkpoint prefix of the averaged generator's weights.
const AVERAGE_PREFIX: &str = "g_ema.";

/// The `warn` event for a class whose generated images are far more alike
/// than its real ones ([`store::is_collapsed`]); `what` names the stage,
/// epoch or images and the class.
pub(super) fn collapse_warning(what: &str, diversity: f64, real: f64) -> Option<Event> {
    store::is_collapsed(diversity, real).then(|| {
        Event::warning(format!(
            "{what} has collapsed: its generated images are alike (diversity {diversity:.3}) \
             where its real ones differ (real-vs-real {real:.3}; the rule is diversity > real + \
             {}); oversampling with it only duplicates",
            store::COLLAPSE_MARGIN,
        ))
    })
}

fn bce(logits: &Tensor, target: f64) -> Tensor {
    logits.binary_cross_entropy_with_logits::<Tensor>(
        &logits.full_like(target),
        None,
        None,
        Reduction::Mean,
    )
}

/// MSGAN's regulariser for pairs `(i, half + i)`, i < `half`, of one
/// class: `1 / (mean|G(z1) - G(z2)| / mean|z1 - z2| + 1e-5)`, small when
/// different noise gives different images.
fn mode_seeking_term(fake: &Tensor, z: &Tensor, half: i64) -> Tensor {
    let image_gap = (fake.narrow(0, 0, half) - fake.narrow(0, half, half))
        .abs()
        .mean(Kind::Float);
    let noise_gap = (z.narrow(0, 0, half) - z.narrow(0, half, half))
        .abs()
        .mean(Kind::Float);
    (image_gap / noise_gap + 1e-5).reciprocal()
}

fn ce(logits: &Tensor, labels: &Tensor) -> Tensor {
    logits.cross_entropy_loss::<Tensor>(labels, None, Reduction::Mean, -100, 0.0)
}

impl StageTrainer for GanTrainer {
    fn classes(&self) -> Vec<String> {
        self.classes.clone()
    }
    fn train_len(&self) -> usize {
        self.labels.size()[0] as usize
    }
    fn test_len(&self) -> usize {
        self.test_len
    }

    fn train_step(&mut self, indices: &[i64]) -> Result<(), TrainError> {
        let indices = &Tensor::from_slice(indices).to_device(self.device);
        let real = self.amp.input(&self.images.index_select(0, indices));
        let y = self.labels.index_select(0, indices);
        let b = y.size()[0];
        let z = Tensor::randn([b, self.latent_dim], (Kind::Float, self.device));
        let n_classes = self.classes.len() as i64;
        // With mode seeking, the second half of the batch asks for the same
        // classes as the first, so that pairs differ only in their noise.
        let half = b / 2;
        let y_fake = if self.mode_seeking > 0.0 && half > 0 {
            let first = Tensor::randint(n_classes, [b - half], (Kind::Int64, self.device));
            Tensor::cat(&[first.shallow_clone(), first.narrow(0, 0, half)], 0)
        } else {
            Tensor::randint(n_classes, [b], (Kind::Int64, self.device))
        };
        let torch_err = |message| TrainError::torch(&self.stage, message);
        let (amp, d) = (&mut self.amp, &self.discriminator);
        let fake = amp.autocast(|| self.generator.generate(&z, &y_fake, true));

        // Discriminator: real as real with its class, fake as fake. The class
        // head also learns the fakes' classes (ACGAN), unless a twin head
        // learns them instead (TAC-GAN: the class head sees real images only).
        self.opt_d.zero_grad();
        let (s_real, c_real, s_fake, d_loss) = amp.autocast(|| {
            let on_real = d.judge_all(&real, true);
            let on_fake = d.judge_all(&fake.detach(), true);
            let fake_class = match &on_fake.twin {
                Some(twin) => ce(twin, &y_fake),
                None => ce(&on_fake.class, &y_fake),
            };
            let d_loss = ((bce(&on_real.source, 1.0) + ce(&on_real.class, &y))
                + (bce(&on_fake.source, 0.0) + fake_class))
                / 2.0;
            (on_real.source, on_real.class, on_fake.source, d_loss)
        });
        amp.backward(&d_loss);
        amp.step(&mut self.opt_d).map_err(torch_err)?;

        // Generator: fool the real/fake head, be recognised as the class
        // asked for, (TAC-GAN) be hard for the twin head, and (MSGAN) let
        // different noise give different images.
        // D's weights take no gradient here: the next D update zeroes it
        // unused, so computing it would be work thrown away (the same
        // losses and updates, about a third less D backward).
        self.opt_g.zero_grad();
        let d_weights = self.d_vs.trainable_variables();
        set_requires_grad(&d_weights, false);
        let mode_seeking = self.mode_seeking;
        let g_loss = amp.autocast(|| {
            let on_gen = d.judge_all(&fake, true);
            let mut loss = bce(&on_gen.source, 1.0) + ce(&on_gen.class, &y_fake);
            if let Some(twin) = &on_gen.twin {
                loss = &loss - ce(twin, &y_fake);
            }
            if mode_seeking > 0.0 && half > 0 {
                loss = &loss + mode_seeking_term(&fake, &z, half) * mode_seeking;
            }
            loss
        });
        amp.backward(&g_loss);
        set_requires_grad(&d_weights, true);
        amp.step(&mut self.opt_g).map_err(torch_err)?;
        amp.update().map_err(torch_err)?;
        if let Some(avg) = &mut self.average {
            avg.ema.update();
        }

        tch::no_grad(|| {
            let w = &mut self.window;
            w.g_loss += g_loss.detach();
            w.d_loss += d_loss.detach();
            w.real_ok += s_real.gt(0.0).sum(Kind::Float);
            w.fake_ok += s_fake.lt(0.0).sum(Kind::Float);
            w.class_ok += c_real.argmax(1, false).eq_tensor(&y).sum(Kind::Float);
        });
        self.window.images += b;
        self.window.steps += 1;
        Ok(())
    }

    fn log_event(
        &mut self,
        epoch: u64,
        step: u64,
        images_per_sec: f64,
    ) -> Result<Event, TrainError> {
        self.check_finite(step)?;
        let w = std::mem::replace(&mut self.window, Window::new(self.device));
        let get = |t: &Tensor| f64::try_from(t).unwrap_or(f64::NAN);
        let (steps, images) = (w.steps.max(1) as f64, w.images.max(1) as f64);
        Ok(Event::GanStep {
            stage: self.stage.clone(),
            epoch,
            step,
            g_loss: get(&w.g_loss) / steps,
            d_loss: get(&w.d_loss) / steps,
            d_real_acc: get(&w.real_ok) / images,
            d_fake_acc: get(&w.fake_ok) / images,
            d_class_acc: get(&w.class_ok) / images,
            images_per_sec,
        })
    }

    fn check_finite(&self, step: u64) -> Result<(), TrainError> {
        for (what, t) in [
            ("generator loss", &self.window.g_loss),
            ("discriminator loss", &self.window.d_loss),
        ] {
            let value = f64::try_from(t).unwrap_or(f64::NAN);
            if !value.is_finite() {
                return Err(TrainError::NonFinite {
                    stage: self.stage.clone(),
                    what: what.into(),
                    value,
                    step,
                });
            }
        }
        Ok(())
    }

    fn end_of_epoch(
        &mut self,
        ctx: &StageContext<'_, '_>,
        epoch: u64,
        step: u64,
    ) -> Result<Vec<Event>, TrainError> {
        let grid = tch::no_grad(|| {
            self.generator()
                .generate(&self.fixed_z, &self.fixed_labels, false)
        });
        let rel = format!("samples/{}-e{epoch:04}.png", self.stage);
        let path = ctx.run.root().join(&rel);
        samples::write_grid(&grid, self.classes.len(), SAMPLES_PER_CLASS as usize, &path)
            .map_err(|m| ctx.torch_err(m))?;
        let mut events = vec![Event::Sample {
            stage: self.stage.clone(),
            epoch,
            step,
            path: rel,
        }];
        events.extend(self.amp.take_skip_report().map(Event::warning));
        if self.ssim_every > 0 && (epoch.is_multiple_of(self.ssim_every) || epoch == self.epochs) {
            let q = self.quality();
            for (i, class) in self.classes.iter().enumerate() {
                let (diversity, real) = (q.diversity[i], q.real[i]);
                events.extend(collapse_warning(
                    &format!("{} epoch {epoch}: class {class}", self.stage),
                    diversity,
                    real,
                ));
            }
            events.push(Event::Ssim {
                stage: self.stage.clone(),
                epoch,
                step,
                classes: self.classes.clone(),
                ssim: q.ssim,
                diversity: q.diversity,
                real: q.real,
            });
        }
        Ok(events)
    }

    fn checkpoint_tensors(&self) -> Vec<(String, Tensor)> {
        let mut all = checkpoint::var_store_tensors(&self.g_vs, "g.");
        all.extend(checkpoint::var_store_tensors(&self.d_vs, "d."));
        all.extend(self.opt_g.state_tensors("opt_g."));
        all.extend(self.opt_d.state_tensors("opt_d."));
        all.extend(self.amp.state_tensors("amp."));
        if let Some(avg) = &self.average {
            all.extend(checkpoint::var_store_tensors(&avg.vs, AVERAGE_PREFIX));
            all.extend(avg.ema.state_tensors("ema."));
        }
        all
    }

    fn restore(&mut self, tensors: &HashMap<String, Tensor>) -> Result<Vec<String>, String> {
        checkpoint::load_var_store(&self.g_vs, "g.", tensors, true)?;
        checkpoint::load_var_store(&self.d_vs, "d.", tensors, true)?;
        self.load_average(tensors)?;
        let warnings = self.amp.load_state("amp.", tensors).into_iter().collect();
        self.opt_g.load_state("opt_g.", tensors)?;
        self.opt_d.load_state("opt_d.", tensors)?;
        Ok(warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{KnownRuns, parse_config};
    use std::path::Path;

    fn trainer(train: &str) -> GanTrainer {
        let text = format!(
            "kind = \"gan\"\nmodel = {{ arch = \"acgan\", latent_dim = 8, base_channels = 4 }}\n\
             data = {{ image_size = [16, 16], per_class = 4 }}\n\
             train = {{ batch_size = 4, lr = 1e-2, device = \"cpu\"{train} }}\n"
        );
        let spec =
            parse_config("t.toml", &text, Path::new("."), "t", &KnownRuns::default()).unwrap();
        let stage = &spec.stage[0];
        let data = crate::data::load(&stage.data).unwrap();
        GanTrainer::new(stage, data, Device::Cpu).unwrap()
    }

    /// What `t`'s sampling generator draws from fixed noise.
    fn draw(t: &GanTrainer) -> Tensor {
        tch::manual_seed(5);
        let z = Tensor::randn([6, 8], (Kind::Float, Device::Cpu));
        let labels = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2]);
        tch::no_grad(|| t.generator().generate(&z, &labels, false))
    }

    fn gap(a: &Tensor, b: &Tensor) -> f64 {
        f64::try_from((a - b).abs().max()).unwrap()
    }

    #[test]
    fn the_averaged_generator_samples_and_survives_a_checkpoint() {
        let mut t = trainer(", ema = 0.9");
        let untrained = draw(&t);
        for _ in 0..12 {
            t.train_step(&[0, 1, 2, 3]).unwrap();
        }
        let tensors: HashMap<String, Tensor> = t.checkpoint_tensors().into_iter().collect();
        let g_ema = |name: &str| &tensors[&format!("{AVERAGE_PREFIX}{name}")];
        let name = "fc.weight";
        assert!(
            gap(g_ema(name), &tensors[&format!("g.{name}")]) > 0.0,
            "the average lags the trained weights"
        );
        assert_eq!(tensors["ema.updates"].int64_value(&[0]), 12);
        let averaged = draw(&t);
        assert!(gap(&averaged, &untrained) > 0.0, "the average moved");
        let mut plain = trainer("");
        plain.load_generator(&tensors).unwrap();
        assert!(
            gap(&draw(&plain), &averaged) > 0.0,
            "without ema the trained generator samples"
        );

        // Restored, the average draws the same images and keeps its count.
        let mut back = trainer(", ema = 0.9");
        back.restore(&tensors).unwrap();
        assert_eq!(gap(&draw(&back), &averaged), 0.0);
        let again: HashMap<String, Tensor> = back.checkpoint_tensors().into_iter().collect();
        assert_eq!(again["ema.updates"].int64_value(&[0]), 12);

        // Weights from a run without ema: the average starts at them.
        let mut from_plain = trainer(", ema = 0.9");
        let without: HashMap<String, Tensor> = tensors
            .iter()
            .filter(|(k, _)| !k.starts_with(AVERAGE_PREFIX))
            .map(|(k, v)| (k.clone(), v.shallow_clone()))
            .collect();
        from_plain.load_generator(&without).unwrap();
        assert_eq!(gap(&draw(&from_plain), &draw(&plain)), 0.0);
    }
}
