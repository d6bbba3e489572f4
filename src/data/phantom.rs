//! Seeded synthetic scans that stand in for private data: whole-body bone
//! scans (anterior view; healthy, metastasis, benign) and chest X-rays (the
//! COVID-19 Radiography Database's four classes).
//!
//! Each image is a pure function of `(seed, class, index)`. Shapes are drawn
//! in normalised coordinates (u across, v down, both in [0, 1]) so any image
//! size works, tall whole-body frames included. Bone scans get Poisson
//! counting noise like a gamma camera's.

pub mod bone;
pub mod write;

use super::prep::{Plane, Window, normalise};
use crate::rng::SplitMix64;

/// A grayscale image, row-major, values in [0, 1] after [`Canvas::finish`].
#[derive(Debug, Clone)]
pub struct Canvas {
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<f32>,
}

impl Canvas {
    pub fn new(height: usize, width: usize) -> Self {
        Self {
            height,
            width,
            pixels: vec![0.0; height * width],
        }
    }

    /// Add `value` inside an ellipse centred at (u, v) with radii (ru, rv),
    /// with a one-pixel soft edge.
    pub fn ellipse(&mut self, u: f64, v: f64, ru: f64, rv: f64, value: f64) {
        let (w, h) = (self.width as f64, self.height as f64);
        let (cx, cy, rx, ry) = (u * w, v * h, (ru * w).max(0.5), (rv * h).max(0.5));
        let (x0, x1) = (
            (cx - rx - 1.0).max(0.0) as usize,
            ((cx + rx + 2.0).min(w)) as usize,
        );
        let (y0, y1) = (
            (cy - ry - 1.0).max(0.0) as usize,
            ((cy + ry + 2.0).min(h)) as usize,
        );
        for y in y0..y1 {
            for x in x0..x1 {
                let dx = (x as f64 + 0.5 - cx) / rx;
                let dy = (y as f64 + 0.5 - cy) / ry;
                let r = (dx * dx + dy * dy).sqrt();
                let edge = ((1.0 - r) * rx.min(ry) + 0.5).clamp(0.0, 1.0);
                self.pixels[y * self.width + x] += (value * edge) as f32;
            }
        }
    }

    /// Add a Gaussian blob of peak `value` and standard deviation `sigma`
    /// (in units of the image width).
    pub fn blob(&mut self, u: f64, v: f64, sigma: f64, value: f64) {
        let (w, h) = (self.width as f64, self.height as f64);
        let (cx, cy, s) = (u * w, v * h, (sigma * w).max(0.5));
        let reach = 3.0 * s;
        let (x0, x1) = (
            (cx - reach).max(0.0) as usize,
            ((cx + reach + 1.0).min(w)) as usize,
        );
        let (y0, y1) = (
            (cy - reach).max(0.0) as usize,
            ((cy + reach + 1.0).min(h)) as usize,
        );
        for y in y0..y1 {
            for x in x0..x1 {
                let dx = x as f64 + 0.5 - cx;
                let dy = y as f64 + 0.5 - cy;
                let g = (-(dx * dx + dy * dy) / (2.0 * s * s)).exp();
                self.pixels[y * self.width + x] += (value * g) as f32;
            }
        }
    }

    /// Add a line of blobs from (u0, v0) to (u1, v1): a bone.
    pub fn line(&mut self, (u0, v0): (f64, f64), (u1, v1): (f64, f64), sigma: f64, value: f64) {
        let (w, h) = (self.width as f64, self.height as f64);
        let len_px = ((u1 - u0) * w).hypot((v1 - v0) * h);
        let s_px = (sigma * w).max(0.5);
        let n = (len_px / s_px).ceil().max(2.0) as usize;
        // Blobs overlap along the line: scale each so the ridge peaks at `value`.
        let spacing = (len_px / n as f64).max(1e-9);
        let overlap = ((2.0 * std::f64::consts::PI).sqrt() * s_px / spacing).max(1.0);
        for i in 0..=n {
            let t = i as f64 / n as f64;
            self.blob(
                u0 + (u1 - u0) * t,
                v0 + (v1 - v0) * t,
                sigma,
                value / overlap,
            );
        }
    }

    /// Replace each pixel by a Poisson count with mean `pixel * counts`, then
    /// scale so the brightest pixel is 1.
    pub fn poisson_noise(&mut self, counts: f64, rng: &mut SplitMix64) {
        for p in &mut self.pixels {
            *p = rng.poisson(f64::from(p.max(0.0)) * counts) as f32;
        }
        self.finish();
    }

    /// Scale to [0, 1] by the maximum (an all-zero image stays zero).
    pub fn finish(&mut self) {
        let max = self.pixels.iter().copied().fold(0.0f32, f32::max);
        if max > 0.0 {
            for p in &mut self.pixels {
                *p = (p.max(0.0) / max).min(1.0);
            }
        }
    }
}

/// Patient `index`'s anterior and posterior views, each through the
/// default percentile window into [0, 1] (what ingestion makes of the
/// phantom's DICOM files, without the crop: the body already fills the
/// frame). See [`bone::bone_patient`].
pub fn bone_views(height: usize, width: usize, class: usize, seed: u64, index: u64) -> [Canvas; 2] {
    let patient = bone::bone_patient(height, width, class, seed, index);
    [patient.anterior, patient.posterior].map(|c| {
        let mut plane = Plane::new(c.height, c.width, c.pixels);
        normalise(&mut plane, Window::default());
        Canvas {
            height: plane.height,
            width: plane.width,
            pixels: plane.pixels,
        }
    })
}

/// The anterior view of [`bone_views`]: class 0 healthy, 1 metastasis,
/// 2 benign.
pub fn bone_scan(height: usize, width: usize, class: usize, seed: u64, index: u64) -> Canvas {
    let [anterior, _] = bone_views(height, width, class, seed, index);
    anterior
}

/// A frontal chest X-ray of class 0 COVID, 1 Lung_Opacity, 2 Normal or
/// 3 Viral Pneumonia.
pub fn chest_xray(height: usize, width: usize, class: usize, seed: u64, index: u64) -> Canvas {
    let mut rng = SplitMix64::derive(seed ^ 0xC4E5, (class as u64) << 32 | index);
    let mut c = Canvas::new(height, width);
    let s = rng.uniform(0.9, 1.05);
    c.ellipse(0.5, 0.55, 0.45 * s, 0.48, 0.55); // thorax
    for side in [-1.0, 1.0] {
        c.ellipse(0.5 + side * 0.19 * s, 0.5, 0.14 * s, 0.3, -0.4); // lung
        for i in 0..6 {
            let y = 0.28 + 0.08 * i as f64;
            c.line((0.5, y), (0.5 + side * 0.33 * s, y + 0.06), 0.006, 0.08); // ribs
        }
    }
    c.ellipse(0.5, 0.5, 0.06, 0.4, 0.25); // mediastinum and spine
    c.ellipse(0.55, 0.68, 0.1, 0.1, 0.15); // heart
    match class {
        0 => {
            // COVID: bilateral, peripheral, lower-zone ground glass.
            for side in [-1.0, 1.0] {
                for _ in 0..2 + rng.below(3) {
                    let u = 0.5 + side * rng.uniform(0.24, 0.3) * s;
                    c.blob(
                        u,
                        rng.uniform(0.5, 0.72),
                        rng.uniform(0.03, 0.05),
                        rng.uniform(0.12, 0.2),
                    );
                }
            }
        }
        1 => {
            // Lung opacity: one dense consolidation in one lung.
            let side = if rng.below(2) == 0 { -1.0 } else { 1.0 };
            c.blob(
                0.5 + side * 0.19 * s,
                rng.uniform(0.35, 0.65),
                rng.uniform(0.06, 0.09),
                0.35,
            );
        }
        3 => {
            // Viral pneumonia: diffuse, perihilar, fine interstitial pattern.
            for _ in 0..25 {
                let side = if rng.below(2) == 0 { -1.0 } else { 1.0 };
                let u = 0.5 + side * rng.uniform(0.08, 0.22) * s;
                c.blob(
                    u,
                    rng.uniform(0.3, 0.7),
                    rng.uniform(0.008, 0.015),
                    rng.uniform(0.1, 0.2),
                );
            }
        }
        _ => {}
    }
    for p in &mut c.pixels {
        *p += (rng.normal() * 0.01) as f32;
    }
    c.finish();
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_per_seed_and_index() {
        let a = bone_scan(64, 32, 1, 7, 3);
        let b = bone_scan(64, 32, 1, 7, 3);
        let c = bone_scan(64, 32, 1, 7, 4);
        assert_eq!(a.pixels, b.pixels);
        assert_ne!(a.pixels, c.pixels);
    }

    #[test]
    fn values_are_normalised() {
        for class in 0..3 {
            let img = bone_scan(64, 32, class, 1, 0);
            let max = img.pixels.iter().copied().fold(0.0, f32::max);
            assert_eq!(max, 1.0, "the hottest pixels saturate");
            assert!(img.pixels.iter().all(|p| (0.0..=1.0).contains(p)));
        }
        for class in 0..4 {
            let img = chest_xray(32, 32, class, 1, 0);
            assert!(img.pixels.iter().all(|p| (0.0..=1.0).contains(p)));
        }
    }

    #[test]
    fn metastasis_adds_focal_hot_spots_on_the_trunk() {
        // Peakiness of the trunk band (99th percentile over median), averaged
        // over patients: focal uptake raises it.
        let peakiness = |class: usize| -> f32 {
            (0..20)
                .map(|i| {
                    let img = bone_scan(128, 64, class, 11, i);
                    let mut band: Vec<f32> = (20..52)
                        .flat_map(|y| (12..52).map(move |x| (y, x)))
                        .map(|(y, x)| img.pixels[y * 64 + x])
                        .filter(|&p| p > 0.05)
                        .collect();
                    band.sort_by(f32::total_cmp);
                    band[band.len() * 99 / 100] / band[band.len() / 2].max(1e-3)
                })
                .sum::<f32>()
                / 20.0
        };
        let (healthy, metastasis) = (peakiness(0), peakiness(1));
        assert!(
            metastasis > healthy * 1.05,
            "metastasis {metastasis} healthy {healthy}"
        );
    }
}
