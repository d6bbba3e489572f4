//! The classifier stage: cross-entropy training on batches the loader makes
//! ahead (augmented on the fly, see `data::loader`), and at each epoch's end
//! an evaluation on the test split (accuracy, per-class and macro precision,
//! recall, specificity, F1, confusion matrix).

use super::amp::MixedPrecision;
use super::metrics::Confusion;
use super::optim::{OptimConfig, Optimizer};
use super::step_loop::StageTrainer;
use super::{StageContext, TrainError, checkpoint};
use crate::config::PretrainedWeights;
use crate::config::{ClassifierArch, StageSpec};
use crate::data::loader::{Cache, Loader, LoaderSpec, Source};
use crate::data::{Dataset, Split};
use crate::nn::ModelError;
use crate::nn::backbones::{self, backbone_classifier_with};
use crate::nn::multiscale::multiscale;
use crate::nn::small_cnn::small_cnn;
use crate::nn::weights;
use crate::store::{BestRecord, Event};
use std::collections::HashMap;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Reduction, Tensor};

pub struct ClassifierTrainer {
    stage: String,
    vs: nn::VarStore,
    model: Box<dyn ModuleT>,
    opt: Optimizer,
    amp: MixedPrecision,
    /// The training images once, and how they are augmented per epoch.
    train: Source,
    classes: Vec<String>,
    /// This epoch's batches, made ahead (None before the first epoch).
    loader: Option<Loader>,
    /// Augmentation threads of the loader.
    loader_threads: usize,
    epoch: u64,
    test: Dataset,
    batch_size: usize,
    /// Train only the head up to this epoch.
    freeze_until: u64,
    /// (schedule, base learning rate, epochs of the stage).
    schedule: (crate::config::LrSchedule, f64, usize),
    /// Variable-name prefixes of the new head (never frozen).
    head_prefixes: &'static [&'static str],
    loss_sum: Tensor,
    correct: Tensor,
    images: i64,
    steps: i64,
    device: Device,
    /// Best test accuracy so far (None until read from the run directory).
    best_accuracy: Option<f64>,
}

impl ClassifierTrainer {
    pub fn new(spec: &StageSpec, data: Split, device: Device) -> Result<Self, TrainError> {
        // Weight initialisation draws from torch's RNG: seed it for reproducible runs.
        tch::manual_seed((spec.train.seed >> 1) as i64);
        let vs = nn::VarStore::new(device);
        let n_classes = data.train.classes.len() as i64;
        let [h, w] = spec.data.image_size.map(|x| x as i64);
        let model: Box<dyn ModuleT> = match spec.model.classifier_arch() {
            Some(ClassifierArch::SmallCnn) => Box::new(small_cnn(
                vs.root(),
                spec.model.base_channels as i64,
                n_classes,
            )),
            Some(arch) if h.min(w) < backbones::min_input_size(arch) => {
                return Err(ModelError::TooSmall {
                    arch: arch.to_string(),
                    min: backbones::min_input_size(arch),
                    height: h,
                    width: w,
                }
                .into());
            }
            Some(ClassifierArch::Multiscale) => Box::new(multiscale(vs.root(), n_classes)),
            Some(arch) => Box::new(backbone_classifier_with(
                vs.root(),
                arch,
                n_classes,
                !spec.model.weights.is_none(),
            )?),
            None => {
                return Err(ModelError::NotAvailable(
                    spec.model.arch.clone(),
                    backbones::AVAILABLE,
                )
                .into());
            }
        };
        let cfg = OptimConfig {
            kind: spec.train.optimizer,
            lr: spec.train.lr,
            betas: spec.train.betas,
            eps: 1e-8,
            weight_decay: spec.train.weight_decay,
        };
        let amp = MixedPrecision::new(&spec.train, device);
        amp.prepare(&vs);
        let cache = Cache::from_dataset(&data.train).map_err(|e| TrainError::Setup {
            stage: spec.name.clone(),
            message: format!("cannot copy the training images to host memory: {e}"),
        })?;
        let train = Source {
            cache: std::sync::Arc::new(cache),
            augment: spec.data.augment.clone(),
        };
        let to_device = |d: Dataset| Dataset {
            images: d.images.to_device(device),
            labels: d.labels.to_device(device),
            classes: d.classes,
            names: d.names,
        };
        Ok(Self {
            stage: spec.name.clone(),
            opt: Optimizer::new(&vs, cfg),
            amp,
            vs,
            model,
            train,
            classes: data.train.classes,
            loader: None,
            loader_threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            epoch: 0,
            test: to_device(data.test),
            batch_size: spec.train.batch_size,
            freeze_until: spec.train.freeze_backbone_epochs as u64,
            schedule: (spec.train.lr_schedule, spec.train.lr, spec.train.epochs),
            head_prefixes: head_prefixes(spec.model.classifier_arch()),
            loss_sum: Tensor::zeros([], (Kind::Float, device)),
            correct: Tensor::zeros([], (Kind::Float, device)),
            images: 0,
            steps: 0,
            device,
            best_accuracy: None,
        })
    }

    /// Load the ImageNet weights `model.weights` names; returns one line
    /// per file saying what was loaded and what starts fresh.
    pub fn load_pretrained(&mut self, spec: &StageSpec) -> Result<Vec<String>, String> {
        let files: Vec<(&str, std::path::PathBuf)> = match &spec.model.weights {
            PretrainedWeights::None => return Ok(Vec::new()),
            PretrainedWeights::One(path) => vec![("", path.clone())],
            PretrainedWeights::PerBackbone(map) => map
                .iter()
                .map(|(backbone, path)| (multiscale_prefix(backbone), path.clone()))
                .collect(),
        };
        let mut lines = Vec::new();
        for (prefix, path) in files {
            let tensors =
                weights::normalise_keys(weights::read_tensors(&path).map_err(|e| e.to_string())?);
            let report = weights::load_pretrained(&self.vs, prefix, &tensors)?;
            if report.loaded == 0 {
                return Err(format!(
                    "{}: no tensor matches the model's variable names",
                    path.display()
                ));
            }
            let mut line = format!(
                "loaded {} pretrained tensors from {}",
                report.loaded,
                path.display()
            );
            if !prefix.is_empty() && !report.fresh.is_empty() {
                return Err(format!(
                    "{}: missing from the file: {}",
                    path.display(),
                    report.fresh.join(", ")
                ));
            } else if !report.fresh.is_empty() {
                line.push_str(&format!("; new: {}", report.fresh.join(", ")));
            }
            lines.push(line);
        }
        Ok(lines)
    }

    pub fn load_init(&mut self, tensors: &HashMap<String, Tensor>) -> Result<Vec<String>, String> {
        let report = checkpoint::load_var_store(&self.vs, "model.", tensors, false)?;
        if report.loaded == 0 {
            return Err("no classifier weights (model.*) in the file".into());
        }
        Ok(report.reinitialised)
    }

    /// Test-split loss and confusion matrix, in eval mode.
    fn evaluate(&self) -> Result<(f64, Confusion), TrainError> {
        let e = super::evaluate::evaluate(
            self.model.as_ref(),
            &self.test,
            self.batch_size as i64,
            false,
        )
        .map_err(|e| TrainError::torch(&self.stage, format!("evaluating the test split: {e}")))?;
        Ok((e.loss, e.confusion))
    }
}

impl StageTrainer for ClassifierTrainer {
    fn classes(&self) -> Vec<String> {
        self.classes.clone()
    }
    fn train_len(&self) -> usize {
        self.train.len()
    }
    fn test_len(&self) -> usize {
        self.test.len()
    }

    fn start_epoch(&mut self, epoch: u64, upcoming: &[i64], batch_size: usize) {
        self.epoch = epoch;
        // The previous epoch's loader (if a stop left batches in it) ends here.
        self.loader = None;
        let spec = LoaderSpec {
            batch_size,
            threads: self.loader_threads,
            prefetch: 2,
        };
        let items = upcoming.iter().map(|&i| i as usize).collect();
        self.loader = Some(Loader::start(self.train.clone(), &spec, epoch, items));
        let (schedule, lr, epochs) = self.schedule;
        self.opt.set_lr(schedule.lr_at(lr, epoch, epochs));
        if self.freeze_until == 0 {
            return;
        }
        let frozen = epoch <= self.freeze_until;
        for (name, var) in self.vs.variables() {
            let is_head = self.head_prefixes.iter().any(|p| name.starts_with(p));
            if var.is_floating_point() && !name.contains("running_") {
                let _ = var.set_requires_grad(is_head || !frozen);
            }
        }
    }

    fn train_step(&mut self, indices: &[i64]) -> Result<(), TrainError> {
        let items: Vec<usize> = indices.iter().map(|&i| i as usize).collect();
        let batch = match self.loader.as_mut() {
            // Outside an epoch (benchmarks), the same batch made here.
            None => self.train.batch(self.epoch, &items, self.loader_threads),
            Some(loader) => match loader.next() {
                Some(batch) if batch.items == items => batch,
                other => {
                    return Err(TrainError::Setup {
                        stage: self.stage.clone(),
                        message: format!(
                            "the batch loader is out of step with the training order in epoch {}: \
                             expected items {:?}, got {:?}",
                            self.epoch,
                            &items[..items.len().min(4)],
                            other.map(|b| b.items.into_iter().take(4).collect::<Vec<_>>())
                        ),
                    });
                }
            },
        };
        let x = self.amp.input(&batch.images.to_device(self.device));
        let y = batch.labels.to_device(self.device);
        self.opt.zero_grad();
        let (logits, loss) = self.amp.autocast(|| {
            let logits = self.model.forward_t(&x, true);
            let loss = logits.cross_entropy_loss::<Tensor>(&y, None, Reduction::Mean, -100, 0.0);
            (logits, loss)
        });
        self.amp.backward(&loss);
        let torch_err = |message| TrainError::torch(&self.stage, message);
        self.amp.step(&mut self.opt).map_err(torch_err)?;
        self.amp.update().map_err(torch_err)?;
        tch::no_grad(|| {
            self.loss_sum += loss.detach();
            self.correct += logits.argmax(1, false).eq_tensor(&y).sum(Kind::Float);
        });
        self.images += y.size()[0];
        self.steps += 1;
        Ok(())
    }

    fn log_event(
        &mut self,
        epoch: u64,
        step: u64,
        images_per_sec: f64,
    ) -> Result<Event, TrainError> {
        self.check_finite(step)?;
        let loss = f64::try_from(&self.loss_sum).unwrap_or(f64::NAN) / self.steps.max(1) as f64;
        let accuracy = f64::try_from(&self.correct).unwrap_or(0.0) / self.images.max(1) as f64;
        self.loss_sum = Tensor::zeros([], (Kind::Float, self.device));
        self.correct = Tensor::zeros([], (Kind::Float, self.device));
        (self.images, self.steps) = (0, 0);
        Ok(Event::TrainStep {
            stage: self.stage.clone(),
            epoch,
            step,
            loss,
            accuracy,
            images_per_sec,
        })
    }

    fn check_finite(&self, step: u64) -> Result<(), TrainError> {
        let value = f64::try_from(&self.loss_sum).unwrap_or(f64::NAN);
        if value.is_finite() {
            return Ok(());
        }
        Err(TrainError::NonFinite {
            stage: self.stage.clone(),
            what: "training loss".into(),
            value,
            step,
        })
    }

    fn end_of_epoch(
        &mut self,
        ctx: &StageContext<'_, '_>,
        epoch: u64,
        step: u64,
    ) -> Result<Vec<Event>, TrainError> {
        let skips: Vec<Event> = self
            .amp
            .take_skip_report()
            .map(Event::warning)
            .into_iter()
            .collect();
        if self.test.is_empty() {
            return Ok(skips);
        }
        let (loss, confusion) = self.evaluate()?;
        let m = confusion.metrics();
        let mut events = Vec::new();
        let checkpoints = ctx.run.checkpoints();
        let best = match self.best_accuracy {
            Some(best) => best,
            // A damaged best.json stops the run rather than letting the next
            // epoch overwrite the best weights it describes.
            None => checkpoints
                .read_best(&self.stage)?
                .map_or(f64::NEG_INFINITY, |b| b.accuracy),
        };
        self.best_accuracy = Some(best);
        if m.accuracy > best {
            let record = BestRecord {
                epoch,
                step,
                accuracy: m.accuracy,
            };
            let tensors = checkpoint::var_store_tensors(&self.vs, "model.");
            let bytes = checkpoint::payload_bytes(&tensors);
            let dir = checkpoints.write_best(&self.stage, &record, bytes, |p| {
                checkpoint::write(&tensors, p)
            })?;
            self.best_accuracy = Some(m.accuracy);
            events.push(Event::info(format!(
                "new best test accuracy {:.4} at epoch {epoch}; weights in {}",
                m.accuracy,
                dir.strip_prefix(ctx.run.root()).unwrap_or(&dir).display()
            )));
        }
        events.insert(
            0,
            Event::Eval {
                stage: self.stage.clone(),
                epoch,
                step,
                loss,
                accuracy: m.accuracy,
                classes: self.test.classes.clone(),
                confusion: confusion.counts,
                precision: m.precision,
                recall: m.recall,
                specificity: m.specificity,
                f1: m.f1,
                macro_precision: m.macro_precision,
                macro_recall: m.macro_recall,
                macro_specificity: m.macro_specificity,
                macro_f1: m.macro_f1,
            },
        );
        events.extend(skips);
        Ok(events)
    }

    fn checkpoint_tensors(&self) -> Vec<(String, Tensor)> {
        let mut all = checkpoint::var_store_tensors(&self.vs, "model.");
        all.extend(self.opt.state_tensors("opt."));
        all.extend(self.amp.state_tensors("amp."));
        all
    }

    fn restore(&mut self, tensors: &HashMap<String, Tensor>) -> Result<Vec<String>, String> {
        checkpoint::load_var_store(&self.vs, "model.", tensors, true)?;
        let warnings = self.amp.load_state("amp.", tensors).into_iter().collect();
        self.opt.load_state("opt.", tensors)?;
        Ok(warnings)
    }
}

/// The variable prefix of a multi-scale branch, by its `model.weights` key.
fn multiscale_prefix(backbone: &str) -> &'static str {
    match backbone {
        "densenet121" => "densenet.",
        "vgg16" => "vgg.",
        _ => "resnext.",
    }
}

/// Variable-name prefixes of each classifier's new head, as torchvision names it.
fn head_prefixes(arch: Option<ClassifierArch>) -> &'static [&'static str] {
    match arch {
        Some(
            ClassifierArch::Densenet121
            | ClassifierArch::Vgg16
            | ClassifierArch::MobilenetV3Large
            | ClassifierArch::EfficientnetB0,
        ) => &["classifier."],
        _ => &["fc."],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{KnownRuns, parse_config};
    use std::path::Path;

    #[test]
    fn frozen_backbone_keeps_its_weights_until_the_epoch_ends() {
        let text = "kind = \"classifier\"\nmodel = { arch = \"small-cnn\", base_channels = 4 }\n\
                    data = { image_size = [16, 16], per_class = 4 }\n\
                    train = { freeze_backbone_epochs = 1, lr = 1e-2, optimizer = \"adam\", batch_size = 4, device = \"cpu\" }\n";
        let spec =
            parse_config("t.toml", text, Path::new("."), "t", &KnownRuns::default()).unwrap();
        let stage = &spec.stage[0];
        let data = crate::data::load(&stage.data).unwrap();
        let mut trainer = ClassifierTrainer::new(stage, data, Device::Cpu).unwrap();
        let snapshot = |t: &ClassifierTrainer, name: &str| t.vs.variables()[name].detach().copy();
        let changed = |a: &Tensor, b: &Tensor| f64::try_from((a - b).abs().max()).unwrap() > 0.0;
        let idx = [0i64, 1, 2, 3];

        let (conv, head) = (
            snapshot(&trainer, "conv0.weight"),
            snapshot(&trainer, "fc.weight"),
        );
        trainer.start_epoch(1, &idx, 4);
        trainer.train_step(&idx).unwrap();
        assert!(
            !changed(&conv, &snapshot(&trainer, "conv0.weight")),
            "backbone moved while frozen"
        );
        assert!(
            changed(&head, &snapshot(&trainer, "fc.weight")),
            "head did not train"
        );

        trainer.start_epoch(2, &idx, 4);
        trainer.train_step(&idx).unwrap();
        assert!(
            changed(&conv, &snapshot(&trainer, "conv0.weight")),
            "backbone still frozen in epoch 2"
        );
    }
}
