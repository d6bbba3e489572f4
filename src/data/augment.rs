//! Traditional augmentation as in the paper (its section 2 and Table 2):
//! random rotation, translation, horizontal mirror and Poisson noise, each
//! seeded, applied to the training split only. `factor` copies of each image
//! are kept (the original and `factor - 1` augmented ones): the paper grew
//! 274 training images to 4110, `factor = 15`.

use crate::rng::SplitMix64;
use tch::{Kind, Tensor};

pub use crate::config::AugmentSpec;

/// One copy's transform.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transform {
    pub degrees: f64,
    /// Pixels, positive = right / down.
    pub dx: f64,
    pub dy: f64,
    pub mirror: bool,
}

/// Apply one transform per image: `images [N, 1, H, W]` in [0, 1], bilinear,
/// zero (black) outside the frame.
pub fn apply(images: &Tensor, transforms: &[Transform]) -> Tensor {
    let size = images.size();
    let (h, w) = (size[2] as f64, size[3] as f64);
    let mut theta = Vec::with_capacity(transforms.len() * 6);
    for t in transforms {
        let (s, c) = t.degrees.to_radians().sin_cos();
        // Output -> input mapping in normalised coordinates, for a rotation
        // in pixel space (so non-square images are not sheared).
        let flip = if t.mirror { -1.0 } else { 1.0 };
        theta.extend_from_slice(&[
            (c * flip) as f32,
            (-s * h / w) as f32,
            (-2.0 * t.dx / w) as f32,
            (s * w / h * flip) as f32,
            c as f32,
            (-2.0 * t.dy / h) as f32,
        ]);
    }
    let theta = Tensor::from_slice(&theta)
        .view([transforms.len() as i64, 2, 3])
        .to_device(images.device());
    let grid = Tensor::affine_grid_generator(&theta, size.as_slice(), false);
    // interpolation 0 = bilinear, padding 0 = zeros
    images.grid_sampler(&grid, 0, 0, false)
}

/// Draw the transforms for `n` copies from `spec`'s ranges, seeded by
/// `(spec.seed, stream)`.
pub fn draw(spec: &AugmentSpec, n: usize, stream: u64) -> Vec<Transform> {
    let mut rng = SplitMix64::derive(spec.seed, stream);
    (0..n)
        .map(|_| Transform {
            degrees: rng.uniform(-spec.rotation, spec.rotation),
            dx: rng.uniform(-spec.translation, spec.translation),
            dy: rng.uniform(-spec.translation, spec.translation),
            mirror: spec.mirror && rng.below(2) == 1,
        })
        .collect()
}

/// The originals followed by `factor - 1` augmented copies of each:
/// `[N, 1, H, W]` -> `[N * factor, 1, H, W]`, labels repeated to match.
pub fn expand(images: &Tensor, labels: &Tensor, spec: &AugmentSpec) -> (Tensor, Tensor) {
    let n = images.size()[0];
    if spec.factor <= 1 || n == 0 {
        return (images.shallow_clone(), labels.shallow_clone());
    }
    let mut all_images = vec![images.shallow_clone()];
    let mut all_labels = vec![labels.shallow_clone()];
    for copy in 1..spec.factor {
        let transforms = draw(spec, n as usize, copy as u64);
        let mut out = tch::no_grad(|| apply(images, &transforms));
        if spec.poisson_counts > 0.0 {
            tch::manual_seed(
                (SplitMix64::derive(spec.seed ^ 0x9015, copy as u64).next_u64() >> 1) as i64,
            );
            out = ((out.clamp(0.0, 1.0) * spec.poisson_counts).poisson() / spec.poisson_counts)
                .clamp(0.0, 1.0);
        }
        all_images.push(out.to_kind(Kind::Float));
        all_labels.push(labels.shallow_clone());
    }
    (Tensor::cat(&all_images, 0), Tensor::cat(&all_labels, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn ramp(h: i64, w: i64) -> Tensor {
        Tensor::arange(h * w, (Kind::Float, Device::Cpu)).view([1, 1, h, w]) / (h * w) as f64
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        f64::try_from((a - b).abs().max()).unwrap()
    }

    const NONE: Transform = Transform {
        degrees: 0.0,
        dx: 0.0,
        dy: 0.0,
        mirror: false,
    };

    #[test]
    fn identity_leaves_the_image_alone() {
        let x = ramp(8, 6);
        assert!(max_diff(&apply(&x, &[NONE]), &x) < 1e-6);
    }

    #[test]
    fn mirror_is_a_left_right_flip() {
        let x = ramp(8, 6);
        let t = Transform {
            mirror: true,
            ..NONE
        };
        assert!(max_diff(&apply(&x, &[t]), &x.flip([3])) < 1e-6);
    }

    #[test]
    fn whole_pixel_translation_shifts_and_fills_black() {
        let x = ramp(8, 6) + 0.1;
        let t = Transform {
            dx: 2.0,
            dy: 1.0,
            ..NONE
        };
        let y = apply(&x, &[t]);
        // y[r][c] = x[r - 1][c - 2]; the first row and two columns are black.
        let moved = y.narrow(2, 1, 7).narrow(3, 2, 4);
        let source = x.narrow(2, 0, 7).narrow(3, 0, 4);
        assert!(max_diff(&moved, &source) < 1e-5);
        assert!(f64::try_from(y.narrow(2, 0, 1).abs().max()).unwrap() < 1e-6);
        assert!(f64::try_from(y.narrow(3, 0, 2).abs().max()).unwrap() < 1e-6);
    }

    #[test]
    fn quarter_turn_of_a_square_image_is_a_rot90() {
        let x = ramp(6, 6);
        let t = Transform {
            degrees: 90.0,
            ..NONE
        };
        let y = apply(&x, &[t]);
        let a = max_diff(&y, &x.rot90(1, [2, 3]));
        let b = max_diff(&y, &x.rot90(-1, [2, 3]));
        assert!(a.min(b) < 1e-5, "{a} {b}");
    }

    #[test]
    fn expand_keeps_originals_first_and_is_seeded() {
        let x = Tensor::rand([3, 1, 16, 12], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2]);
        let spec = AugmentSpec {
            factor: 5,
            rotation: 10.0,
            translation: 2.0,
            mirror: true,
            poisson_counts: 50.0,
            seed: 4,
        };
        let (a, la) = expand(&x, &y, &spec);
        let (b, _) = expand(&x, &y, &spec);
        assert_eq!(a.size(), vec![15, 1, 16, 12]);
        assert_eq!(
            Vec::<i64>::try_from(&la).unwrap(),
            vec![0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]
        );
        assert!(max_diff(&a.narrow(0, 0, 3), &x) == 0.0);
        assert!(max_diff(&a, &b) == 0.0, "same seed, same images");
        assert!(
            max_diff(&a.narrow(0, 3, 3), &x) > 0.01,
            "copies differ from the originals"
        );
    }
}
