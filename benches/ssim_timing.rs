//! Per-class SSIM cost at 256x128, as the GAN stage computes it (brightness
//! and contrast matching included): 16 generated images against 100
//! training images of a class (1,600 pairs, the paper's Table 3 score), and
//! the 16 generated images among themselves (240 ordered pairs, the
//! diversity). Compare with `python benches/skimage_ssim.py` (scikit-image
//! on the same pairs, one at a time, as scikit-image works; needs
//! scikit-image).
//!
//! `cargo bench --bench ssim_timing`

use scintigan::train::ssim::{mean_pairwise_ssim, mean_within_ssim};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Median of 5 timings of `f`, in seconds.
fn median_secs(mut f: impl FnMut() -> f64) -> f64 {
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            assert!(f().is_finite());
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[2]
}

fn main() {
    tch::manual_seed(0);
    let generated = Tensor::rand([16, 1, 256, 128], (Kind::Float, Device::Cpu));
    let real = Tensor::rand([100, 1, 256, 128], (Kind::Float, Device::Cpu));
    let _ = mean_pairwise_ssim(&generated.narrow(0, 0, 2), &real.narrow(0, 0, 2), 16);
    let cross = median_secs(|| mean_pairwise_ssim(&generated, &real, 16));
    let within = median_secs(|| mean_within_ssim(&generated, 16));
    println!(
        "ours: 1600 generated-vs-real pairs at 256x128 in {cross:.3} s ({:.0} pairs/s); 240 diversity pairs in {within:.3} s ({:.0} pairs/s); median of 5, {} threads",
        1600.0 / cross,
        240.0 / within,
        tch::get_num_threads()
    );
}
