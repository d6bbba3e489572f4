//! Classifier evaluation: loss, confusion matrix and per-image predictions
//! of a model on a data set, and loading a trained classifier back from a
//! run directory (for `scintigan eval` and `scintigan gradcam`).

use super::metrics::Confusion;
use super::{TrainError, checkpoint};
use crate::config::{ClassifierArch, StageKind, StageSpec};
use crate::data::Dataset;
use crate::nn::backbones::{BackboneClassifier, backbone_classifier_with};
use crate::nn::gradcam::CamTarget;
use crate::nn::multiscale::{MultiScale, multiscale};
use crate::nn::small_cnn::{SmallCnn, small_cnn};
use crate::store::{CheckpointDir, RunDir};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Reduction, Tensor};

/// One image's outcome.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub name: String,
    pub truth: usize,
    pub predicted: usize,
    /// Softmax probabilities per class.
    pub probabilities: Vec<f64>,
}

#[derive(Debug)]
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f64,
    pub confusion: Confusion,
    /// Filled when asked for.
    pub predictions: Vec<Prediction>,
}

/// Run `model` in eval mode over `data` in batches of `batch`. A tensor
/// that cannot be read back is an error, never a batch left out.
pub fn evaluate(
    model: &dyn ModuleT,
    data: &Dataset,
    batch: i64,
    keep_predictions: bool,
) -> Result<Evaluation, tch::TchError> {
    let n = data.len() as i64;
    let mut confusion = Confusion::new(data.classes.len());
    let mut predictions = Vec::new();
    let mut loss = 0.0;
    tch::no_grad(|| -> Result<(), tch::TchError> {
        let mut start = 0;
        while start < n {
            let len = batch.max(1).min(n - start);
            let x = data.images.narrow(0, start, len);
            let y = data.labels.narrow(0, start, len);
            let logits = model.forward_t(&x, false);
            let batch_loss =
                logits.cross_entropy_loss::<Tensor>(&y, None, Reduction::Sum, -100, 0.0);
            loss += f64::try_from(batch_loss)?;
            let pred = Vec::<i64>::try_from(logits.argmax(1, false).to_device(Device::Cpu))?;
            let truth = Vec::<i64>::try_from(y.to_device(Device::Cpu))?;
            confusion.add(&truth, &pred);
            if keep_predictions {
                let probs = logits.softmax(1, Kind::Double).to_device(Device::Cpu);
                for (i, (&t, &p)) in truth.iter().zip(&pred).enumerate() {
                    predictions.push(Prediction {
                        name: data
                            .names
                            .get((start as usize) + i)
                            .cloned()
                            .unwrap_or_default(),
                        truth: t as usize,
                        predicted: p as usize,
                        probabilities: Vec::<f64>::try_from(probs.get(i as i64))?,
                    });
                }
            }
            start += len;
        }
        Ok(())
    })?;
    Ok(Evaluation {
        loss: loss / n.max(1) as f64,
        confusion,
        predictions,
    })
}

/// A classifier rebuilt from a run directory.
pub enum TrainedModel {
    Backbone(Box<BackboneClassifier>),
    MultiScale(Box<MultiScale>),
    Small(Box<SmallCnn>),
}

impl TrainedModel {
    pub fn module(&self) -> &dyn ModuleT {
        match self {
            TrainedModel::Backbone(m) => m.as_ref(),
            TrainedModel::MultiScale(m) => m.as_ref(),
            TrainedModel::Small(m) => m.as_ref(),
        }
    }

    /// Grad-CAM targets; the small CNN has none.
    pub fn cam(&self) -> Option<&dyn CamTarget> {
        match self {
            TrainedModel::Backbone(m) => Some(m.as_ref()),
            TrainedModel::MultiScale(m) => Some(m.as_ref()),
            TrainedModel::Small(_) => None,
        }
    }
}

pub struct Trained {
    pub stage: StageSpec,
    pub model: TrainedModel,
    /// Which weights were loaded, for messages.
    pub weights: std::path::PathBuf,
    _vs: nn::VarStore,
}

/// Which weights of a classifier stage to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhichWeights {
    /// The stage's final checkpoint.
    Final,
    /// The best test accuracy seen during training (`checkpoints/best/`).
    Best,
}

/// The last classifier stage of `run` with its final or best weights, on the CPU.
pub fn load_trained(run: &RunDir, which: WhichWeights) -> Result<Trained, TrainError> {
    let spec = run.spec()?;
    let setup = |stage: &str, message: String| TrainError::Setup {
        stage: stage.to_string(),
        message,
    };
    let stage = spec
        .stage
        .iter()
        .rev()
        .find(|s| s.kind == StageKind::Classifier)
        .cloned()
        .ok_or_else(|| {
            setup(
                &spec.name,
                format!("{}: this run has no classifier stage", run.root().display()),
            )
        })?;
    let checkpoints = run.checkpoints();
    let dir = match which {
        WhichWeights::Final => checkpoints.stage_final(&stage.name),
        WhichWeights::Best => Some(checkpoints.best_dir(&stage.name)).filter(|d| d.is_dir()),
    }
    .ok_or_else(|| {
        setup(
            &stage.name,
            format!(
                "{}: no {which:?} weights for this stage yet",
                run.root().display()
            )
            .to_lowercase(),
        )
    })?;
    let vs = nn::VarStore::new(Device::Cpu);
    let n = stage.class_names().len() as i64;
    let model = match stage.model.classifier_arch() {
        Some(ClassifierArch::Multiscale) => {
            TrainedModel::MultiScale(Box::new(multiscale(vs.root(), n)))
        }
        Some(ClassifierArch::SmallCnn) => TrainedModel::Small(Box::new(small_cnn(
            vs.root(),
            stage.model.base_channels as i64,
            n,
        ))),
        Some(arch) => TrainedModel::Backbone(Box::new(backbone_classifier_with(
            vs.root(),
            arch,
            n,
            !stage.model.weights.is_none(),
        )?)),
        None => {
            return Err(setup(
                &stage.name,
                format!("unknown arch '{}'", stage.model.arch),
            ));
        }
    };
    let weights = dir.join(CheckpointDir::WEIGHTS);
    let tensors = checkpoint::read(&weights).map_err(|m| setup(&stage.name, m))?;
    checkpoint::load_var_store(&vs, "model.", &tensors, true).map_err(|m| setup(&stage.name, m))?;
    Ok(Trained {
        stage,
        model,
        weights,
        _vs: vs,
    })
}
