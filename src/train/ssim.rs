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
fn taps() -> Vec<f32> {
    let taps: Vec<f64> = (-RADIUS..=RADIUS)
        .map(|i| (-(i * i) as f64 / (2.0 * SIGMA * SIGMA)).exp())
        .collect();
    let sum: f64 = taps.iter().sum();
    taps.iter().map(|t| (t / sum) as f32).collect()
}

/// The separable Gaussian filter in valid mode for `H x W` images, as two
/// band matrices: filtering is `rows @ x @ cols_t`, two matrix products,
/// which libtorch runs several times faster than an 11-tap convolution
/// with one channel (and on the GPU when the images are there).
struct Window {
    /// `[H - 10, H]`: row k holds the taps at columns k..k + 11.
    rows: Tensor,
    /// `[W, W - 10]`: the same for the width, transposed.
    cols_t: Tensor,
}

impl Window {
    fn new(height: i64, width: i64, device: Device) -> Self {
        let taps = taps();
        let band = |n: i64| {
            let out = n - 2 * RADIUS;
            let mut m = vec![0f32; (out * n) as usize];
            for k in 0..out {
                for (t, tap) in taps.iter().enumerate() {
                    m[(k * n + k + t as i64) as usize] = *tap;
                }
            }
            Tensor::from_slice(&m).view([out, n]).to_device(device)
        };
        Self {
            rows: band(height),
            cols_t: band(width).transpose(0, 1).contiguous(),
        }
    }

    /// For images like `x` (`[N, 1, H, W]`).
    fn for_images(x: &Tensor) -> Self {
        let size = x.size();
        Self::new(size[2], size[3], x.device())
    }
}

/// Separable Gaussian filter, valid mode: `[N, 1, H, W]` -> `[N, 1, H-10, W-10]`.
fn blur(x: &Tensor, win: &Window) -> Tensor {
    win.rows.matmul(&x.matmul(&win.cols_t))
}

/// SSIM of each pair `x[i]`, `y[i]` (`[N, 1, H, W]`, H and W at least 11)
/// for data range `range`: `[N]`.
pub fn ssim(x: &Tensor, y: &Tensor, range: f64) -> Tensor {
    let (x, y) = (x.to_kind(Kind::Float), y.to_kind(Kind::Float));
    let g = Window::for_images(&x);
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

/// Which pairs of two image sets a pairwise score averages over.
#[derive(Debug, Clone, Copy)]
enum Pairs {
    /// Every `(i, j)` of `a` (`na` images) against `b` (`nb` images).
    All { na: i64, nb: i64 },
    /// Every ordered `(i, j)` with `i != j` of one set of `n` images.
    Distinct { n: i64 },
}

impl Pairs {
    fn len(self) -> i64 {
        match self {
            Pairs::All { na, nb } => na * nb,
            Pairs::Distinct { n } => n * (n - 1),
        }
    }
}

/// Mean SSIM of every generated image against every real image, each
/// generated image `g` first given the real one's mean and standard
/// deviation (`a g + b`, not clamped). Images `[N, 1, H, W]` in [0, 1]
/// (H and W at least 11), on any device; each generated image meets
/// `chunk` real images at a time (16 suits a CPU's cache). NaN when
/// either set is empty.
///
/// The matching is affine, so the windowed means and second moments of
/// `a g + b` follow from those of `g`, computed once per image; each pair
/// needs one windowed mean, of `g r`. With the filter as two matrix
/// products this is about ten times faster than scikit-image on 2 CPU
/// cores (`cargo bench --bench ssim_timing`).
pub fn mean_pairwise_ssim(generated: &Tensor, real: &Tensor, chunk: i64) -> f64 {
    let (na, nb) = (generated.size()[0], real.size()[0]);
    matched_ssim_mean(generated, real, Pairs::All { na, nb }, chunk)
}

/// Mean SSIM among the images of one set `[N, 1, H, W]` in [0, 1], over
/// every ordered pair of two different images, with the protocol of
/// [`mean_pairwise_ssim`] (the first image of a pair matched to the
/// second's mean and standard deviation). On a class's generated images it
/// is their diversity (1 = all alike); on its real images, the realism
/// ceiling and the diversity they should have. NaN below two images.
pub fn mean_within_ssim(images: &Tensor, chunk: i64) -> f64 {
    let n = images.size()[0];
    matched_ssim_mean(images, images, Pairs::Distinct { n }, chunk)
}

/// The brightness- and contrast-matched SSIM of `a[i]` (matched) against
/// `b[j]`, averaged over `pairs`.
///
/// Row by row: image `a[i]` against `chunk` images of `b` at a time, `a[i]`
/// broadcast rather than copied per pair, so a batch's temporaries stay
/// small enough for the cache. The sum stays on the device until the end.
fn matched_ssim_mean(a: &Tensor, b: &Tensor, pairs: Pairs, chunk: i64) -> f64 {
    let total_pairs = pairs.len();
    if total_pairs <= 0 {
        return f64::NAN;
    }
    tch::no_grad(|| {
        let (g, r) = (a.to_kind(Kind::Float), b.to_kind(Kind::Float));
        let device = g.device();
        let win = Window::for_images(&g);
        let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
        let stats = |t: &Tensor| {
            let flat = t.flatten(1, -1);
            (
                flat.mean_dim(1, false, Kind::Float).view([-1, 1, 1, 1]),
                flat.std_dim(1, false, false).view([-1, 1, 1, 1]),
            )
        };
        let (gm, gs) = stats(&g);
        let (rm, rs) = stats(&r);
        // Windowed moments, once per image. For the matched image a g + b
        // (a, b per pair): mean a mu_g + b, variance a^2 var_g, covariance
        // with r a cov(g, r); only cov(g, r) needs a filter per pair.
        let mu_g = blur(&g, &win);
        let var_g = blur(&(&g * &g), &win) - &mu_g * &mu_g;
        let mu_r = blur(&r, &win);
        let var_r_c2 = blur(&(&r * &r), &win) - &mu_r * &mu_r + c2;
        let mu_r2_c1 = &mu_r * &mu_r + c1;
        let two_mu_r = &mu_r * 2.0;
        let (na, nb) = (g.size()[0], r.size()[0]);
        let step = chunk.max(1);
        let mut total = Tensor::zeros([], (Kind::Double, device));
        for i in 0..na {
            let (gi, mgi, vgi) = (g.get(i), mu_g.get(i), var_g.get(i));
            let neg_mgi = -&mgi;
            let (gmi, gsi) = (gm.get(i), gs.get(i).clamp_min(1e-6));
            let mut start = 0;
            while start < nb {
                let len = step.min(nb - start);
                let rows = |t: &Tensor| t.narrow(0, start, len);
                let scale = rows(&rs) / &gsi;
                let shift = rows(&rm) - &scale * &gmi;
                let mut mu_m = &mgi * &scale;
                mu_m += &shift;
                // cov(g, r) = E[g r] - mu_g mu_r
                let cov = blur(&(rows(&r) * &gi), &win).addcmul(&rows(&mu_r), &neg_mgi);
                // (2 mu_m mu_r + C1)(2 a cov + C2)
                let mut num = &mu_m * &rows(&two_mu_r);
                num += c1;
                let mut cov_term = cov * (&scale * 2.0);
                cov_term += c2;
                num *= &cov_term;
                // (mu_m^2 + mu_r^2 + C1)(a^2 var_g + var_r + C2)
                let mut den = rows(&mu_r2_c1).addcmul(&mu_m, &mu_m);
                den *= &rows(&var_r_c2).addcmul(&vgi, &(&scale * &scale));
                num /= &den;
                let per_pair = num.mean_dim(&[1i64, 2, 3][..], false, Kind::Double);
                total += per_pair.sum(Kind::Double);
                // Distinct pairs: an image is not its own partner.
                if matches!(pairs, Pairs::Distinct { .. }) && (start..start + len).contains(&i) {
                    total -= per_pair.get(i - start);
                }
                start += len;
            }
        }
        f64::try_from(total).unwrap_or(f64::NAN) / total_pairs as f64
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
