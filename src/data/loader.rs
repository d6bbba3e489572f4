//! A prefetching batch loader: images decoded once (the cache), the
//! augmented copies drawn on the fly (never held), batches assembled on a
//! background thread with a few augmentation threads and queued ahead, so
//! a training step takes a ready batch instead of waiting for one, and
//! memory is the cache plus the queue whatever the augmentation factor.
//!
//! Augmentation here is the per-image form of [`super::augment::apply`]
//! (same output-to-input mapping, bilinear, black outside the frame; a test
//! checks they agree), plus Poisson noise drawn with the image's own seeded
//! stream, so a batch is a pure function of (seed, epoch, position).

use super::augment::{AugmentSpec, Transform, draw};
use crate::rng::SplitMix64;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
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
    /// The images and labels of `data` (`[N, 1, H, W]` float32), copied to
    /// host memory.
    pub fn from_dataset(data: &super::Dataset) -> Result<Cache, tch::TchError> {
        let size = data.images.size();
        let (height, width) = (size[2] as usize, size[3] as usize);
        let pixels = Vec::<f32>::try_from(
            data.images
                .to_device(tch::Device::Cpu)
                .to_kind(tch::Kind::Float)
                .flatten(0, -1),
        )?;
        let labels = Vec::<i64>::try_from(data.labels.to_device(tch::Device::Cpu))?;
        Ok(Cache {
            pixels,
            labels,
            height,
            width,
        })
    }
    fn image(&self, i: usize) -> &[f32] {
        let n = self.height * self.width;
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// One batch: `images [B, 1, H, W]` float32, `labels [B]` int64, on the CPU.
pub struct Batch {
    pub images: Tensor,
    pub labels: Tensor,
    /// The training items (positions in the epoch's item range) it holds.
    pub items: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct LoaderSpec {
    pub batch_size: usize,
    /// Augmentation threads.
    pub threads: usize,
    /// Batches queued ahead of the consumer.
    pub prefetch: usize,
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

/// What a stage trains on: the decoded images once, and the augmentation
/// that turns them into `len()` training items per epoch.
///
/// Item `j` of epoch `e` is image `j % n`: as it is for `j < n` (the
/// original), otherwise augmented with a transform drawn from
/// `(augment.seed, e, j)`. So each epoch sees every original once and
/// `factor - 1` fresh augmented copies of it, and an item is a pure
/// function of (seed, epoch, position): a resumed run rebuilds exactly the
/// batches the uninterrupted one would have seen.
#[derive(Debug, Clone)]
pub struct Source {
    pub cache: Arc<Cache>,
    /// `None` or `factor = 1`: the originals only.
    pub augment: Option<AugmentSpec>,
}

impl Source {
    /// Training items per epoch: originals times `augment.factor`.
    pub fn len(&self) -> usize {
        self.cache.len() * self.augment.as_ref().map_or(1, |a| a.factor.max(1))
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Item `j`'s pixels for `epoch`, written into `out` (`height * width`).
    fn item_into(&self, epoch: u64, j: usize, out: &mut [f32]) {
        let cache = &self.cache;
        let (h, w) = (cache.height, cache.width);
        let image = cache.image(j % cache.len());
        match &self.augment {
            Some(aug) if j >= cache.len() => {
                let stream = (epoch << 32) ^ j as u64;
                out.copy_from_slice(&augment_one(image, h, w, aug, stream));
            }
            _ => out.copy_from_slice(image),
        }
    }

    /// The batch of `items` (positions in `0..len()`) for `epoch`, its
    /// images augmented on up to `threads` threads.
    pub fn batch(&self, epoch: u64, items: &[usize], threads: usize) -> Batch {
        let (h, w) = (self.cache.height, self.cache.width);
        let n = h * w;
        let mut pixels = vec![0.0f32; items.len() * n];
        let per = items.len().div_ceil(threads.max(1)).max(1);
        if self.augment.is_none() || threads <= 1 {
            for (k, &j) in items.iter().enumerate() {
                self.item_into(epoch, j, &mut pixels[k * n..(k + 1) * n]);
            }
        } else {
            std::thread::scope(|s| {
                for (part, out) in items.chunks(per).zip(pixels.chunks_mut(per * n)) {
                    s.spawn(move || {
                        for (k, &j) in part.iter().enumerate() {
                            self.item_into(epoch, j, &mut out[k * n..(k + 1) * n]);
                        }
                    });
                }
            });
        }
        let count = self.cache.len();
        let labels: Vec<i64> = items
            .iter()
            .map(|&j| self.cache.labels[j % count])
            .collect();
        Batch {
            images: Tensor::from_slice(&pixels).view([items.len() as i64, 1, h as i64, w as i64]),
            labels: Tensor::from_slice(&labels),
            items: items.to_vec(),
        }
    }
}

/// Batches of one epoch, produced ahead on a background thread.
pub struct Loader {
    rx: Receiver<Batch>,
    producer: Option<JoinHandle<()>>,
    batches: usize,
}

impl Loader {
    /// Start producing `epoch`'s batches over `items` (positions in
    /// `0..source.len()`, in training order), `spec.batch_size` at a time
    /// (the last batch may be short).
    pub fn start(source: Source, spec: &LoaderSpec, epoch: u64, items: Vec<usize>) -> Loader {
        let batches = items.len().div_ceil(spec.batch_size.max(1));
        let (tx, rx) = sync_channel(spec.prefetch.max(1));
        let spec = spec.clone();
        let producer = std::thread::Builder::new()
            .name("loader".into())
            .spawn(move || {
                for chunk in items.chunks(spec.batch_size.max(1)) {
                    if tx.send(source.batch(epoch, chunk, spec.threads)).is_err() {
                        return; // the consumer stopped
                    }
                }
            })
            .ok();
        Loader {
            rx,
            producer,
            batches,
        }
    }

    /// A seeded shuffle of all of `source`'s items for `epoch`.
    pub fn epoch(source: Source, spec: &LoaderSpec, seed: u64, epoch: u64) -> Loader {
        let order = SplitMix64::derive(seed, epoch).permutation(source.len());
        Loader::start(source, spec, epoch, order)
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

    fn numbered_source(n: usize, h: usize, w: usize, augment: Option<AugmentSpec>) -> Source {
        Source {
            cache: Arc::new(Cache {
                pixels: (0..n * h * w)
                    .map(|i| 0.2 + (i / (h * w)) as f32 / 20.0 + (i % w) as f32 / 100.0)
                    .collect(),
                labels: (0..n as i64).collect(),
                height: h,
                width: w,
            }),
            augment,
        }
    }

    fn labels(batches: impl Iterator<Item = Batch>) -> Vec<i64> {
        batches
            .flat_map(|b| Vec::<i64>::try_from(&b.labels).unwrap())
            .collect()
    }

    const SPEC: LoaderSpec = LoaderSpec {
        batch_size: 4,
        threads: 2,
        prefetch: 2,
    };

    #[test]
    fn an_epoch_visits_every_image_once_and_is_seeded() {
        let (h, w) = (8, 4);
        let source = numbered_source(10, h, w, None);
        let loader = Loader::epoch(source.clone(), &SPEC, 5, 0);
        assert_eq!(loader.len(), 3);
        let first: Vec<Batch> = loader.collect();
        assert!(
            first
                .iter()
                .all(|b| b.images.size()[1..] == [1, h as i64, w as i64])
        );
        let order = labels(first.into_iter());
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        let again = labels(Loader::epoch(source.clone(), &SPEC, 5, 0));
        assert_eq!(order, again, "same seed and epoch, same order");
        let next = labels(Loader::epoch(source, &SPEC, 5, 1));
        assert_ne!(order, next, "a new order each epoch");
    }

    #[test]
    fn augmented_copies_are_drawn_per_epoch_and_never_held() {
        let (h, w, n) = (12, 6, 5);
        let aug = AugmentSpec {
            factor: 3,
            rotation: 10.0,
            translation: 1.0,
            mirror: true,
            poisson_counts: 50.0,
            seed: 3,
        };
        let source = numbered_source(n, h, w, Some(aug));
        assert_eq!(source.len(), 3 * n);
        assert_eq!(
            source.cache.pixels.len(),
            n * h * w,
            "only the originals are held"
        );
        // Every original appears `factor` times in an epoch.
        let mut seen = labels(Loader::epoch(source.clone(), &SPEC, 1, 2));
        seen.sort();
        let want: Vec<i64> = (0..n as i64).flat_map(|l| [l, l, l]).collect();
        assert_eq!(seen, want);
        // Items 0..n are the originals untouched; the copies are not.
        let all: Vec<usize> = (0..3 * n).collect();
        let batch = source.batch(2, &all, 1);
        let originals =
            Tensor::from_slice(&source.cache.pixels).view([n as i64, 1, h as i64, w as i64]);
        assert!(batch.images.narrow(0, 0, n as i64).equal(&originals));
        for copy in 1..3 {
            let augmented = batch.images.narrow(0, (copy * n) as i64, n as i64);
            assert!(!augmented.equal(&originals), "copy {copy} is not augmented");
        }
        // An item is a function of (seed, epoch, position): the same with
        // any thread count and from the prefetching loader; new next epoch.
        assert!(source.batch(2, &all, 3).images.equal(&batch.images));
        let order = SplitMix64::derive(1, 2).permutation(source.len());
        let prefetched: Vec<Batch> =
            Loader::start(source.clone(), &SPEC, 2, order.clone()).collect();
        for (b, items) in prefetched.iter().zip(order.chunks(SPEC.batch_size)) {
            assert_eq!(b.items, items);
            assert!(b.images.equal(&source.batch(2, items, 1).images));
        }
        let next = source.batch(3, &all, 2);
        assert!(next.images.narrow(0, 0, n as i64).equal(&originals));
        assert!(
            !next.images.equal(&batch.images),
            "the same copies in two epochs"
        );
        // Dropping a loader mid-epoch ends its producer.
        let mut early = Loader::start(source, &SPEC, 4, order);
        assert!(early.next().is_some());
        drop(early);
    }
}
