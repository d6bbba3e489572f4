//! Per-class SSIM cost: 16 generated images against 100 training images of
//! a class (1,600 pairs) at 256x128, as the GAN stage computes it
//! (brightness/contrast matching included). Compare with
//! `.venv/bin/python benches/skimage_ssim.py` (scikit-image, same pairs count).
//!
//! `cargo bench --bench ssim_timing`

use scintigan::train::ssim::mean_pairwise_ssim;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

fn main() {
    tch::manual_seed(0);
    let generated = Tensor::rand([16, 1, 256, 128], (Kind::Float, Device::Cpu));
    let real = Tensor::rand([100, 1, 256, 128], (Kind::Float, Device::Cpu));
    let _ = mean_pairwise_ssim(&generated.narrow(0, 0, 2), &real.narrow(0, 0, 2), 512);
    let mut times = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let s = mean_pairwise_ssim(&generated, &real, 512);
        times.push(start.elapsed().as_secs_f64());
        assert!(s.is_finite());
    }
    times.sort_by(f64::total_cmp);
    let median = times[1];
    println!(
        "ours: 1600 pairs at 256x128 in {median:.3} s median of 3 ({:.0} pairs/s, {} threads)",
        1600.0 / median,
        tch::get_num_threads()
    );
}
