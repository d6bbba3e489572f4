//! SSIM (Wang et al. 2004) as scikit-image computes it with
//! `gaussian_weights=True, sigma=1.5, use_sample_covariance=False`: an
//! 11-tap Gaussian window (truncate 3.5), C1 = (0.01 L)^2, C2 = (0.03 L)^2,
//! the mean of the SSIM map over the pixels at least 5 from every edge
//! (scikit-image filters with reflection, then crops those 5 pixels; a
//! valid-mode convolution gives the same retained values).
//!
//! And the paper's per-class generation score (its Table 3): every
//! generated image of a class against every training image of that class,
//! after matching the generated image's brightness and contrast (mean and
//! standard deviation) to the real one's, averaged.

use tch::{Device, Kind, Tensor};

const SIGMA: f64 = 1.5;
const RADIUS: i64 = 5; // int(3.5 * 1.5 + 0.5)

/// The normalised 1-D Gaussian window, 11 taps.
fn window(device: Device) -> Tensor {
    let taps: Vec<f32> = (-RADIUS..=RADIUS)
        .map(|i| (-(i * i) as f64 / (2.0 * SIGMA * SIGMA)).exp() as f32)
        .collect();
    let sum: f32 = taps.iter().sum();
    Tensor::from_slice(&taps.iter().map(|t| t / sum).collect::<Vec<_>>()).to_device(device)
}

/// Separable Gaussian filter, valid mode: `[N, 1, H, W]` -> `[N, 1, H-10, W-10]`.
fn blur(x: &Tensor, g: &Tensor) -> Tensor {
    let taps = 2 * RADIUS + 1;
    let gh = g.view([1, 1, taps, 1]);
    let gw = g.view([1, 1, 1, taps]);
    x.conv2d(&gh, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1)
        .conv2d(&gw, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1)
}

/// SSIM of each pair `x[i]`, `y[i]` (`[N, 1, H, W]`, H and W at least 11)
/// for data range `range`: `[N]`.
pub fn ssim(x: &Tensor, y: &Tensor, range: f64) -> Tensor {
    let (x, y) = (x.to_kind(Kind::Float), y.to_kind(Kind::Float));
    let g = window(x.device());
    let (c1, c2) = ((0.01 * range).powi(2), (0.03 * range).powi(2));
    let mx = blur(&x, &g);
    let my = blur(&y, &g);
    let sxx = blur(&(&x * &x), &g) - &mx * &mx;
    let syy = blur(&(&y * &y), &g) - &my * &my;
    let sxy = blur(&(&x * &y), &g) - &mx * &my;
    let num = (&mx * &my * 2.0 + c1) * (sxy * 2.0 + c2);
    let den = (&mx * &mx + &my * &my + c1) * (sxx + syy + c2);
    (num / den).mean_dim(&[1i64, 2, 3][..], false, Kind::Float)
}

/// Mean SSIM of every generated image against every real image, each
/// generated image `g` first given the real one's mean and standard
/// deviation (`a g + b`, not clamped). Images `[N, 1, H, W]` in [0, 1]
/// (H and W at least 11); pairs are evaluated `chunk` at a time on the
/// images' device.
///
/// The matching is affine, so the windowed means and second moments of
/// `a g + b` follow from those of `g`, computed once per image; each pair
/// needs one windowed mean, of `g r`. That makes this about five times
/// cheaper than calling [`ssim`] on matched pairs.
pub fn mean_pairwise_ssim(generated: &Tensor, real: &Tensor, chunk: i64) -> f64 {
    let (ng, nr) = (generated.size()[0], real.size()[0]);
    if ng == 0 || nr == 0 {
        return f64::NAN;
    }
    tch::no_grad(|| {
        let (g, r) = (generated.to_kind(Kind::Float), real.to_kind(Kind::Float));
        let win = window(g.device());
        let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
        let stats = |t: &Tensor| {
            let flat = t.flatten(1, -1);
            (
                flat.mean_dim(1, false, Kind::Float),
                flat.std_dim(1, false, false),
            )
        };
        let (gm, gs) = stats(&g);
        let (rm, rs) = stats(&r);
        // Windowed first and second moments, once per image.
        let (mu_g, e_gg) = (blur(&g, &win), blur(&(&g * &g), &win));
        let (mu_r, e_rr) = (blur(&r, &win), blur(&(&r * &r), &win));
        let var_r = &e_rr - &mu_r * &mu_r;
        let view = |t: &Tensor| t.view([-1, 1, 1, 1]);
        let mut total = 0.0;
        let pairs = ng * nr;
        let mut start = 0;
        while start < pairs {
            let len = chunk.max(1).min(pairs - start);
            let idx = Tensor::arange_start(start, start + len, (Kind::Int64, g.device()));
            let (gi, ri) = (idx.divide_scalar_mode(nr, "floor"), idx.remainder(nr));
            let a = view(&(rs.index_select(0, &ri) / gs.index_select(0, &gi).clamp_min(1e-6)));
            let b = view(&rm.index_select(0, &ri)) - &a * view(&gm.index_select(0, &gi));
            let (mg, eg) = (mu_g.index_select(0, &gi), e_gg.index_select(0, &gi));
            let (mr, vr) = (mu_r.index_select(0, &ri), var_r.index_select(0, &ri));
            let mu_m = &a * &mg + &b;
            let e_mm = &a * &a * &eg + &a * &b * &mg * 2.0 + &b * &b;
            let e_gr = blur(&(g.index_select(0, &gi) * r.index_select(0, &ri)), &win);
            let cov = &a * e_gr + &b * &mr - &mu_m * &mr;
            let var_m = e_mm - &mu_m * &mu_m;
            let num = (&mu_m * &mr * 2.0 + c1) * (cov * 2.0 + c2);
            let den = (&mu_m * &mu_m + &mr * &mr + c1) * (var_m + vr + c2);
            total += f64::try_from(
                (num / den)
                    .mean_dim(&[1i64, 2, 3][..], false, Kind::Float)
                    .sum(Kind::Double),
            )
            .unwrap_or(f64::NAN);
            start += len;
        }
        total / pairs as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_images_score_one_and_noise_lowers_it() {
        let x = Tensor::rand([2, 1, 20, 20], (Kind::Float, Device::Cpu));
        let same = Vec::<f32>::try_from(ssim(&x, &x, 1.0)).unwrap();
        assert!(same.iter().all(|s| (s - 1.0).abs() < 1e-5), "{same:?}");
        let noisy =
            (&x + Tensor::randn([2, 1, 20, 20], (Kind::Float, Device::Cpu)) * 0.3).clamp(0.0, 1.0);
        let s = Vec::<f32>::try_from(ssim(&x, &noisy, 1.0)).unwrap();
        assert!(s.iter().all(|v| *v < 0.9));
    }

    #[test]
    fn pairwise_equals_ssim_of_explicitly_matched_pairs() {
        let generated = Tensor::rand([3, 1, 24, 20], (Kind::Float, Device::Cpu)) * 0.4;
        let real = Tensor::rand([4, 1, 24, 20], (Kind::Float, Device::Cpu)) * 0.8 + 0.1;
        let mut sum = 0.0;
        for i in 0..3 {
            for j in 0..4 {
                let (g, r) = (generated.narrow(0, i, 1), real.narrow(0, j, 1));
                let m =
                    (&g - g.mean(Kind::Float)) / g.std(false) * r.std(false) + r.mean(Kind::Float);
                sum += f64::try_from(ssim(&m, &r, 1.0).get(0)).unwrap();
            }
        }
        let fast = mean_pairwise_ssim(&generated, &real, 5);
        assert!((fast - sum / 12.0).abs() < 1e-4, "{fast} vs {}", sum / 12.0);
    }

    #[test]
    fn brightness_and_contrast_are_matched_before_comparing() {
        let real = Tensor::rand([3, 1, 16, 16], (Kind::Float, Device::Cpu)) * 0.5 + 0.25;
        // The same images, darker and flatter: equal after matching.
        let generated = &real * 0.5;
        let pairwise = mean_pairwise_ssim(&generated.narrow(0, 0, 1), &real.narrow(0, 0, 1), 4);
        assert!((pairwise - 1.0).abs() < 1e-4, "{pairwise}");
    }
}
