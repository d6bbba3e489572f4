//! Grouped bar charts as PNG, with a built-in 5x7 pixel font: no system
//! fonts, no plotting dependency. Enough for an experiment report: one
//! group per table row, one bar per series (ours, the paper's), error bars
//! for the standard deviation over seeds, values printed above the bars.

use image::{Rgb, RgbImage};

/// 5x7 glyphs, one byte per row (bit 4 = leftmost column).
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        '+' => [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0],
        '/' => [0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        _ => [0; 7],
    }
}

/// Draw `text` with its top-left corner at (x, y), each font pixel a
/// `scale` x `scale` square.
pub fn text(img: &mut RgbImage, x: i64, y: i64, s: &str, scale: i64, colour: Rgb<u8>) {
    for (i, c) in s.chars().enumerate() {
        let rows = glyph(c);
        for (r, bits) in rows.iter().enumerate() {
            for col in 0..5 {
                if bits & (0x10 >> col) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let px = x + (i as i64 * 6 + col) * scale + dx;
                        let py = y + r as i64 * scale + dy;
                        if px >= 0
                            && py >= 0
                            && (px as u32) < img.width()
                            && (py as u32) < img.height()
                        {
                            img.put_pixel(px as u32, py as u32, colour);
                        }
                    }
                }
            }
        }
    }
}

/// Width in pixels of `s` at `scale`.
pub fn text_width(s: &str, scale: i64) -> i64 {
    (s.chars().count() as i64 * 6 - 1).max(0) * scale
}

fn rect(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, colour: Rgb<u8>) {
    for y in y0.max(0)..y1.min(img.height() as i64) {
        for x in x0.max(0)..x1.min(img.width() as i64) {
            img.put_pixel(x as u32, y as u32, colour);
        }
    }
}

/// One series of bars: a name for the legend and a value (with optional
/// standard deviation) per group; `None` draws no bar.
pub struct Series {
    pub name: String,
    pub values: Vec<Option<(f64, Option<f64>)>>,
}

pub const COLOURS: [Rgb<u8>; 4] = [
    Rgb([31, 119, 180]),
    Rgb([200, 200, 200]),
    Rgb([255, 127, 14]),
    Rgb([44, 160, 44]),
];

/// A grouped bar chart of values in [0, `y_max`]: `title` on top, `groups`
/// labels under the bars.
pub fn bar_chart(title: &str, groups: &[String], series: &[Series], y_max: f64) -> RgbImage {
    let (scale, pad) = (2i64, 16i64);
    let bar_w = 28i64;
    let group_w = bar_w * series.len() as i64 + 24;
    let label_w = groups
        .iter()
        .map(|g| text_width(g, scale))
        .max()
        .unwrap_or(0);
    let group_w = group_w.max(label_w + 12);
    let plot_h = 260i64;
    let left = 60i64;
    let top = pad + 7 * scale + 40;
    let width = left + group_w * groups.len() as i64 + pad;
    let width = width
        .max(text_width(title, scale) + 2 * pad)
        .max(left + 260);
    let height = top + plot_h + 7 * scale + 16 + (7 * scale + 8) * series.len() as i64 + pad;
    let mut img = RgbImage::from_pixel(width as u32, height as u32, Rgb([255, 255, 255]));
    let black = Rgb([0, 0, 0]);
    let grey = Rgb([225, 225, 225]);
    text(&mut img, pad, pad, title, scale, black);
    let y_of = |v: f64| top + plot_h - ((v / y_max).clamp(0.0, 1.0) * plot_h as f64).round() as i64;
    // Grid lines and tick labels every 0.2 of y_max.
    for k in 0..=5 {
        let v = y_max * k as f64 / 5.0;
        let y = y_of(v);
        rect(&mut img, left, y, width - pad, y + 1, grey);
        let label = format!("{v:.1}");
        text(
            &mut img,
            left - 8 - text_width(&label, scale),
            y - 7,
            &label,
            scale,
            black,
        );
    }
    for (g, name) in groups.iter().enumerate() {
        let gx = left + g as i64 * group_w + 12;
        for (s, ser) in series.iter().enumerate() {
            let Some(Some((v, sd))) = ser.values.get(g) else {
                continue;
            };
            let x0 = gx + s as i64 * bar_w;
            let colour = COLOURS[s % COLOURS.len()];
            rect(&mut img, x0, y_of(*v), x0 + bar_w - 4, top + plot_h, colour);
            if let Some(sd) = sd {
                let (ya, yb) = (y_of(v + sd), y_of((v - sd).max(0.0)));
                let cx = x0 + (bar_w - 4) / 2;
                rect(&mut img, cx, ya, cx + 1, yb + 1, black);
                rect(&mut img, cx - 4, ya, cx + 5, ya + 1, black);
                rect(&mut img, cx - 4, yb, cx + 5, yb + 1, black);
            }
            let label = format!("{v:.2}");
            let lx = x0 + (bar_w - 4) / 2 - text_width(&label, 1) / 2;
            text(
                &mut img,
                lx,
                y_of(*v) - 10 - if sd.is_some() { 14 } else { 0 },
                &label,
                1,
                black,
            );
        }
        let lx = gx + (bar_w * series.len() as i64) / 2 - text_width(name, scale) / 2;
        text(&mut img, lx, top + plot_h + 8, name, scale, black);
    }
    rect(
        &mut img,
        left,
        top + plot_h,
        width - pad,
        top + plot_h + 1,
        black,
    );
    // Legend.
    let mut ly = top + plot_h + 7 * scale + 20;
    for (s, ser) in series.iter().enumerate() {
        rect(
            &mut img,
            left,
            ly,
            left + 14,
            ly + 14,
            COLOURS[s % COLOURS.len()],
        );
        text(&mut img, left + 22, ly, &ser.name, scale, black);
        ly += 7 * scale + 8;
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_as_tall_as_their_values() {
        let series = [Series {
            name: "ours".into(),
            values: vec![Some((0.5, None)), Some((1.0, Some(0.1))), None],
        }];
        let groups: Vec<String> = ["A", "B", "C"].iter().map(|s| s.to_string()).collect();
        let img = bar_chart("T", &groups, &series, 1.0);
        // Count coloured pixels in each group's bar column.
        let blue = COLOURS[0];
        let column = |g: i64| {
            // group width: one 28-pixel bar + 24 (wider than the 1-letter label)
            let x = 60 + g * (28 + 24) + 12 + 10;
            (0..img.height())
                .filter(|&y| *img.get_pixel(x as u32, y) == blue)
                .count()
        };
        let (a, b, c) = (column(0), column(1), column(2));
        assert!((a as f64 - 130.0).abs() <= 2.0, "{a}");
        assert!((b as f64 - 260.0).abs() <= 16.0, "{b}");
        assert_eq!(c, 0);
    }
}
