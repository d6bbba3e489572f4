//! PNG output of generated images.

use std::path::Path;
use tch::{Kind, Tensor};

/// Write `images [rows * cols, 1, H, W]` (values in [-1, 1]) as one 8-bit
/// grayscale PNG grid, row-major, with a 2-pixel black gap between tiles.
pub fn write_grid(images: &Tensor, rows: usize, cols: usize, path: &Path) -> Result<(), String> {
    let size = images.size();
    let (h, w) = (size[2] as usize, size[3] as usize);
    let gap = 2;
    let (gh, gw) = (rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap);
    let bytes: Vec<u8> = Vec::<u8>::try_from(
        ((images.to_device(tch::Device::Cpu).to_kind(Kind::Float) + 1.0) * 127.5)
            .clamp(0.0, 255.0)
            .round()
            .to_kind(Kind::Uint8)
            .flatten(0, -1),
    )
    .map_err(|e| e.to_string())?;
    let mut grid = vec![0u8; gh * gw];
    for (i, tile) in bytes.chunks(h * w).take(rows * cols).enumerate() {
        let (r, c) = (i / cols, i % cols);
        for y in 0..h {
            let dst = (r * (h + gap) + y) * gw + c * (w + gap);
            grid[dst..dst + w].copy_from_slice(&tile[y * w..(y + 1) * w]);
        }
    }
    write_png(path, gw, gh, png::ColorType::Grayscale, &grid)
}

/// Write a scan `[1, 1, H, W]` in [0, 1] with a heat map `[1, 1, H, W]` in
/// [0, 1] laid over it as an RGB PNG: the scan in gray, the heat in red to
/// yellow, blended by the heat's strength.
pub fn write_overlay(scan: &Tensor, heat: &Tensor, path: &Path) -> Result<(), String> {
    let size = scan.size();
    let (h, w) = (size[2] as usize, size[3] as usize);
    let values = |t: &Tensor| {
        Vec::<f32>::try_from(
            t.to_device(tch::Device::Cpu)
                .to_kind(Kind::Float)
                .flatten(0, -1),
        )
        .map_err(|e| e.to_string())
    };
    let (gray, cam) = (values(scan)?, values(heat)?);
    let mut rgb = Vec::with_capacity(h * w * 3);
    for (g, c) in gray.iter().zip(&cam) {
        let (g, c) = (g.clamp(0.0, 1.0), c.clamp(0.0, 1.0));
        let a = 0.6 * c;
        // heat colour: red rising to yellow
        let (hr, hg, hb) = (1.0, c, 0.0);
        for (base, hot) in [(g, hr), (g, hg), (g, hb)] {
            rgb.push((((1.0 - a) * base + a * hot) * 255.0).round() as u8);
        }
    }
    write_png(path, w, h, png::ColorType::Rgb, &rgb)
}

/// Write 8-bit pixels (`width * height` times the colour's channels) as a PNG.
fn write_png(
    path: &Path,
    width: usize,
    height: usize,
    color: png::ColorType,
    data: &[u8],
) -> Result<(), String> {
    crate::store::write_atomic_with(path, |file| {
        let mut enc = png::Encoder::new(file, width as u32, height as u32);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(std::io::Error::other)?;
        writer
            .write_image_data(data)
            .map_err(std::io::Error::other)?;
        writer.finish().map_err(std::io::Error::other)
    })
    .map_err(|e| format!("{}: {e}", path.display()))
}
