//! Parameters and training-step time per model at 256x128 (height x width),
//! the default whole-body size: GANs one D and one G update at the paper's
//! batch 2, classifiers one step at batch 4, with the optimizer (RAdam), on
//! random data already on the device. Prints a Markdown table.
//!
//! `make bench` (or `cargo bench --bench model_timing`); set
//! `SCINTIGAN_BENCH_DEVICE=cuda` to time on a GPU.

use scintigan::config::DeviceChoice;
use scintigan::nn::summary::{summarize, thousands};
use scintigan::train::bench::{BenchRequest, bench};

const ARCHS: [(&str, usize); 10] = [
    ("mu-acgan", 2),
    ("acgan", 2),
    ("multiscale", 4),
    ("densenet121", 4),
    ("vgg16", 4),
    ("resnext50_32x4d", 4),
    ("resnet34", 4),
    ("mobilenet_v3_large", 4),
    ("inception_v3", 4),
    ("efficientnet_b0", 4),
];

fn main() {
    let device = match std::env::var("SCINTIGAN_BENCH_DEVICE").as_deref() {
        Ok("cuda") => DeviceChoice::Cuda(0),
        _ => DeviceChoice::Cpu,
    };
    let (h, w, steps) = (256, 128, 3);
    println!("training step at {h}x{w}, 3 classes, median of {steps} after one warm-up\n");
    println!("| model | parameters | batch | device | median s | images/s |");
    println!("|---|---:|---:|---|---:|---:|");
    for (arch, batch) in ARCHS {
        let params = summarize(arch, h as i64, w as i64, 3)
            .map(|s| s.total_parameters)
            .unwrap_or(0);
        match bench(&BenchRequest::new(arch, [h, w], batch, steps).on(device)) {
            Ok(r) => println!(
                "| {arch} | {} | {batch} | {} ({} threads) | {:.3} | {:.1} |",
                thousands(params),
                r.device,
                r.threads,
                r.median_seconds,
                r.images_per_second
            ),
            Err(e) => println!(
                "| {arch} | {} | {batch} | error: {e} | | |",
                thousands(params)
            ),
        }
    }
}
