//! Seeded synthetic scans that stand in for private data: whole-body bone
//! scans (anterior view; healthy, metastasis, benign) and chest X-rays (the
//! COVID-19 Radiography Database's four classes).
//!
//! Each image is a pure function of `(seed, class, index)`. Shapes are drawn
//! in normalised coordinates (u across, v down, both in [0, 1]) so any image
//! size works, tall whole-body frames included. Bone scans get Poisson
//! counting noise like a gamma camera's.

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

/// A whole-body anterior bone scan of class 0 healthy, 1 metastasis or
/// 2 benign.
pub fn bone_scan(height: usize, width: usize, class: usize, seed: u64, index: u64) -> Canvas {
    let mut rng = SplitMix64::derive(seed, (class as u64) << 32 | index);
    let mut c = Canvas::new(height, width);
    // Patient variation: body width, vertical offset, bone uptake, soft tissue.
    let s = rng.uniform(0.85, 1.1);
    let dv = rng.uniform(-0.02, 0.02);
    let bone = rng.uniform(0.45, 0.6);
    let soft = rng.uniform(0.05, 0.1);
    let v = |y: f64| (y + dv).clamp(0.0, 1.0);
    // Soft tissue silhouette.
    c.ellipse(0.5, v(0.07), 0.09 * s, 0.055, soft);
    c.ellipse(0.5, v(0.33), 0.24 * s, 0.2, soft);
    for side in [-1.0, 1.0] {
        c.ellipse(0.5 + side * 0.1 * s, v(0.75), 0.09 * s, 0.24, soft);
        c.ellipse(0.5 + side * 0.3 * s, v(0.35), 0.05 * s, 0.18, soft);
    }
    // Skeleton: skull, spine, ribs, pelvis, limbs.
    c.ellipse(0.5, v(0.065), 0.08 * s, 0.05, bone * 0.7);
    c.line((0.5, v(0.13)), (0.5, v(0.5)), 0.018, bone);
    for i in 0..10 {
        let y = 0.17 + 0.028 * i as f64;
        for side in [-1.0, 1.0] {
            c.line(
                (0.5 + side * 0.025, v(y)),
                (0.5 + side * 0.17 * s, v(y + 0.03)),
                0.008,
                bone * 0.45,
            );
        }
    }
    for side in [-1.0, 1.0] {
        c.line(
            (0.5, v(0.5)),
            (0.5 + side * 0.15 * s, v(0.46)),
            0.02,
            bone * 0.8,
        ); // iliac wing
        c.line(
            (0.5 + side * 0.1 * s, v(0.53)),
            (0.5 + side * 0.1 * s, v(0.74)),
            0.014,
            bone * 0.8,
        ); // femur
        c.line(
            (0.5 + side * 0.1 * s, v(0.76)),
            (0.5 + side * 0.1 * s, v(0.97)),
            0.012,
            bone * 0.7,
        ); // tibia
        c.line(
            (0.5 + side * 0.2 * s, v(0.17)),
            (0.5 + side * 0.3 * s, v(0.35)),
            0.011,
            bone * 0.6,
        ); // humerus
        c.line(
            (0.5 + side * 0.06, v(0.15)),
            (0.5 + side * 0.2 * s, v(0.16)),
            0.01,
            bone * 0.6,
        ); // clavicle
    }
    c.blob(0.5, v(0.55), 0.03, 0.8); // bladder: physiological, every class
    match class {
        1 => {
            // Metastases: several hot spots on the axial skeleton.
            for _ in 0..3 + rng.below(5) {
                let (u, y) = match rng.below(3) {
                    0 => (0.5, rng.uniform(0.15, 0.5)),
                    1 => (0.5 + rng.uniform(-0.17, 0.17) * s, rng.uniform(0.18, 0.45)),
                    _ => (0.5 + rng.uniform(-0.14, 0.14) * s, rng.uniform(0.45, 0.52)),
                };
                c.blob(u, v(y), rng.uniform(0.012, 0.025), rng.uniform(0.7, 1.0));
            }
        }
        2 => {
            // Benign: one or two moderate spots at joints (degenerative change).
            for _ in 0..1 + rng.below(2) {
                let side = if rng.below(2) == 0 { -1.0 } else { 1.0 };
                let (u, y) = match rng.below(3) {
                    0 => (0.5 + side * 0.1 * s, 0.75),  // knee
                    1 => (0.5 + side * 0.2 * s, 0.165), // shoulder
                    _ => (0.5 + side * 0.1 * s, 0.97),  // ankle
                };
                c.blob(u, v(y), rng.uniform(0.015, 0.022), rng.uniform(0.5, 0.75));
            }
        }
        _ => {}
    }
    c.poisson_noise(rng.uniform(40.0, 80.0), &mut rng);
    c
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
            assert!((max - 1.0).abs() < 1e-6);
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
                    let mut band: Vec<f32> = (20..62)
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
            metastasis > healthy * 1.2,
            "metastasis {metastasis} healthy {healthy}"
        );
    }
}
