//! The epoch/step loop every stage shares: seeded data order, resume from a
//! checkpoint mid-epoch, periodic step events, epoch-end work, checkpoints
//! (every N epochs, on a timer, and on a stop request).
//!
//! Determinism: the data order of epoch E is a function of (seed, E) and the
//! torch RNG is re-seeded from (seed, step) before every step, so a run
//! resumed from the checkpoint at step S takes exactly the steps S+1, S+2...
//! that the uninterrupted run would have taken.

use super::{StageContext, TrainError, checkpoint};
use crate::rng::SplitMix64;
use crate::store::{CheckpointDir, CheckpointState, Event, unix_now};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tch::Tensor;

/// How many checkpoints to keep besides each stage's final one.
const KEEP_CHECKPOINTS: usize = 3;

/// One stage's model(s), optimizer(s) and data, driven by [`run_stage`].
pub trait StageTrainer {
    fn classes(&self) -> Vec<String>;
    fn train_len(&self) -> usize;
    fn test_len(&self) -> usize;
    /// Called before the first step of each epoch (1-based), resumed ones
    /// included, with the training items the epoch's remaining steps will
    /// ask for, in order, `batch_size` a step (so batches can be made ahead).
    fn start_epoch(&mut self, _epoch: u64, _upcoming: &[i64], _batch_size: usize) {}
    /// One optimizer step on the training items at `indices` (positions in
    /// `0..train_len()`).
    fn train_step(&mut self, indices: &[i64]) -> Result<(), TrainError>;
    /// Metrics averaged since the last call, as a step event; fails with
    /// [`TrainError::NonFinite`] when a loss is NaN or infinite.
    fn log_event(
        &mut self,
        epoch: u64,
        step: u64,
        images_per_sec: f64,
    ) -> Result<Event, TrainError>;
    /// Fails when a loss since the last log is not finite.
    fn check_finite(&self, step: u64) -> Result<(), TrainError>;
    /// Work at the end of an epoch (samples, evaluation), as events.
    fn end_of_epoch(
        &mut self,
        ctx: &StageContext<'_, '_>,
        epoch: u64,
        step: u64,
    ) -> Result<Vec<Event>, TrainError>;
    /// Everything a resume needs, as named CPU tensors.
    fn checkpoint_tensors(&self) -> Vec<(String, Tensor)>;
    /// Load what [`checkpoint_tensors`](Self::checkpoint_tensors) wrote;
    /// returns warnings about state the checkpoint lacked.
    fn restore(&mut self, tensors: &HashMap<String, Tensor>) -> Result<Vec<String>, String>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageOutcome {
    Finished {
        step: u64,
    },
    /// A stop was requested; a checkpoint at `step` was written.
    Stopped {
        step: u64,
    },
}

/// Torch seed for a step: distinct per (seed, step), never negative.
fn step_seed(seed: u64, step: u64) -> i64 {
    (SplitMix64::derive(seed, step).next_u64() >> 1) as i64
}

pub fn run_stage(
    ctx: &mut StageContext<'_, '_>,
    trainer: &mut dyn StageTrainer,
) -> Result<StageOutcome, TrainError> {
    let spec = ctx.spec;
    let t = &spec.train;
    let n = trainer.train_len();
    if n == 0 {
        return Err(TrainError::Setup {
            stage: spec.name.clone(),
            message: "the training split is empty; add images or lower data.test_fraction".into(),
        });
    }
    let batch = t.batch_size.clamp(1, n);
    let steps_per_epoch = n.div_ceil(batch) as u64;
    let epochs = t.epochs as u64;

    let (mut step, mut first_epoch, mut skip) = (0u64, 1u64, 0u64);
    if let Some((dir, state)) = &ctx.resume {
        let tensors = checkpoint::read(&dir.join(crate::store::CheckpointDir::WEIGHTS))
            .map_err(|m| ctx.torch_err(m))?;
        let warnings = trainer
            .restore(&tensors)
            .map_err(|m| ctx.torch_err(format!("{}: {m}", dir.display())))?;
        for w in warnings {
            ctx.recorder
                .emit(Event::warning(format!("{}: {w}", dir.display())))?;
        }
        step = state.step;
        if state.step_in_epoch >= steps_per_epoch {
            first_epoch = state.epoch + 1;
        } else {
            (first_epoch, skip) = (state.epoch, state.step_in_epoch);
        }
    }
    ctx.recorder.emit(Event::StageStarted {
        stage: spec.name.clone(),
        kind: spec.kind.to_string(),
        arch: spec.model.arch.clone(),
        epochs,
        steps_per_epoch,
        classes: trainer.classes(),
        train_images: n as u64,
        test_images: trainer.test_len() as u64,
    })?;

    ctx.progress
        .total
        .store(epochs * steps_per_epoch, Ordering::Relaxed);
    ctx.progress.set(first_epoch, step);
    let mut last_checkpoint = Instant::now();
    let mut window = (Instant::now(), 0usize);
    let timer = std::time::Duration::from_secs_f64(t.checkpoint_minutes * 60.0);
    for epoch in first_epoch..=epochs {
        let order: Vec<i64> = SplitMix64::derive(t.seed, epoch)
            .permutation(n)
            .into_iter()
            .map(|i| i as i64)
            .collect();
        let first = if epoch == first_epoch { skip } else { 0 };
        let upcoming = order.get(first as usize * batch..).unwrap_or_default();
        trainer.start_epoch(epoch, upcoming, batch);
        for (k, chunk) in order.chunks(batch).enumerate() {
            let k = k as u64;
            if epoch == first_epoch && k < skip {
                continue;
            }
            for message in ctx.notices.take() {
                ctx.recorder.emit(Event::warning(message))?;
            }
            if ctx.pause.load(Ordering::SeqCst) && !ctx.stop.load(Ordering::SeqCst) {
                hold(ctx, step)?;
            }
            if ctx.stop.load(Ordering::SeqCst) {
                save(ctx, trainer, epoch, step, k, false)?;
                return Ok(StageOutcome::Stopped { step });
            }
            tch::manual_seed(step_seed(t.seed, step + 1));
            trainer.train_step(chunk)?;
            step += 1;
            ctx.progress.set(epoch, step);
            window.1 += chunk.len();
            if step % t.log_every as u64 == 0 {
                let rate = window.1 as f64 / window.0.elapsed().as_secs_f64().max(1e-9);
                let event = trainer.log_event(epoch, step, rate)?;
                ctx.recorder.emit(event)?;
                window = (Instant::now(), 0);
            }
            if t.checkpoint_minutes > 0.0
                && last_checkpoint.elapsed() >= timer
                && k + 1 < steps_per_epoch
            {
                save(ctx, trainer, epoch, step, k + 1, false)?;
                last_checkpoint = Instant::now();
            }
        }
        for event in trainer.end_of_epoch(ctx, epoch, step)? {
            ctx.recorder.emit(event)?;
        }
        if epoch % t.checkpoint_every as u64 == 0 || epoch == epochs {
            save(ctx, trainer, epoch, step, steps_per_epoch, epoch == epochs)?;
            last_checkpoint = Instant::now();
        }
    }
    ctx.recorder.emit(Event::StageFinished {
        stage: spec.name.clone(),
        step,
    })?;
    Ok(StageOutcome::Finished { step })
}

/// Wait at a step boundary while a pause is requested, recording the pause
/// in events and `status.json`.
fn hold(ctx: &mut StageContext<'_, '_>, step: u64) -> Result<(), TrainError> {
    let stage = ctx.spec.name.clone();
    ctx.recorder.emit(Event::Paused {
        stage: stage.clone(),
        step,
    })?;
    ctx.recorder.sync()?;
    set_state(ctx, crate::store::RunState::Paused)?;
    tracing::info!(stage, step, "paused");
    while ctx.pause.load(Ordering::SeqCst) && !ctx.stop.load(Ordering::SeqCst) {
        // A damaged control.json while paused is reported now, not after.
        for message in ctx.notices.take() {
            ctx.recorder.emit(Event::warning(message))?;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    set_state(ctx, crate::store::RunState::Running)?;
    if !ctx.stop.load(Ordering::SeqCst) {
        tracing::info!(stage, step, "continued");
        ctx.recorder.emit(Event::Continued { stage, step })?;
    }
    Ok(())
}

fn set_state(ctx: &StageContext<'_, '_>, state: crate::store::RunState) -> Result<(), TrainError> {
    let mut status = ctx.run.status()?;
    status.state = state;
    status.write(&ctx.run.status_path())?;
    Ok(())
}

fn save(
    ctx: &mut StageContext<'_, '_>,
    trainer: &dyn StageTrainer,
    epoch: u64,
    step: u64,
    step_in_epoch: u64,
    stage_complete: bool,
) -> Result<(), TrainError> {
    trainer.check_finite(step)?;
    let state = CheckpointState {
        stage: ctx.spec.name.clone(),
        epoch,
        step,
        step_in_epoch,
        stage_complete,
        written_at: unix_now(),
    };
    let tensors = trainer.checkpoint_tensors();
    let checkpoints: CheckpointDir = ctx.run.checkpoints();
    let bytes = checkpoint::payload_bytes(&tensors);
    let dir = checkpoints.write(&state, bytes, |path| checkpoint::write(&tensors, path))?;
    checkpoints.prune(KEEP_CHECKPOINTS)?;
    let rel = dir
        .strip_prefix(ctx.run.root())
        .unwrap_or(&dir)
        .display()
        .to_string();
    ctx.recorder.emit(Event::Checkpoint {
        stage: ctx.spec.name.clone(),
        epoch,
        step,
        path: rel,
    })?;
    ctx.recorder.sync()?;
    let mut status = ctx.run.status()?;
    (status.epoch, status.step) = (epoch, step);
    status.write(&ctx.run.status_path())?;
    Ok(())
}
