//! A prefetching batch loader: images decoded once (the cache), a seeded
//! order per epoch, each image augmented on a pool of threads, batches
//! assembled into tensors on a background thread and queued ahead, so a
//! training step takes a ready batch instead of waiting for one.
//!
//! Augmentation here is the per-image form of [`super::augment::apply`]
//! (same output-to-input mapping, bilinear, black outside the frame; a test
//! checks they agree), plus Poisson noise drawn with the image's own seeded
//! stream, so a batch is a pure function of (seed, epoch, position).

use super::augment::{AugmentSpec, Transform, draw};
use crate::rng::SplitMix64;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use tch::Tensor;

/// Decoded images held once for every epoch.
#[derive(Debug)]
pub struct Cache {
    /// `n * height * width` values in [0, 1], image after image.
    pub pixels: Vec<f32>,
    pub labels: Vec<i64>,
    pub height: usize,
    pub width: usize,
}

impl Cache {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    fn image(&self, i: usize) -> &[f32] {
        let n = self.height * self.width;
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// One batch: `images [B, 1, H, W]` float32, `labels [B]` int64.
pub struct Batch {
    pub images: Tensor,
    pub labels: Tensor,
}

#[derive(Debug, Clone)]
pub struct LoaderSpec {
    pub batch_size: usize,
    /// `None`: the images as they are.
    pub augment: Option<AugmentSpec>,
    /// Augmentation threads.
    pub threads: usize,
    /// Batches queued ahead of the consumer.
    pub prefetch: usize,
    pub seed: u64,
}

/// Rotate, shift and mirror one `h` x `w` image as [`super::augment::apply`]
/// does a batch: for each output pixel, the input point it comes from, read
/// bilinearly, 0 outside.
pub fn transform_image(src: &[f32], h: usize, w: usize, t: &Transform) -> Vec<f32> {
    let (s, c) = t.degrees.to_radians().sin_cos();
    let flip = if t.mirror { -1.0 } else { 1.0 };
    let (hf, wf) = (h as f64, w as f64);
    // The affine map of `apply` in normalised coordinates (align_corners =
    // false): x_in = a*x + b*y + tx, y_in = d*x + e*y + ty.
    let (a, b, tx) = (c * flip, -s * hf / wf, -2.0 * t.dx / wf);
    let (d, e, ty) = (s * wf / hf * flip, c, -2.0 * t.dy / hf);
    let mut out = vec![0.0f32; h * w];
    let sample = |x: isize, y: isize| -> f64 {
        if x < 0 || y < 0 || x >= w as isize || y >= h as isize {
            0.0
        } else {
            f64::from(src[y as usize * w + x as usize])
        }
    };
    for oy in 0..h {
        let yn = (2.0 * oy as f64 + 1.0) / hf - 1.0;
        for ox in 0..w {
            let xn = (2.0 * ox as f64 + 1.0) / wf - 1.0;
            let xi = a * xn + b * yn + tx;
            let yi = d * xn + e * yn + ty;
            // Back to pixel coordinates.
            let px = ((xi + 1.0) * wf - 1.0) / 2.0;
            let py = ((yi + 1.0) * hf - 1.0) / 2.0;
            let (x0, y0) = (px.floor(), py.floor());
            let (fx, fy) = (px - x0, py - y0);
            let (x0, y0) = (x0 as isize, y0 as isize);
            let v = sample(x0, y0) * (1.0 - fx) * (1.0 - fy)
                + sample(x0 + 1, y0) * fx * (1.0 - fy)
                + sample(x0, y0 + 1) * (1.0 - fx) * fy
                + sample(x0 + 1, y0 + 1) * fx * fy;
            out[oy * w + ox] = v as f32;
        }
    }
    out
}

/// Augment one image: a transform drawn from `spec` with the image's own
/// stream, then Poisson noise if configured.
fn augment_one(src: &[f32], h: usize, w: usize, spec: &AugmentSpec, stream: u64) -> Vec<f32> {
    let t = draw(spec, 1, stream)[0];
    let mut img = transform_image(src, h, w, &t);
    if spec.poisson_counts > 0.0 {
        let mut rng = SplitMix64::derive(spec.seed ^ 0x9015, stream);
        for p in &mut img {
            let lambda = f64::from(p.clamp(0.0, 1.0)) * spec.poisson_counts;
            *p = (rng.poisson(lambda) / spec.poisson_counts).clamp(0.0, 1.0) as f32;
        }
    }
    img
}

/// Batches of one epoch, produced ahead on a background thread.
pub struct Loader {
    rx: Receiver<Batch>,
    producer: Option<JoinHandle<()>>,
    batches: usize,
}

impl Loader {
    /// Start producing epoch `epoch`'s batches (a seeded shuffle of the
    /// cache; the last batch may be short).
    pub fn epoch(cache: Arc<Cache>, spec: &LoaderSpec, epoch: u64) -> Loader {
        let order = SplitMix64::derive(spec.seed, 0xE90C_0000 + epoch).permutation(cache.len());
        let batches = order.len().div_ceil(spec.batch_size.max(1));
        let (tx, rx) = sync_channel(spec.prefetch.max(1));
        let spec = spec.clone();
        let producer = std::thread::Builder::new()
            .name("loader".into())
            .spawn(move || produce(&cache, &spec, epoch, &order, tx))
            .ok();
        Loader {
            rx,
            producer,
            batches,
        }
    }

    /// Batches in this epoch.
    pub fn len(&self) -> usize {
        self.batches
    }
    pub fn is_empty(&self) -> bool {
        self.batches == 0
    }
}

impl Iterator for Loader {
    type Item = Batch;
    fn next(&mut self) -> Option<Batch> {
        self.rx.recv().ok()
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        // Unblock the producer (its sends fail once rx is gone), then join.
        let (_, dead) = sync_channel(1);
        drop(std::mem::replace(&mut self.rx, dead));
        if let Some(h) = self.producer.take() {
            let _ = h.join();
        }
    }
}

fn produce(cache: &Cache, spec: &LoaderSpec, epoch: u64, order: &[usize], tx: SyncSender<Batch>) {
    let (h, w) = (cache.height, cache.width);
    let threads = spec.threads.max(1);
    for (b, idx) in order.chunks(spec.batch_size.max(1)).enumerate() {
        let mut pixels = vec![0.0f32; idx.len() * h * w];
        match &spec.augment {
            None => {
                for (k, &i) in idx.iter().enumerate() {
                    pixels[k * h * w..(k + 1) * h * w].copy_from_slice(cache.image(i));
                }
            }
            Some(aug) => {
                let per = idx.len().div_ceil(threads);
                std::thread::scope(|s| {
                    for (part, out) in idx.chunks(per).zip(pixels.chunks_mut(per * h * w)) {
                        s.spawn(move || {
                            for (k, &i) in part.iter().enumerate() {
                                // The stream names the epoch and the slot.
                                let stream = (epoch << 32)
                                    ^ (b * spec.batch_size) as u64
                                    ^ ((i as u64) << 20);
                                let img = augment_one(cache.image(i), h, w, aug, stream);
                                out[k * h * w..(k + 1) * h * w].copy_from_slice(&img);
                            }
                        });
                    }
                });
            }
        }
        let labels: Vec<i64> = idx.iter().map(|&i| cache.labels[i]).collect();
        let batch = Batch {
            images: Tensor::from_slice(&pixels).view([idx.len() as i64, 1, h as i64, w as i64]),
            labels: Tensor::from_slice(&labels),
        };
        if tx.send(batch).is_err() {
            return; // the consumer stopped
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::augment::apply;
    use super::*;

    fn ramp_image(h: usize, w: usize) -> Vec<f32> {
        (0..h * w)
            .map(|i| ((i / w) as f32 * 0.7 + (i % w) as f32 * 1.3) / (h + w) as f32)
            .collect()
    }

    #[test]
    fn per_image_transform_matches_the_batched_grid_sampler() {
        let (h, w) = (24, 12);
        let src = ramp_image(h, w);
        let t = Transform {
            degrees: 7.0,
            dx: 1.5,
            dy: -2.0,
            mirror: true,
        };
        let ours = transform_image(&src, h, w, &t);
        let images = Tensor::from_slice(&src).view([1, 1, h as i64, w as i64]);
        let theirs = Vec::<f32>::try_from(apply(&images, &[t]).flatten(0, -1)).unwrap();
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-5, "worst {worst}");
    }

    #[test]
    fn an_epoch_visits_every_image_once_and_is_seeded() {
        let (h, w) = (8, 4);
        let n = 10;
        let cache = Arc::new(Cache {
            pixels: (0..n * h * w)
                .map(|i| (i / (h * w)) as f32 / 10.0)
                .collect(),
            labels: (0..n as i64).collect(),
            height: h,
            width: w,
        });
        let spec = LoaderSpec {
            batch_size: 4,
            augment: None,
            threads: 2,
            prefetch: 2,
            seed: 5,
        };
        let loader = Loader::epoch(cache.clone(), &spec, 0);
        assert_eq!(loader.len(), 3);
        let labels: Vec<i64> = loader
            .flat_map(|b| {
                assert_eq!(b.images.size()[1..], [1, h as i64, w as i64]);
                Vec::<i64>::try_from(&b.labels).unwrap()
            })
            .collect();
        let mut sorted = labels.clone();
        sorted.sort();
        assert_eq!(sorted, (0..n as i64).collect::<Vec<_>>());
        let again: Vec<i64> = Loader::epoch(cache.clone(), &spec, 0)
            .flat_map(|b| Vec::<i64>::try_from(&b.labels).unwrap())
            .collect();
        assert_eq!(labels, again, "same seed and epoch, same order");
        let next: Vec<i64> = Loader::epoch(cache.clone(), &spec, 1)
            .flat_map(|b| Vec::<i64>::try_from(&b.labels).unwrap())
            .collect();
        assert_ne!(labels, next, "a new order each epoch");
        // Augmented batches are reproducible too, and differ from the cache.
        let aug = LoaderSpec {
            augment: Some(AugmentSpec {
                factor: 1,
                rotation: 10.0,
                translation: 1.0,
                mirror: true,
                poisson_counts: 50.0,
                seed: 3,
            }),
            ..spec
        };
        let a: Vec<Batch> = Loader::epoch(cache.clone(), &aug, 2).collect();
        let b: Vec<Batch> = Loader::epoch(cache.clone(), &aug, 2).collect();
        for (x, y) in a.iter().zip(&b) {
            assert!(x.images.equal(&y.images));
        }
        // Dropping a loader mid-epoch ends its producer.
        let mut early = Loader::epoch(cache, &aug, 3);
        assert!(early.next().is_some());
        drop(early);
    }
}
