//! Write a PNG grid of synthetic phantoms, one row per class:
//! `cargo run --release --example phantom_grid -- bone|chest OUT.png [HEIGHT WIDTH]`.

use scintigan::data::phantom::{bone_scan, chest_xray};
use tch::Tensor;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let kind = args.get(1).map_or("bone", String::as_str);
    let out = args.get(2).map_or("phantoms.png", String::as_str);
    let h: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(256);
    let w: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(128);
    let (classes, cols) = if kind == "chest" { (4, 6) } else { (3, 6) };
    let mut pixels = Vec::new();
    for class in 0..classes {
        for i in 0..cols as u64 {
            let c = if kind == "chest" {
                chest_xray(h, w, class, 0, i)
            } else {
                bone_scan(h, w, class, 0, i)
            };
            pixels.extend(c.pixels.iter().map(|p| p * 2.0 - 1.0));
        }
    }
    let t = Tensor::from_slice(&pixels).view([(classes * cols) as i64, 1, h as i64, w as i64]);
    scintigan::train::samples::write_grid(&t, classes, cols, std::path::Path::new(out))
}
