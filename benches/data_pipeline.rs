//! Data pipeline throughput against training speed:
//! - ingestion: files/s for 1024x256 16-bit NM files (phantoms written as
//!   one file per view), decoded, cropped, windowed, resized to 1024x256 and
//!   written as 16-bit PNGs;
//! - loader: images/s in batches of 4 at 256x128, 64 originals x15 (14 of
//!   15 augmented on the fly: rotation, translation, mirror, Poisson);
//! - one training step of the multi-scale classifier at batch 4, 256x128,
//!   on the CPU, and the ratio loader batches/s over training steps/s
//!   (target: 10 or more).
//!
//! `cargo bench --bench data_pipeline` (part of `make bench`).

use scintigan::config::{AugmentSpec, DeviceChoice};
use scintigan::data::ingest::{IngestOptions, ingest};
use scintigan::data::loader::{Cache, Loader, LoaderSpec, Source};
use scintigan::data::phantom::bone_scan;
use scintigan::data::phantom::write::{Layout, write_bone_phantoms};
use scintigan::train::bench::{BenchRequest, bench};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = std::env::temp_dir().join(format!("scintigan-bench-data-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);

    // Ingestion.
    let patients = 40;
    write_bone_phantoms(&dir, patients, 1, Layout::TwoFiles, [1024, 256]).expect("phantoms");
    let files = patients * 2;
    let start = Instant::now();
    let report = ingest(
        &dir.join("dicom"),
        &dir.join("ingested"),
        &IngestOptions::default(),
    )
    .expect("ingest");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(report.images.len(), files);
    println!(
        "ingestion: {files} files of 1024x256 16-bit NM in {secs:.2} s = {:.1} files/s ({threads} threads)",
        files as f64 / secs
    );

    // Loader.
    let (h, w, batch) = (256, 128, 4);
    let n = 64;
    let mut pixels = Vec::with_capacity(n * h * w);
    for i in 0..n {
        pixels.extend(bone_scan(h, w, i % 3, 2, i as u64).pixels);
    }
    let source = Source {
        cache: Arc::new(Cache {
            pixels,
            labels: (0..n as i64).map(|i| i % 3).collect(),
            height: h,
            width: w,
        }),
        // 14 of every 15 items are augmented copies, drawn as they are served.
        augment: Some(AugmentSpec {
            factor: 15,
            rotation: 10.0,
            translation: 8.0,
            mirror: true,
            poisson_counts: 200.0,
            seed: 1,
        }),
    };
    let spec = LoaderSpec {
        batch_size: batch,
        threads,
        prefetch: 4,
    };
    let epochs = 5;
    let start = Instant::now();
    let mut images = 0;
    for epoch in 0..epochs {
        for b in Loader::epoch(source.clone(), &spec, 1, epoch) {
            images += b.images.size()[0] as usize;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let loader_batches_per_s = images as f64 / batch as f64 / secs;
    println!(
        "loader: {images} augmented images at {h}x{w} in {secs:.2} s = {:.0} images/s, {loader_batches_per_s:.1} batches of {batch}/s",
        images as f64 / secs
    );

    // One classifier training step at the same size.
    match bench(&BenchRequest::new("multiscale", [h, w], batch, 3).on(DeviceChoice::Cpu)) {
        Ok(r) => {
            let steps_per_s = 1.0 / r.median_seconds;
            println!(
                "multiscale training step, batch {batch}, {h}x{w}, CPU ({} threads): median {:.3} s = {steps_per_s:.2} steps/s",
                r.threads, r.median_seconds
            );
            println!(
                "loader / training: {:.0}x (target >= 10x)",
                loader_batches_per_s / steps_per_s
            );
        }
        Err(e) => println!("multiscale bench failed: {e}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
