//! Training: the step loop shared by every stage, the GAN and classifier
//! stages, optimizers, metrics and checkpoints.

pub mod amp;
pub mod bench;
pub mod checkpoint;
pub mod classifier;
pub mod ema;
pub mod evaluate;
pub mod gan;
pub mod generate;
pub mod metrics;
pub mod optim;
pub mod samples;
pub mod ssim;
mod step_loop;

pub use step_loop::{StageOutcome, StageTrainer, run_stage};

use crate::config::{DeviceChoice, StageSpec};
use crate::store::{CheckpointState, Event, EventRecord, EventWriter, RunDir, StoreError};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use tch::Device;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Model(#[from] crate::nn::ModelError),
    #[error("stage '{stage}': {message}")]
    Torch { stage: String, message: String },
    #[error(
        "stage '{stage}': {what} became {value} at step {step}; stopped with the last good checkpoint kept (try a lower lr)"
    )]
    NonFinite {
        stage: String,
        what: String,
        value: f64,
        step: u64,
    },
    #[error("stage '{stage}': {message}")]
    Setup { stage: String, message: String },
    #[error(
        "stage '{stage}': out of device memory at batch_size {batch_size}, image_size [{height}, {width}]; lower train.batch_size or data.image_size ({detail})"
    )]
    OutOfMemory {
        stage: String,
        batch_size: usize,
        height: usize,
        width: usize,
        detail: String,
    },
    #[error("{path}: cannot write events: {source}")]
    Events {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes events to `events.jsonl` and shows each to an observer (the
/// progress bar of `scintigan run`).
pub struct Recorder<'a> {
    writer: EventWriter,
    path: PathBuf,
    observer: Box<dyn FnMut(&EventRecord) + 'a>,
}

impl<'a> Recorder<'a> {
    pub fn new(run: &RunDir, observer: impl FnMut(&EventRecord) + 'a) -> Result<Self, TrainError> {
        let path = run.events_path();
        let writer = EventWriter::open(&path).map_err(|source| TrainError::Events {
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            writer,
            path,
            observer: Box::new(observer),
        })
    }

    pub fn emit(&mut self, event: Event) -> Result<(), TrainError> {
        let rec = self
            .writer
            .append(event)
            .map_err(|source| TrainError::Events {
                path: self.path.clone(),
                source,
            })?;
        (self.observer)(&rec);
        Ok(())
    }

    /// Drop recorded events `keep` rejects (unparsable lines move to
    /// `events.rejected.jsonl`); says how many of each.
    pub fn retain(
        &mut self,
        lock: &crate::store::lock::RunLock,
        keep: impl Fn(&EventRecord) -> bool,
    ) -> Result<crate::store::Retained, TrainError> {
        self.writer
            .retain(lock, keep)
            .map_err(|source| TrainError::Events {
                path: self.path.clone(),
                source,
            })
    }

    pub fn sync(&mut self) -> Result<(), TrainError> {
        self.writer.sync().map_err(|source| TrainError::Events {
            path: self.path.clone(),
            source,
        })
    }
}

/// Where the running stage is, shared with the worker's heartbeat thread
/// (which records it in `status.json` every few seconds).
/// Messages other threads of a worker leave for the event log, which only
/// the step loop writes.
#[derive(Debug, Default)]
pub struct Notices(std::sync::Mutex<Vec<String>>);

impl Notices {
    pub fn push(&self, message: String) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(message);
    }
    /// Everything pushed since the last call.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

#[derive(Debug, Default)]
pub struct Progress {
    pub epoch: std::sync::atomic::AtomicU64,
    pub step: std::sync::atomic::AtomicU64,
    /// Steps of the stage in all; 0 while no stage runs.
    pub total: std::sync::atomic::AtomicU64,
}

impl Progress {
    pub fn set(&self, epoch: u64, step: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.epoch.store(epoch, Relaxed);
        self.step.store(step, Relaxed);
    }
    /// (epoch, step, total), when a stage runs.
    pub fn get(&self) -> Option<(u64, u64, u64)> {
        use std::sync::atomic::Ordering::Relaxed;
        let total = self.total.load(Relaxed);
        (total > 0).then(|| (self.epoch.load(Relaxed), self.step.load(Relaxed), total))
    }
}

/// Everything one stage needs from the worker.
pub struct StageContext<'r, 'a> {
    pub run: &'r RunDir,
    pub spec: &'r StageSpec,
    pub device: Device,
    pub recorder: &'r mut Recorder<'a>,
    pub stop: &'r AtomicBool,
    /// Hold at the next step boundary while set (unless `stop` is set).
    pub pause: &'r AtomicBool,
    /// Warnings from other threads, emitted at the next step boundary.
    pub notices: &'r Notices,
    pub progress: &'r Progress,
    /// Continue from this checkpoint of this stage.
    pub resume: Option<(PathBuf, CheckpointState)>,
    /// Start from these weights (a `weights.safetensors`) instead of random.
    pub init: Option<PathBuf>,
}

impl TrainError {
    /// A libtorch failure in `stage`.
    pub fn torch(stage: &str, e: impl std::fmt::Display) -> Self {
        TrainError::Torch {
            stage: stage.to_string(),
            message: e.to_string(),
        }
    }
}

impl StageContext<'_, '_> {
    pub fn torch_err(&self, e: impl std::fmt::Display) -> TrainError {
        TrainError::torch(&self.spec.name, e)
    }
}

/// Pick the device a config asks for; `auto` takes CUDA when present.
pub fn select_device(choice: DeviceChoice) -> Result<Device, String> {
    match choice {
        DeviceChoice::Auto => Ok(Device::cuda_if_available()),
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda(n) => {
            let count = tch::Cuda::device_count() as usize;
            if n < count {
                Ok(Device::Cuda(n))
            } else {
                Err(format!(
                    "device cuda:{n} requested but {count} CUDA device(s) are visible; set train.device = \"auto\" or \"cpu\""
                ))
            }
        }
    }
}

/// Human name of a device, as events and status show it.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".to_string(),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}
