//! The generate stage: draw images per class from a trained GAN to balance
//! the training classes (up to the largest class, or a fixed count per
//! class), saved as 16-bit PNGs under `generated/<stage>/<class>/` with a
//! `manifest.csv`. Classifier stages add them to their training split with
//! `data.gan_samples`; the test split never sees them.

use super::gan::GanTrainer;
use super::{StageContext, StageOutcome, TrainError, checkpoint};
use crate::config::StageSpec;
use crate::store::{Event, RunDir, write_atomic};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Where a generate stage of `run` writes its images.
pub fn generated_dir(run: &RunDir, stage: &str) -> PathBuf {
    run.root().join("generated").join(stage)
}

/// Images to draw per class: `per_class` each, or (0) enough to bring every
/// class up to the largest one.
pub fn targets(counts: &[usize], per_class: usize) -> Vec<usize> {
    let max = counts.iter().copied().max().unwrap_or(0);
    counts
        .iter()
        .map(|&c| if per_class > 0 { per_class } else { max - c })
        .collect()
}

/// Run a generate stage from the GAN `gan` (its stage spec) whose final
/// weights are `weights`.
pub fn run_generate(
    ctx: &mut StageContext<'_, '_>,
    gan: &StageSpec,
    weights: &Path,
) -> Result<StageOutcome, TrainError> {
    let stage = ctx.spec.name.clone();
    let err = |message: String| TrainError::Setup {
        stage: stage.clone(),
        message,
    };
    let data = crate::data::load(&gan.data)?;
    let counts = data.train.class_counts();
    let classes = data.train.classes.clone();
    let [h, w] = gan.data.image_size;
    let mut gan_trainer = GanTrainer::new(gan, data, ctx.device)?;
    let tensors = checkpoint::read(weights).map_err(&err)?;
    gan_trainer
        .load_generator(&tensors)
        .map_err(|m| err(format!("{}: {m}", weights.display())))?;
    let targets = targets(&counts, ctx.spec.train.generate_per_class);

    let out = generated_dir(ctx.run, &stage);
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| err(format!("{}: {e}", out.display())))?;
    }
    tch::manual_seed((ctx.spec.train.seed >> 1) as i64);
    let mut manifest = String::from("file,class,gan_weights\n");
    // Per class, the first images written (in [0, 1]), to score below.
    let mut kept: Vec<Option<Tensor>> = classes.iter().map(|_| None).collect();
    for (c, (class, &n)) in classes.iter().zip(&targets).enumerate() {
        if n == 0 {
            continue;
        }
        let dir = out.join(class);
        std::fs::create_dir_all(&dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
        let mut made = 0;
        while made < n {
            let b = (n - made).min(16) as i64;
            let images = gan_trainer.draw(c as i64, b); // in [0, 1]
            kept[c] = match kept[c].take() {
                None => Some(images.shallow_clone()),
                Some(k) if k.size()[0] < SCORED_PER_CLASS => {
                    let both = Tensor::cat(&[k, images.shallow_clone()], 0);
                    let n = both.size()[0].min(SCORED_PER_CLASS);
                    Some(both.narrow(0, 0, n))
                }
                full => full,
            };
            let images = (images * 65535.0)
                .clamp(0.0, 65535.0)
                .round()
                .to_device(Device::Cpu);
            for i in 0..b {
                made += 1;
                let name = format!("{class}-gen-{made:05}.png");
                let pixels: Vec<f32> =
                    Vec::<f32>::try_from(images.get(i).flatten(0, -1).to_kind(Kind::Float))
                        .map_err(|e| err(e.to_string()))?;
                let buf: Vec<u16> = pixels.iter().map(|&p| p as u16).collect();
                let img = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_raw(
                    w as u32, h as u32, buf,
                )
                .ok_or_else(|| err("generated image has the wrong size".into()))?;
                crate::store::save_png_batched(&dir.join(&name), img)
                    .map_err(|e| err(format!("{}: {e}", dir.join(&name).display())))?;
                manifest.push_str(&format!("{class}/{name},{class},{}\n", weights.display()));
            }
        }
    }
    std::fs::create_dir_all(&out).map_err(|e| err(format!("{}: {e}", out.display())))?;
    // The images on disk before the manifest that names them.
    crate::store::sync_filesystem(&out).map_err(|e| err(format!("{}: {e}", out.display())))?;
    write_atomic(&out.join("manifest.csv"), manifest.as_bytes()).map_err(|e| err(e.to_string()))?;
    let summary: Vec<String> = classes
        .iter()
        .zip(&targets)
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    ctx.recorder.emit(Event::info(format!(
        "generated {} images ({}) into {}",
        targets.iter().sum::<usize>(),
        summary.join(", "),
        out.strip_prefix(ctx.run.root()).unwrap_or(&out).display()
    )))?;
    score_written(ctx, &mut gan_trainer, &classes, &targets, &kept, &out)?;
    ctx.recorder.emit(Event::StageFinished { stage, step: 0 })?;
    Ok(StageOutcome::Finished { step: 0 })
}

/// At most this many written images of a class are scored (the first
/// ones; diversity compares all their pairs).
const SCORED_PER_CLASS: i64 = 128;

/// Fresh images per class that score the generator itself, beside the
/// written ones: a few dozen written images are a noisy sample of it.
const GENERATOR_DRAWS: i64 = 128;

/// Score what was written, per class that got images, with the GAN stage's
/// protocol (SSIM against the class's training images, diversity, the
/// real-vs-real ceiling): one info line, a warning per collapsed class, and
/// `quality.csv` beside the images. These are the images the classifier
/// will train on, so this is the score that matters for balancing; the
/// generator's own score on [`GENERATOR_DRAWS`] fresh images per class
/// goes beside it, less noisy than a few dozen written ones.
fn score_written(
    ctx: &mut StageContext<'_, '_>,
    gan: &mut GanTrainer,
    classes: &[String],
    targets: &[usize],
    kept: &[Option<Tensor>],
    out: &Path,
) -> Result<(), TrainError> {
    let stage = ctx.spec.name.clone();
    let q = gan.quality_of(kept);
    // Fresh images from a seed of their own, after the written ones, so
    // these do not change what is written.
    tch::manual_seed((ctx.spec.train.seed >> 1) as i64 ^ 0x6E5);
    let draws: Vec<Option<Tensor>> = (0..kept.len())
        .map(|c| {
            kept[c]
                .as_ref()
                .map(|_| gan.draw(c as i64, GENERATOR_DRAWS))
        })
        .collect();
    let g = gan.quality_of(&draws);
    let mut csv = String::from(
        "class,written,scored,ssim,diversity,real,generator_ssim,generator_diversity\n",
    );
    let mut parts = Vec::new();
    for (c, class) in classes.iter().enumerate() {
        let Some(images) = &kept[c] else {
            continue;
        };
        let (ssim, diversity, real) = (q.ssim[c], q.diversity[c], q.real[c]);
        let (g_ssim, g_diversity) = (g.ssim[c], g.diversity[c]);
        csv.push_str(&format!(
            "{class},{},{},{ssim:.6},{diversity:.6},{real:.6},{g_ssim:.6},{g_diversity:.6}\n",
            targets[c],
            images.size()[0]
        ));
        parts.push(format!(
            "{class} SSIM {ssim:.3} ({:.2} of real {real:.3}), diversity {diversity:.3} (real {:+.3}); \
             the generator on {GENERATOR_DRAWS} fresh draws {:.2} of real, {:+.3}",
            ssim / real,
            diversity - real,
            g_ssim / real,
            g_diversity - real
        ));
        if let Some(warning) = super::gan::collapse_warning(
            &format!("{stage}: class {class} (the written images)"),
            diversity,
            real,
        ) {
            ctx.recorder.emit(warning)?;
        }
    }
    if parts.is_empty() {
        return Ok(());
    }
    // The images and their manifest are written: a score that cannot be
    // saved is a warning, not a failed stage.
    let path = out.join("quality.csv");
    if let Err(e) = write_atomic(&path, csv.as_bytes()) {
        ctx.recorder.emit(Event::warning(format!(
            "{stage}: cannot write {}: {e}",
            path.display()
        )))?;
    }
    ctx.recorder.emit(Event::info(format!(
        "written images against the training images: {}",
        parts.join("; ")
    )))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::targets;

    #[test]
    fn balancing_fills_every_class_up_to_the_largest() {
        // The paper's training split: 130 healthy, 101 metastasis, 43 benign.
        assert_eq!(targets(&[130, 101, 43], 0), vec![0, 29, 87]);
        assert_eq!(targets(&[130, 101, 43], 10), vec![10, 10, 10]);
    }
}
