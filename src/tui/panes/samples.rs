//! The newest grid of generated scans of the selected run, drawn with
//! half-block characters (two pixels a cell, upper in the foreground and
//! lower in the background): it works in any terminal over any SSH link.

use crate::tui::app::{App, Pane};
use crate::tui::draw::pane_block;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::widgets::Paragraph;
use std::path::PathBuf;

/// A decoded sample, scaled to a cell grid: `(upper, lower)` grey levels.
#[derive(Debug, Clone, Default)]
pub struct SampleCache {
    key: Option<(PathBuf, u16, u16)>,
    cells: Vec<(u8, u8)>,
    error: Option<String>,
}

/// Shading characters for terminals without colour, dark to light.
const RAMP: &[char] = &[' ', '.', ':', '-', '=', '+', '*', '#', '%', '@'];

pub fn draw(frame: &mut Frame<'_>, app: &mut App, area: Rect) {
    let run = app.selected_id();
    let sample = run
        .as_deref()
        .and_then(|id| app.state.runs.get(id))
        .and_then(|d| d.samples.last().cloned());
    let Some((stage, epoch, rel)) = sample else {
        let block = pane_block(app, Pane::Samples, String::new());
        let inner = block.inner(area);
        frame.render_widget(block, area);
        frame.render_widget(
            Paragraph::new("No samples yet: GAN stages save a grid per epoch, one row per class.")
                .wrap(ratatui::widgets::Wrap { trim: true }),
            inner,
        );
        return;
    };
    let block = pane_block(app, Pane::Samples, format!("{stage} epoch {epoch}"));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let path = PathBuf::from(&app.state.snapshot.runs_dir)
        .join(run.unwrap_or_default())
        .join(&rel);
    let key = (path.clone(), inner.width, inner.height);
    if app.samples.key.as_ref() != Some(&key) {
        app.samples = match load(&path, inner.width, inner.height) {
            Ok(cells) => SampleCache {
                key: Some(key),
                cells,
                error: None,
            },
            Err(e) => SampleCache {
                key: Some(key),
                cells: Vec::new(),
                error: Some(e),
            },
        };
    }
    if let Some(e) = &app.samples.error {
        frame.render_widget(Paragraph::new(e.clone()), inner);
        return;
    }
    let buf = frame.buffer_mut();
    let w = inner.width as usize;
    for (i, &(top, bottom)) in app.samples.cells.iter().enumerate() {
        let (x, y) = (inner.x + (i % w) as u16, inner.y + (i / w) as u16);
        if let Some(cell) = buf.cell_mut((x, y)) {
            if app.color {
                cell.set_char('▀').set_fg(grey(top)).set_bg(grey(bottom));
            } else {
                let v = (u16::from(top) + u16::from(bottom)) / 2;
                cell.set_char(RAMP[(v as usize * (RAMP.len() - 1)) / 255]);
            }
        }
    }
}

/// A grey level as a colour: 24-bit where the terminal says it has it
/// (`COLORTERM=truecolor`), else the 24-step grey ramp of 256-colour
/// terminals.
fn grey(v: u8) -> Color {
    let truecolor = std::env::var("COLORTERM").is_ok_and(|c| c == "truecolor" || c == "24bit");
    if truecolor {
        Color::Rgb(v, v, v)
    } else {
        Color::Indexed(232 + (u16::from(v) * 23 / 255) as u8)
    }
}

/// Decode `path` and fit it into `width` x `height` cells (2 pixels per
/// cell vertically), keeping the aspect ratio (terminal cells are about
/// twice as tall as wide).
fn load(path: &std::path::Path, width: u16, height: u16) -> Result<Vec<(u8, u8)>, String> {
    let img = image::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let gray = img.to_luma8();
    let (iw, ih) = (gray.width() as f64, gray.height() as f64);
    let (cw, ch) = (f64::from(width), f64::from(height) * 2.0);
    let scale = (cw / iw).min(ch / ih);
    let (tw, th) = ((iw * scale).max(1.0) as u32, (ih * scale).max(1.0) as u32);
    let small = image::imageops::resize(&gray, tw, th, image::imageops::FilterType::Triangle);
    let mut cells = vec![(0u8, 0u8); width as usize * height as usize];
    for cy in 0..height as u32 {
        for cx in 0..width as u32 {
            let px = |y: u32| {
                if cx < tw && y < th {
                    small.get_pixel(cx, y).0[0]
                } else {
                    0
                }
            };
            cells[(cy * u32::from(width) + cx) as usize] = (px(cy * 2), px(cy * 2 + 1));
        }
    }
    Ok(cells)
}
