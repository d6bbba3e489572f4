//! Whole-body bone-scan phantoms: one synthetic patient seen by a dual-head
//! gamma camera, anterior and posterior views, in counts.
//!
//! The anatomy is described once in body coordinates (`x` across in body
//! heights, positive towards the patient's left; `y` down from the top of
//! the head to the soles, 0..1; depth `d` from the front, 0, to the back, 1)
//! and projected into each view: the anterior view puts the patient's left
//! on the viewer's right, the posterior view is its mirror image. Each
//! structure is attenuated by the tissue between it and the detector
//! (`exp(-1.2 d)` anterior, `exp(-1.2 (1 - d))` posterior), so the spine and
//! kidneys are brighter from behind and the sternum from the front. The
//! expected image is scaled to the patient's total counts and each pixel
//! drawn from a Poisson law, as a gamma camera counts.
//!
//! Patients vary in height, habitus, position and small rotation on the
//! table, bone uptake, soft-tissue and bladder activity, count density and
//! incidental findings (an injection-site hot spot, mild symmetric knees).

use super::Canvas;
use crate::rng::SplitMix64;

/// Class indices of the bone-scan phantom.
pub const HEALTHY: usize = 0;
pub const METASTASIS: usize = 1;
pub const BENIGN: usize = 2;

/// One synthetic patient.
#[derive(Debug, Clone)]
pub struct BonePatient {
    /// Counts per pixel, `height` x `width`.
    pub anterior: Canvas,
    pub posterior: Canvas,
    /// The body's silhouette in each view (soft tissue in the noise-free
    /// image), row-major: what an auto-crop must keep.
    pub anterior_body: Vec<bool>,
    pub posterior_body: Vec<bool>,
    /// What was drawn beyond normal anatomy, one line each ("metastasis
    /// spine y=0.31 uptake 1.8x").
    pub findings: Vec<String>,
}

/// How the body lies in the frame.
#[derive(Debug, Clone, Copy)]
struct Pose {
    /// Body height as a fraction of the frame height.
    height: f64,
    /// Top of the head, fraction of the frame height.
    top: f64,
    /// Habitus: scales `x`.
    breadth: f64,
    /// Rotation on the table (radians) and sideways offset (body heights).
    angle: f64,
    shift: f64,
}

/// Draws body-coordinate shapes into one view.
struct Painter<'a> {
    canvas: &'a mut Canvas,
    pose: Pose,
    posterior: bool,
    /// Pixels per body height across, over the frame width: maps body
    /// lengths to the canvas's width units.
    across: f64,
}

impl<'a> Painter<'a> {
    fn new(canvas: &'a mut Canvas, pose: Pose, posterior: bool) -> Self {
        let across = pose.height * canvas.height as f64 / canvas.width as f64;
        Self {
            canvas,
            pose,
            posterior,
            across,
        }
    }

    /// Body (x, y) to canvas (u, v).
    fn map(&self, x: f64, y: f64) -> (f64, f64) {
        let p = self.pose;
        let (sin, cos) = p.angle.sin_cos();
        let xb = x * p.breadth;
        let xr = xb * cos - (y - 0.5) * sin + p.shift;
        let yr = xb * sin + (y - 0.5) * cos + 0.5;
        let mut u = 0.5 + xr * self.across;
        if self.posterior {
            u = 1.0 - u;
        }
        (u, p.top + yr * p.height)
    }

    fn attenuation(&self, depth: f64) -> f64 {
        let d = if self.posterior { 1.0 - depth } else { depth };
        (-1.2 * (d - 0.5)).exp()
    }

    fn ellipse(&mut self, (x, y): (f64, f64), (rx, ry): (f64, f64), value: f64, depth: f64) {
        let (u, v) = self.map(x, y);
        let a = self.attenuation(depth);
        let (ru, rv) = (rx * self.pose.breadth * self.across, ry * self.pose.height);
        self.canvas.ellipse(u, v, ru, rv, value * a);
    }

    fn blob(&mut self, (x, y): (f64, f64), sigma: f64, value: f64, depth: f64) {
        let (u, v) = self.map(x, y);
        let a = self.attenuation(depth);
        self.canvas.blob(u, v, sigma * self.across, value * a);
    }

    fn line(&mut self, from: (f64, f64), to: (f64, f64), sigma: f64, value: f64, depth: f64) {
        let (a, b) = (self.map(from.0, from.1), self.map(to.0, to.1));
        let att = self.attenuation(depth);
        self.canvas.line(a, b, sigma * self.across, value * att);
    }
}

/// Per-patient activity levels (arbitrary units before count scaling).
#[derive(Debug, Clone, Copy)]
struct Uptake {
    bone: f64,
    soft: f64,
    kidney: f64,
    bladder: f64,
}

/// Soft tissue: head, neck, trunk, pelvis, arms and legs. Also the
/// silhouette of the body.
fn soft_tissue(p: &mut Painter, level: f64) {
    p.ellipse((0.0, 0.065), (0.052, 0.065), level, 0.5); // head
    p.ellipse((0.0, 0.135), (0.032, 0.03), level, 0.5); // neck
    p.ellipse((0.0, 0.3), (0.115, 0.16), level, 0.5); // chest and abdomen
    p.ellipse((0.0, 0.47), (0.105, 0.075), level, 0.5); // pelvis
    for side in [-1.0, 1.0] {
        p.ellipse((side * 0.052, 0.73), (0.04, 0.25), level, 0.5); // leg
        p.ellipse((side * 0.12, 0.28), (0.022, 0.11), level, 0.5); // upper arm
        p.ellipse((side * 0.133, 0.45), (0.019, 0.09), level, 0.5); // forearm
        p.ellipse((side * 0.138, 0.54), (0.015, 0.03), level, 0.5); // hand
        p.ellipse((side * 0.06, 0.97), (0.022, 0.028), level, 0.5); // foot
    }
}

/// Rib `i` (0 = first) on `side`: from the spine outwards and down.
fn rib(i: usize, side: f64) -> ((f64, f64), (f64, f64), (f64, f64)) {
    let y = 0.175 + 0.021 * i as f64;
    let reach = 0.06 + 0.004 * (i.min(6) as f64) - 0.003 * (i.saturating_sub(6) as f64);
    (
        (side * 0.012, y),
        (side * reach, y + 0.012),
        (side * (reach + 0.025), y + 0.035),
    )
}

/// A point along rib `i` at fraction `t` (0 at the spine, 1 at its end).
fn on_rib(i: usize, side: f64, t: f64) -> (f64, f64) {
    let (a, b, c) = rib(i, side);
    if t < 0.6 {
        let s = t / 0.6;
        (a.0 + (b.0 - a.0) * s, a.1 + (b.1 - a.1) * s)
    } else {
        let s = (t - 0.6) / 0.4;
        (b.0 + (c.0 - b.0) * s, b.1 + (c.1 - b.1) * s)
    }
}

/// The normal skeleton, kidneys and bladder.
fn skeleton(p: &mut Painter, u: Uptake, rng: &mut SplitMix64) {
    let b = u.bone;
    // Skull: calvarium as a rim, face and mandible.
    p.ellipse((0.0, 0.062), (0.048, 0.058), b * 0.55, 0.5);
    p.ellipse((0.0, 0.064), (0.041, 0.05), -b * 0.42, 0.5);
    p.blob((0.0, 0.11), 0.012, b * 0.35, 0.2);
    // Spine: vertebral bodies as beads, brighter in the lumbar region.
    for k in 0..24 {
        let y = 0.125 + 0.0165 * k as f64;
        let level = b * (0.55 + 0.02 * k as f64) * rng.uniform(0.93, 1.07);
        p.blob((0.0, y), 0.0085, level, 0.75);
    }
    p.line((0.0, 0.125), (0.0, 0.52), 0.006, b * 0.35, 0.75);
    // Sternum and clavicles (front), scapulae (back).
    p.line((0.0, 0.185), (0.0, 0.28), 0.007, b * 0.5, 0.05);
    for side in [-1.0, 1.0] {
        p.line(
            (side * 0.012, 0.17),
            (side * 0.095, 0.158),
            0.005,
            b * 0.5,
            0.2,
        );
        p.ellipse((side * 0.078, 0.215), (0.026, 0.048), b * 0.25, 0.92);
        p.blob((side * 0.102, 0.172), 0.009, b * 0.5, 0.85); // acromion
        // Ribs: posterior arcs brighter from behind.
        for i in 0..11 {
            let (a, m, e) = rib(i, side);
            p.line(a, m, 0.0035, b * 0.42, 0.8);
            p.line(m, e, 0.0035, b * 0.32, 0.35);
        }
        // Shoulder, arm, elbow, forearm, wrist and hand.
        p.blob((side * 0.108, 0.172), 0.011, b * 0.6, 0.5);
        p.line(
            (side * 0.112, 0.18),
            (side * 0.124, 0.35),
            0.006,
            b * 0.45,
            0.5,
        );
        p.blob((side * 0.126, 0.355), 0.008, b * 0.45, 0.5);
        p.line(
            (side * 0.128, 0.365),
            (side * 0.136, 0.5),
            0.005,
            b * 0.38,
            0.5,
        );
        p.blob((side * 0.137, 0.51), 0.008, b * 0.45, 0.5);
        p.blob((side * 0.139, 0.545), 0.011, b * 0.3, 0.5);
        // Pelvis: iliac wing, sacroiliac joint, pubis, hip.
        p.ellipse((side * 0.058, 0.46), (0.038, 0.03), b * 0.45, 0.6);
        p.blob((side * 0.022, 0.475), 0.008, b * 0.75, 0.85);
        p.line(
            (side * 0.01, 0.532),
            (side * 0.045, 0.52),
            0.006,
            b * 0.45,
            0.15,
        );
        p.blob((side * 0.062, 0.522), 0.011, b * 0.7, 0.5);
        // Femur, knee, tibia, ankle, foot.
        p.line(
            (side * 0.065, 0.53),
            (side * 0.05, 0.74),
            0.008,
            b * 0.5,
            0.5,
        );
        p.blob((side * 0.05, 0.75), 0.012, b * 0.6, 0.5);
        p.line(
            (side * 0.05, 0.765),
            (side * 0.052, 0.945),
            0.007,
            b * 0.45,
            0.5,
        );
        p.blob((side * 0.053, 0.952), 0.009, b * 0.55, 0.5);
        p.line(
            (side * 0.054, 0.96),
            (side * 0.066, 0.99),
            0.006,
            b * 0.4,
            0.5,
        );
        // Kidneys: excreted tracer, seen best from behind.
        p.ellipse((side * 0.042, 0.39), (0.016, 0.028), u.kidney, 0.82);
    }
    p.blob((0.0, 0.495), 0.018, b * 0.6, 0.85); // sacrum
    p.blob((0.0, 0.515), 0.02, u.bladder, 0.3); // bladder
}

/// A place on the axial skeleton (mostly) where metastases seed, with its
/// depth: spine, ribs, pelvis, proximal femurs, skull, humeri, sternum.
fn metastasis_site(rng: &mut SplitMix64) -> ((f64, f64), f64, &'static str) {
    let side = if rng.below(2) == 0 { -1.0 } else { 1.0 };
    let r = rng.next_f64();
    if r < 0.35 {
        ((0.0, rng.uniform(0.13, 0.52)), 0.75, "spine")
    } else if r < 0.6 {
        let i = rng.below(11);
        (on_rib(i, side, rng.uniform(0.1, 1.0)), 0.6, "rib")
    } else if r < 0.8 {
        (
            (side * rng.uniform(0.02, 0.08), rng.uniform(0.44, 0.53)),
            0.6,
            "pelvis",
        )
    } else if r < 0.88 {
        (
            (side * rng.uniform(0.055, 0.066), rng.uniform(0.53, 0.62)),
            0.5,
            "femur",
        )
    } else if r < 0.93 {
        let a = rng.uniform(0.0, std::f64::consts::TAU);
        ((0.044 * a.cos(), 0.062 + 0.052 * a.sin()), 0.5, "skull")
    } else if r < 0.97 {
        (
            (side * rng.uniform(0.112, 0.124), rng.uniform(0.19, 0.3)),
            0.5,
            "humerus",
        )
    } else {
        ((0.0, rng.uniform(0.19, 0.27)), 0.05, "sternum")
    }
}

fn metastases(p: &mut [Painter; 2], u: Uptake, rng: &mut SplitMix64, findings: &mut Vec<String>) {
    // 1 to 20 lesions, most patients with a few (geometric-like tail).
    let n = (1.0 + (-rng.next_f64().max(1e-9).ln() * 4.0))
        .floor()
        .min(20.0) as usize;
    for _ in 0..n {
        let (at, depth, site) = metastasis_site(rng);
        // One in four is subtle: barely above the bone around it.
        let level = if rng.next_f64() < 0.25 {
            rng.uniform(0.3, 0.6)
        } else {
            rng.uniform(0.7, 2.5)
        };
        let sigma = rng.uniform(0.004, 0.011);
        for view in p.iter_mut() {
            view.blob(at, sigma, u.bone * level, depth);
        }
        findings.push(format!(
            "metastasis {site} x={:.3} y={:.3} uptake {level:.2}x",
            at.0, at.1
        ));
    }
}

fn benign_findings(
    p: &mut [Painter; 2],
    u: Uptake,
    rng: &mut SplitMix64,
    findings: &mut Vec<String>,
) {
    let n = 1 + rng.below(3);
    for _ in 0..n {
        let level = rng.uniform(0.35, 0.9);
        match rng.below(4) {
            0 => {
                // Degenerative knees: both joints, a little asymmetric.
                for side in [-1.0, 1.0] {
                    let l = level * rng.uniform(0.8, 1.2);
                    for view in p.iter_mut() {
                        view.blob((side * 0.05, 0.752), 0.013, u.bone * l, 0.5);
                    }
                }
                findings.push(format!("benign knees uptake {level:.2}x"));
            }
            1 => {
                // Shoulder joints (arthropathy), both sides.
                for side in [-1.0, 1.0] {
                    let l = level * rng.uniform(0.8, 1.2);
                    for view in p.iter_mut() {
                        view.blob((side * 0.108, 0.175), 0.012, u.bone * l, 0.5);
                    }
                }
                findings.push(format!("benign shoulders uptake {level:.2}x"));
            }
            2 => {
                // Degenerative lumbar spine: a wide band across one or two
                // adjacent vertebrae (osteophytes, facet joints).
                let y = rng.uniform(0.4, 0.5);
                for k in 0..1 + rng.below(2) {
                    for view in p.iter_mut() {
                        view.ellipse(
                            (0.0, y + 0.0165 * k as f64),
                            (0.02, 0.006),
                            u.bone * level * 0.8,
                            0.7,
                        );
                    }
                }
                findings.push(format!(
                    "benign degenerative spine y={y:.3} uptake {level:.2}x"
                ));
            }
            _ => {
                // Rib fractures: a vertical line of small foci on
                // consecutive ribs (a fall), or a single one.
                let side = if rng.below(2) == 0 { -1.0 } else { 1.0 };
                let first = rng.below(8);
                let t = rng.uniform(0.5, 0.95);
                let count = 1 + rng.below(3);
                for i in first..first + count {
                    for view in p.iter_mut() {
                        view.blob(on_rib(i, side, t), 0.004, u.bone * level * 1.5, 0.35);
                    }
                }
                findings.push(format!("benign rib fractures x{count} uptake {level:.2}x"));
            }
        }
    }
}

/// Patient `index` of `class` (0 healthy, 1 metastasis, 2 benign), both
/// views at `height` x `width`. A pure function of its arguments.
pub fn bone_patient(
    height: usize,
    width: usize,
    class: usize,
    seed: u64,
    index: u64,
) -> BonePatient {
    let mut rng = SplitMix64::derive(seed, (class as u64) << 32 | index);
    let pose = Pose {
        height: rng.uniform(0.72, 0.84),
        top: rng.uniform(0.03, 0.09),
        breadth: rng.uniform(0.9, 1.1),
        angle: rng.uniform(-2.5, 2.5).to_radians(),
        shift: rng.uniform(-0.015, 0.015),
    };
    let uptake = Uptake {
        bone: rng.uniform(0.8, 1.2),
        soft: rng.uniform(0.06, 0.14),
        kidney: rng.uniform(0.15, 0.55),
        bladder: rng.uniform(0.8, 3.5),
    };
    let (mut ant, mut post) = (Canvas::new(height, width), Canvas::new(height, width));
    // Silhouettes first, on their own canvases (noise-free).
    let (mut ant_body, mut post_body) = (Canvas::new(height, width), Canvas::new(height, width));
    soft_tissue(&mut Painter::new(&mut ant_body, pose, false), 1.0);
    soft_tissue(&mut Painter::new(&mut post_body, pose, true), 1.0);
    let mut findings = Vec::new();
    {
        let mut views = [
            Painter::new(&mut ant, pose, false),
            Painter::new(&mut post, pose, true),
        ];
        // The same random draws for both views: one patient.
        let state = rng.clone();
        for view in views.iter_mut() {
            rng = state.clone();
            soft_tissue(view, uptake.soft);
            skeleton(view, uptake, &mut rng);
        }
        // Incidental: injection site in an arm (any class), mild knees.
        if rng.next_f64() < 0.15 {
            let side = if rng.below(2) == 0 { -1.0 } else { 1.0 };
            let level = rng.uniform(0.5, 3.0);
            for view in views.iter_mut() {
                view.blob((side * 0.128, 0.37), 0.006, uptake.bone * level, 0.2);
            }
            findings.push(format!("injection site uptake {level:.2}x"));
        }
        match class {
            METASTASIS => metastases(&mut views, uptake, &mut rng, &mut findings),
            BENIGN => benign_findings(&mut views, uptake, &mut rng, &mut findings),
            _ => {
                if rng.next_f64() < 0.2 {
                    let level = rng.uniform(0.15, 0.35);
                    for side in [-1.0, 1.0] {
                        for view in views.iter_mut() {
                            view.blob((side * 0.05, 0.752), 0.012, uptake.bone * level, 0.5);
                        }
                    }
                    findings.push(format!("incidental mild knees {level:.2}x"));
                }
            }
        }
    }
    // Scatter background, then counts: 0.8 to 2 million per view.
    let total = rng.uniform(0.8e6, 2.0e6);
    for canvas in [&mut ant, &mut post] {
        let mean: f64 = canvas
            .pixels
            .iter()
            .map(|&p| f64::from(p.max(0.0)))
            .sum::<f64>()
            / canvas.pixels.len() as f64;
        for p in &mut canvas.pixels {
            *p = p.max(0.0) + (mean * 0.03) as f32;
        }
        let sum: f64 = canvas.pixels.iter().map(|&p| f64::from(p)).sum();
        let scale = total / sum.max(1e-9);
        for p in &mut canvas.pixels {
            *p = rng.poisson(f64::from(*p) * scale) as f32;
        }
    }
    let mask = |c: &Canvas| c.pixels.iter().map(|&p| p > 0.05).collect::<Vec<bool>>();
    BonePatient {
        anterior_body: mask(&ant_body),
        posterior_body: mask(&post_body),
        anterior: ant,
        posterior: post,
        findings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_views_differ() {
        let a = bone_patient(128, 32, METASTASIS, 7, 3);
        let b = bone_patient(128, 32, METASTASIS, 7, 3);
        assert_eq!(a.anterior.pixels, b.anterior.pixels);
        assert_eq!(a.findings, b.findings);
        assert_ne!(a.anterior.pixels, a.posterior.pixels);
        assert!(!a.findings.is_empty());
        let c = bone_patient(128, 32, METASTASIS, 7, 4);
        assert_ne!(a.anterior.pixels, c.anterior.pixels);
    }

    #[test]
    fn counts_are_whole_numbers_in_the_million_range() {
        let p = bone_patient(256, 64, HEALTHY, 1, 0);
        let total: f64 = p.anterior.pixels.iter().map(|&c| f64::from(c)).sum();
        assert!((0.7e6..2.2e6).contains(&total), "{total}");
        assert!(
            p.anterior
                .pixels
                .iter()
                .all(|c| c.fract() == 0.0 && *c >= 0.0)
        );
    }

    #[test]
    fn spine_is_brighter_from_behind() {
        // Mean counts in a narrow band around the midline of the trunk.
        let p = bone_patient(512, 128, HEALTHY, 5, 1);
        let band = |c: &Canvas| -> f64 {
            let mut s = 0.0;
            for y in 150..200 {
                for x in 60..68 {
                    s += f64::from(c.pixels[y * 128 + x]);
                }
            }
            s
        };
        assert!(band(&p.posterior) > band(&p.anterior) * 1.2);
    }
}
