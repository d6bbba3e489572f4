//! One run's stages in this process: the body of `scintigan run` and of the
//! daemon's `scintigan worker RUN_DIR`.
//!
//! On start it works out where the run stands (finished stages, the latest
//! checkpoint), removes events recorded after that checkpoint so no step is
//! ever recorded twice, and continues.

use crate::config::{InitFrom, Precision, RunSpec, StageKind, StageSpec};
use crate::store::{
    self, CheckpointDir, ControlRequest, Event, EventRecord, RunDir, RunState, StoreError,
};
use crate::train::{
    self, Recorder, StageContext, StageOutcome, TrainError, checkpoint,
    classifier::ClassifierTrainer, gan::GanTrainer, generate,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// What a worker is asked to do, set by signals and by the daemon's
/// `control.json`, read by the step loop at step boundaries.
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// Checkpoint and stop (Ctrl-C, SIGTERM, cancel, pause with release).
    pub stop: Arc<AtomicBool>,
    /// Hold at the next step boundary.
    pub pause: Arc<AtomicBool>,
    /// The last request understood asked to free the device (pause with
    /// release): a stop then ends the run paused, not cancelled.
    pub release: Arc<AtomicBool>,
    /// Warnings from the control thread, recorded as `warn` events by the
    /// step loop (the only writer of `events.jsonl`).
    pub notices: Arc<train::Notices>,
    /// Set with `stop` by SIGUSR1, which Slurm sends ahead of a job's time
    /// limit (`signal_lead`): the run ends queued, to be resubmitted.
    pub time_limit: Arc<AtomicBool>,
    /// Where the running stage is, for the heartbeat.
    pub progress: Arc<train::Progress>,
}

/// How often the worker looks at `control.json`.
const CONTROL_POLL: Duration = Duration::from_millis(100);
/// How often the worker refreshes its heartbeat in `status.json`.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);

/// How a worker ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerOutcome {
    Done,
    /// Stopped on request after writing a checkpoint at `step` of `stage`.
    Stopped {
        stage: String,
        step: u64,
    },
}

/// Run (or continue) every unfinished stage of `run`. `observer` sees each
/// event as it is recorded; `stop` is polled at step boundaries.
pub fn execute(
    run: &RunDir,
    lock: &store::lock::RunLock,
    control: &Control,
    observer: impl FnMut(&EventRecord),
) -> Result<WorkerOutcome, TrainError> {
    let spec = run.spec()?;
    let mut status = run.status()?;
    if status.state == RunState::Done {
        return Ok(WorkerOutcome::Done);
    }
    let mut recorder = Recorder::new(run, observer)?;
    let finished = AtomicBool::new(false);
    // libtorch reports errors (CUDA out of memory among them) as panics
    // through tch: turn one into a failed run with its reason, not a crash
    // that leaves status.json saying "running".
    let attempt = std::thread::scope(|scope| {
        scope.spawn(|| follow_control(run, control, &finished));
        let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            execute_stages(run, lock, &spec, control, &mut recorder)
        }));
        finished.store(true, Ordering::SeqCst);
        attempt
    });
    let result = attempt.unwrap_or_else(|payload| {
        let stage = run.status().ok().and_then(|s| s.stage).unwrap_or_default();
        Err(panic_to_error(&spec, &stage, payload.as_ref()))
    });
    let (state, reason) = match &result {
        Ok(WorkerOutcome::Done) => (RunState::Done, None),
        Ok(WorkerOutcome::Stopped { stage, step }) if control.time_limit.load(Ordering::SeqCst) => {
            (
                RunState::Queued,
                Some(format!(
                    "checkpointed at step {step} of stage '{stage}' ahead of the Slurm time limit; to be resubmitted"
                )),
            )
        }
        Ok(WorkerOutcome::Stopped { stage, step }) if control.release.load(Ordering::SeqCst) => (
            RunState::Paused,
            Some(format!(
                "paused at step {step} of stage '{stage}' with the device released (checkpoint written)"
            )),
        ),
        Ok(WorkerOutcome::Stopped { stage, step }) => (
            RunState::Cancelled,
            Some(format!(
                "stopped on request at step {step} of stage '{stage}' (checkpoint written); continue with: {}",
                if std::env::var_os(crate::daemon::UNDER_DAEMON).is_some() {
                    format!("scintigan retry {}", run.id())
                } else {
                    format!("scintigan run --resume {}", run.root().display())
                }
            )),
        ),
        // Out of disk: nothing is wrong with the run, and retrying it
        // would only fill the disk again. Paused, it waits for the user.
        Err(e) if out_of_space(e) => {
            let resume = if std::env::var_os(crate::daemon::UNDER_DAEMON).is_some() {
                format!("scintigan resume {}", run.id())
            } else {
                format!("scintigan run --resume {}", run.root().display())
            };
            let reason = match e {
                TrainError::Store(full @ StoreError::DiskFull { .. }) => {
                    format!("{full}: {resume}")
                }
                other => format!(
                    "disk full: {other}; free some space there, then continue the run: {resume}"
                ),
            };
            (RunState::Paused, Some(reason))
        }
        Err(e) => (RunState::Failed, Some(e.to_string())),
    };
    tracing::info!(%state, reason = reason.as_deref().unwrap_or(""), "worker finished");
    let _ = recorder.emit(Event::RunFinished {
        state: state.to_string(),
        reason: reason.clone(),
    });
    let _ = recorder.sync();
    status = run.status().unwrap_or(status);
    status.state = state;
    status.pid = None;
    status.exit_reason = reason;
    status.write(&run.status_path())?;
    result
}

/// Whether `e` is the disk filling up (a checkpoint refused for space, or
/// ENOSPC while writing events, status or a sample grid), whatever words
/// the writer used.
fn out_of_space(e: &TrainError) -> bool {
    use store::space;
    match e {
        TrainError::Store(e) => space::is_out_of_space(e),
        TrainError::Events { source, .. } => space::io_out_of_space(source),
        TrainError::Torch { message, .. } | TrainError::Setup { message, .. } => {
            space::says_out_of_space(message)
        }
        _ => false,
    }
}

/// Until `finished`: mirror `control.json` into `control` and keep the
/// heartbeat in `status.json` fresh.
fn follow_control(run: &RunDir, control: &Control, finished: &AtomicBool) {
    let path = run.control_path();
    let mut seen: Option<(Option<SystemTime>, u64)> = None;
    let mut beat = Instant::now();
    while !finished.load(Ordering::SeqCst) {
        // Each atomic write is a new file: its inode tells two writes apart
        // within one tick of the clock.
        let modified = std::fs::metadata(&path).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.modified().ok(), m.ino())
        });
        if modified != seen {
            seen = modified;
            match ControlRequest::read(&path) {
                Ok(req) => {
                    control.pause.store(req.pause, Ordering::SeqCst);
                    control
                        .release
                        .store(req.pause && req.release, Ordering::SeqCst);
                    if req.cancel || (req.pause && req.release) {
                        control.stop.store(true, Ordering::SeqCst);
                    }
                }
                // Not silence: the run goes on as last asked, and says so.
                Err(e) => {
                    let pause = control.pause.load(Ordering::SeqCst);
                    let message = format!(
                        "{e}; ignored, the last request stands ({})",
                        if pause { "paused" } else { "running" }
                    );
                    tracing::warn!("{message}");
                    control.notices.push(message);
                }
            }
        }
        if beat.elapsed() >= HEARTBEAT_EVERY {
            beat = Instant::now();
            let progress = control.progress.get();
            if let Err(e) = store::Status::touch_heartbeat(&run.status_path(), progress) {
                tracing::warn!("heartbeat: {e}");
            }
        }
        std::thread::sleep(CONTROL_POLL);
    }
}

fn execute_stages(
    run: &RunDir,
    lock: &store::lock::RunLock,
    spec: &RunSpec,
    control: &Control,
    recorder: &mut Recorder<'_>,
) -> Result<WorkerOutcome, TrainError> {
    let checkpoints = run.checkpoints();
    let mut status = run.status()?;
    // A stage whose final checkpoint exists is finished, even if the process
    // died before status.json said so.
    for stage in &spec.stage {
        if !status.completed_stages.contains(&stage.name)
            && checkpoints.stage_final(&stage.name).is_some()
        {
            status.completed_stages.push(stage.name.clone());
        }
    }
    let order = spec.execution_order();
    let current = order
        .iter()
        .map(|&i| &spec.stage[i])
        .find(|s| !status.completed_stages.contains(&s.name));
    let latest = checkpoints.latest()?;
    let resume = match (current, latest) {
        (Some(stage), Some((dir, state))) if state.stage == stage.name && !state.stage_complete => {
            Some((dir, state))
        }
        _ => None,
    };
    // Forget what happened after the point we continue from.
    let completed = status.completed_stages.clone();
    let (cur_name, cur_step) = (
        current.map(|s| s.name.clone()).unwrap_or_default(),
        resume.as_ref().map_or(0, |(_, s)| s.step),
    );
    let retained = recorder.retain(lock, |rec| match rec.event.position() {
        None => true,
        Some((stage, step)) => {
            completed.iter().any(|c| c == stage) || (stage == cur_name && step <= cur_step)
        }
    })?;
    let dropped = retained.dropped;
    if retained.moved > 0 {
        tracing::warn!(
            "{} line(s) of events.jsonl did not parse; kept verbatim in {}",
            retained.moved,
            run.root().join(crate::store::REJECTED_FILE).display()
        );
    }
    let resuming = resume.is_some() || !completed.is_empty() || dropped > 0;

    let first_device = current.map_or(crate::config::DeviceChoice::Auto, |s| s.train.device);
    let device = train::select_device(first_device).map_err(|message| TrainError::Setup {
        stage: cur_name.clone(),
        message,
    })?;
    recorder.emit(Event::RunStarted {
        name: spec.name.clone(),
        device: train::device_name(device),
        pid: std::process::id(),
    })?;
    if resuming {
        recorder.emit(Event::Resumed {
            stage: cur_name.clone(),
            step: cur_step,
            dropped_events: dropped,
        })?;
    }
    status.state = RunState::Running;
    status.pid = Some(std::process::id());
    status.device = Some(train::device_name(device));
    status.exit_reason = None;
    status.write(&run.status_path())?;

    let mut resume = resume;
    for &i in &order {
        let stage = &spec.stage[i];
        if status.completed_stages.contains(&stage.name) {
            continue;
        }
        let device =
            train::select_device(stage.train.device).map_err(|message| TrainError::Setup {
                stage: stage.name.clone(),
                message,
            })?;
        status.stage = Some(stage.name.clone());
        status.device = Some(train::device_name(device));
        status.write(&run.status_path())?;
        tracing::info!(stage = %stage.name, device = %train::device_name(device), "stage starting");
        let init = match resume {
            Some(_) => None,
            None => resolve_init(run, spec, stage)?,
        };
        let mut ctx = StageContext {
            run,
            spec: stage,
            device,
            recorder,
            stop: &control.stop,
            pause: &control.pause,
            notices: &control.notices,
            progress: &control.progress,
            resume: resume.take(),
            init,
        };
        match run_one_stage(&mut ctx, spec)? {
            StageOutcome::Finished { .. } => {
                control.progress.total.store(0, Ordering::Relaxed);
                status = run.status()?;
                status.completed_stages.push(stage.name.clone());
                status.write(&run.status_path())?;
            }
            StageOutcome::Stopped { step } => {
                return Ok(WorkerOutcome::Stopped {
                    stage: stage.name.clone(),
                    step,
                });
            }
        }
    }
    Ok(WorkerOutcome::Done)
}

fn run_one_stage(
    ctx: &mut StageContext<'_, '_>,
    run_spec: &RunSpec,
) -> Result<StageOutcome, TrainError> {
    if ctx.spec.kind == StageKind::Generate {
        let Some(InitFrom::Run(name)) = ctx.spec.init_from.clone() else {
            return Err(
                ctx.torch_err("a generate stage needs init_from = \"run:<GAN stage or run>\"")
            );
        };
        let (gan_run, gan) = resolve_stage(ctx.run, run_spec, &name, &ctx.spec.name)?;
        if gan.kind != StageKind::Gan {
            return Err(ctx.torch_err(format!(
                "init_from run:{name} is a {} stage, not a GAN",
                gan.kind
            )));
        }
        let weights = gan_run
            .checkpoints()
            .stage_final(&gan.name)
            .ok_or_else(|| {
                ctx.torch_err(format!("GAN stage '{}' has no final checkpoint", gan.name))
            })?
            .join(CheckpointDir::WEIGHTS);
        return generate::run_generate(ctx, &gan, &weights);
    }
    let mut data = crate::data::load_split(&ctx.spec.data)?;
    // A leaky split misleads a classifier's test accuracy; a GAN stage
    // never tests on it.
    if ctx.spec.kind == StageKind::Classifier {
        for note in std::mem::take(&mut data.notes) {
            ctx.recorder.emit(Event::warning(note))?;
        }
    }
    if let Some(source) = &ctx.spec.data.gan_samples {
        let name = source.strip_prefix("run:").unwrap_or(source);
        let (src_run, src) = resolve_stage(ctx.run, run_spec, name, &ctx.spec.name)?;
        if src.kind != StageKind::Generate {
            return Err(ctx.torch_err(format!(
                "gan_samples run:{name} is a {} stage, not a generate stage",
                src.kind
            )));
        }
        let folder = generate::generated_dir(&src_run, &src.name);
        let [h, w] = ctx.spec.data.image_size;
        let added = crate::data::add_to_train(&mut data, &folder, h, w, ctx.spec.data.fit)?;
        let parts: Vec<String> = data
            .train
            .classes
            .iter()
            .zip(&added)
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        ctx.recorder.emit(Event::info(format!(
            "added generated images to the training split ({}) from {}",
            parts.join(", "),
            folder.display()
        )))?;
    }
    // A classifier augments on the fly (data::loader); a GAN stage trains on
    // the augmented copies made here.
    let data = if ctx.spec.kind == StageKind::Classifier {
        data
    } else {
        crate::data::augment_train(data, &ctx.spec.data)
    };
    let init = match &ctx.init {
        Some(path) => Some((
            path.clone(),
            checkpoint::read(path).map_err(|m| ctx.torch_err(m))?,
        )),
        None => None,
    };
    let stage = ctx.spec.name.clone();
    let report =
        |fresh: Result<Vec<String>, String>, path: &PathBuf| -> Result<Event, TrainError> {
            let fresh = fresh.map_err(|m| TrainError::Torch {
                stage: stage.clone(),
                message: format!("init_from {}: {m}", path.display()),
            })?;
            let mut message = format!("initialised from {}", path.display());
            if !fresh.is_empty() {
                message.push_str(&format!(
                    "; re-initialised (shape differs): {}",
                    fresh.join(", ")
                ));
            }
            Ok(Event::info(message))
        };
    if ctx.spec.train.precision == Precision::Fp16 && !ctx.device.is_cuda() {
        ctx.recorder.emit(Event::warning(
            "train.precision = \"fp16\" on the CPU computes float16 in software \
             and is several times slower than fp32 here; bf16 or fp32 suit the CPU"
                .into(),
        ))?;
    }
    match ctx.spec.kind {
        StageKind::Gan => {
            let mut trainer = GanTrainer::new(ctx.spec, data, ctx.device)?;
            if let Some((path, tensors)) = &init {
                let event = report(trainer.load_init(tensors), path)?;
                ctx.recorder.emit(event)?;
            }
            train::run_stage(ctx, &mut trainer)
        }
        StageKind::Generate => unreachable!("handled above"),
        StageKind::Classifier => {
            let mut trainer = ClassifierTrainer::new(ctx.spec, data, ctx.device)?;
            if init.is_none() && ctx.resume.is_none() {
                let lines = trainer
                    .load_pretrained(ctx.spec)
                    .map_err(|m| ctx.torch_err(format!("model.weights: {m}")))?;
                for message in lines {
                    ctx.recorder.emit(Event::info(message))?;
                }
            }
            if let Some((path, tensors)) = &init {
                let event = report(trainer.load_init(tensors), path)?;
                ctx.recorder.emit(event)?;
            }
            train::run_stage(ctx, &mut trainer)
        }
    }
}

/// The first line of a panic's message, with tch's `Torch("...")` wrapping
/// taken off.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    let text = text.split_once("Torch(\"").map_or(text, |(_, rest)| rest);
    text.lines()
        .next()
        .unwrap_or(text)
        .split("\\n")
        .next()
        .unwrap_or(text)
        .trim()
        .to_string()
}

/// A failed run's reason for a panic raised while `stage` ran.
fn panic_to_error(spec: &RunSpec, stage: &str, payload: &(dyn std::any::Any + Send)) -> TrainError {
    let detail = panic_message(payload);
    tracing::error!(stage, %detail, "libtorch error");
    match spec.stage.iter().find(|s| s.name == stage) {
        Some(s) if detail.to_lowercase().contains("out of memory") => TrainError::OutOfMemory {
            stage: stage.to_string(),
            batch_size: s.train.batch_size,
            height: s.data.image_size[0],
            width: s.data.image_size[1],
            detail,
        },
        _ => TrainError::Torch {
            stage: stage.to_string(),
            message: format!("libtorch error: {detail}"),
        },
    }
}

/// A stage named `name`: of this run's pipeline, or the last stage of the
/// newest finished run called `name`; with the run directory holding it.
fn resolve_stage(
    run: &RunDir,
    spec: &RunSpec,
    name: &str,
    asking: &str,
) -> Result<(RunDir, StageSpec), TrainError> {
    if let Some(s) = spec.stage.iter().find(|s| s.name == name) {
        return Ok((run.clone(), s.clone()));
    }
    let runs_root = run.root().parent().unwrap_or(run.root());
    let other = store::latest_done_run(runs_root, name).ok_or_else(|| TrainError::Setup {
        stage: asking.to_string(),
        message: format!(
            "run:{name}: no stage of this pipeline and no finished run named '{name}' under {}",
            runs_root.display()
        ),
    })?;
    let other_spec = other.spec()?;
    let last = other_spec
        .execution_order()
        .last()
        .map(|&i| other_spec.stage[i].clone())
        .ok_or_else(|| TrainError::Setup {
            stage: asking.to_string(),
            message: format!("{}: run has no stages", other.root().display()),
        })?;
    Ok((other, last))
}

/// The weights file `init_from` points at.
fn resolve_init(
    run: &RunDir,
    spec: &RunSpec,
    stage: &StageSpec,
) -> Result<Option<PathBuf>, TrainError> {
    let err = |message: String| TrainError::Setup {
        stage: stage.name.clone(),
        message,
    };
    let Some(init) = &stage.init_from else {
        return Ok(None);
    };
    let dir = match init {
        InitFrom::Run(name) => {
            let (source_run, source) = resolve_stage(run, spec, name, &stage.name)?;
            source_run
                .checkpoints()
                .stage_final(&source.name)
                .ok_or_else(|| {
                    err(format!(
                        "init_from run:{name}: stage '{}' of {} has no final checkpoint yet",
                        source.name,
                        source_run.root().display()
                    ))
                })?
        }
        InitFrom::Path(path) if path.is_dir() => path.clone(),
        InitFrom::Path(path) if path.is_file() => return Ok(Some(path.clone())),
        InitFrom::Path(path) => {
            return Err(err(format!(
                "init_from {}: no such file or checkpoint folder",
                path.display()
            )));
        }
    };
    Ok(Some(dir.join(CheckpointDir::WEIGHTS)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_keep_the_first_line_of_torch_errors() {
        let payload: Box<dyn std::any::Any + Send> = Box::new(String::from(
            "called `Result::unwrap()` on an `Err` value: Torch(\"CUDA out of memory. Tried to allocate 2.00 GiB\\nException raised from malloc at ...\")",
        ));
        assert_eq!(
            panic_message(payload.as_ref()),
            "CUDA out of memory. Tried to allocate 2.00 GiB"
        );
        let payload: Box<dyn std::any::Any + Send> = Box::new("plain");
        assert_eq!(panic_message(payload.as_ref()), "plain");
    }

    #[test]
    fn out_of_memory_names_the_batch_and_image_size_to_lower() {
        let spec = crate::config::parse_config(
            "t.toml",
            "kind = \"gan\"\ndata = { image_size = [512, 256] }\ntrain = { batch_size = 8 }\n",
            std::path::Path::new("."),
            "t",
            &crate::config::KnownRuns::default(),
        )
        .unwrap();
        let payload: Box<dyn std::any::Any + Send> = Box::new(String::from(
            "Torch(\"CUDA out of memory. Tried to allocate\")",
        ));
        let err = panic_to_error(&spec, "t", payload.as_ref()).to_string();
        assert!(
            err.contains(
                "batch_size 8, image_size [512, 256]; lower train.batch_size or data.image_size"
            ),
            "{err}"
        );
    }
}
