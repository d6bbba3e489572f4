//! Image preparation shared by DICOM ingestion and the phantoms: a robust
//! percentile intensity window, the head-to-foot auto-crop, splitting a
//! side-by-side anterior/posterior image, and an aspect-preserving resize
//! with padding. Pure functions on [`Plane`]s; no tensors.

/// A grayscale image, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Plane {
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<f32>,
}

impl Plane {
    pub fn new(height: usize, width: usize, pixels: Vec<f32>) -> Self {
        debug_assert_eq!(pixels.len(), height * width);
        Self {
            height,
            width,
            pixels,
        }
    }

    pub fn zeros(height: usize, width: usize) -> Self {
        Self::new(height, width, vec![0.0; height * width])
    }

    pub fn at(&self, y: usize, x: usize) -> f32 {
        self.pixels[y * self.width + x]
    }

    /// The rows `top..bottom` and columns `left..right`.
    pub fn crop(&self, b: CropBox) -> Plane {
        let mut pixels = Vec::with_capacity(b.height() * b.width());
        for y in b.top..b.bottom {
            pixels
                .extend_from_slice(&self.pixels[y * self.width + b.left..y * self.width + b.right]);
        }
        Plane::new(b.height(), b.width(), pixels)
    }
}

/// The intensity window: values at or below the `low` percentile map to 0,
/// at or above the `high` percentile to 1, linearly between.
///
/// Default 1 and 99.5: the background floor goes to 0, and the hottest
/// 0.5 % of pixels (bladder, intense lesions, injection site) saturate
/// instead of compressing the skeleton into the bottom of the range, which a
/// max normalisation does whenever the bladder is full.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub low: f64,
    pub high: f64,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            low: 1.0,
            high: 99.5,
        }
    }
}

/// The `q`-th percentile (0..=100) with linear interpolation between
/// order statistics (NumPy's default). NaN for an empty slice.
pub fn percentile(values: &[f32], q: f64) -> f32 {
    if values.is_empty() {
        return f32::NAN;
    }
    let mut v: Vec<f32> = values.to_vec();
    let pos = q.clamp(0.0, 100.0) / 100.0 * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let frac = (pos - lo as f64) as f32;
    let (_, &mut a, rest) = v.select_nth_unstable_by(lo, f32::total_cmp);
    if frac == 0.0 || rest.is_empty() {
        return a;
    }
    let b = rest.iter().copied().fold(f32::INFINITY, f32::min);
    a + (b - a) * frac
}

/// Map `plane` into [0, 1] through `window`; returns the (low, high) values
/// used. A flat image becomes all zeros.
pub fn normalise(plane: &mut Plane, window: Window) -> (f32, f32) {
    let lo = percentile(&plane.pixels, window.low);
    let hi = percentile(&plane.pixels, window.high);
    let span = hi - lo;
    for p in &mut plane.pixels {
        *p = if span > 0.0 {
            ((*p - lo) / span).clamp(0.0, 1.0)
        } else {
            0.0
        };
    }
    (lo, hi)
}

/// Rows `top..bottom`, columns `left..right` of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    pub top: usize,
    pub left: usize,
    pub bottom: usize,
    pub right: usize,
}

impl CropBox {
    pub fn whole(plane: &Plane) -> Self {
        Self {
            top: 0,
            left: 0,
            bottom: plane.height,
            right: plane.width,
        }
    }
    pub fn height(&self) -> usize {
        self.bottom - self.top
    }
    pub fn width(&self) -> usize {
        self.right - self.left
    }
}

/// A `k` x `k` box-filtered copy (edges clamped), to see the body through
/// counting noise.
fn box_blur(plane: &Plane, k: usize) -> Plane {
    let r = (k / 2) as isize;
    let (h, w) = (plane.height as isize, plane.width as isize);
    let pass = |src: &[f32], horizontal: bool| -> Vec<f32> {
        let mut out = vec![0.0f32; src.len()];
        for y in 0..h {
            for x in 0..w {
                let mut sum = 0.0;
                for d in -r..=r {
                    let (yy, xx) = if horizontal {
                        (y, (x + d).clamp(0, w - 1))
                    } else {
                        ((y + d).clamp(0, h - 1), x)
                    };
                    sum += src[(yy * w + xx) as usize];
                }
                out[(y * w + x) as usize] = sum / (2 * r + 1) as f32;
            }
        }
        out
    };
    let tmp = pass(&plane.pixels, true);
    Plane::new(plane.height, plane.width, pass(&tmp, false))
}

/// The body's bounding box, from the row and column profiles of a
/// thresholded, smoothed copy.
///
/// The background level is the median of the 5x5-smoothed image (the body
/// covers well under half of a whole-body frame) and its spread the median
/// absolute deviation; a pixel is body when it exceeds the background by
/// 4 spreads and by 2 % of the range up to the 99th percentile. The box
/// spans the longest run of rows (and of columns) holding body pixels,
/// widened by a margin of 2 % of its size on each side, so the faint edge
/// of the head and the feet stay inside. An image with no body gets the
/// whole frame.
pub fn body_box(plane: &Plane) -> CropBox {
    if plane.height < 3 || plane.width < 3 {
        return CropBox::whole(plane);
    }
    let smooth = box_blur(plane, 5);
    let bg = percentile(&smooth.pixels, 50.0);
    let deviations: Vec<f32> = smooth.pixels.iter().map(|p| (p - bg).abs()).collect();
    let spread = percentile(&deviations, 50.0);
    let top = percentile(&smooth.pixels, 99.0);
    let threshold = bg + (4.0 * spread).max(0.02 * (top - bg));
    if top <= bg {
        return CropBox::whole(plane);
    }
    let mut row_hits = vec![0usize; plane.height];
    let mut col_hits = vec![0usize; plane.width];
    for (y, row) in smooth.pixels.chunks(plane.width).enumerate() {
        for (x, &p) in row.iter().enumerate() {
            if p > threshold {
                row_hits[y] += 1;
                col_hits[x] += 1;
            }
        }
    }
    let rows = longest_run(&row_hits);
    let cols = longest_run(&col_hits);
    let (Some((top, bottom)), Some((left, right))) = (rows, cols) else {
        return CropBox::whole(plane);
    };
    let widen = |lo: usize, hi: usize, limit: usize| {
        let margin = ((hi - lo) as f64 * 0.02).ceil() as usize + 1;
        (lo.saturating_sub(margin), (hi + margin).min(limit))
    };
    let (top, bottom) = widen(top, bottom, plane.height);
    let (left, right) = widen(left, right, plane.width);
    CropBox {
        top,
        left,
        bottom,
        right,
    }
}

/// The longest run of non-zero entries as `start..end`, bridging gaps of up
/// to 2 % of the length (a gap between the knees or the arms and the trunk
/// is not the end of the body).
fn longest_run(hits: &[usize]) -> Option<(usize, usize)> {
    let bridge = (hits.len() / 50).max(1);
    let mut best: Option<(usize, usize)> = None;
    let mut start: Option<usize> = None;
    let mut last_hit = 0;
    for (i, &h) in hits.iter().enumerate() {
        if h == 0 {
            continue;
        }
        match start {
            Some(s) if i - last_hit > bridge => {
                if best.is_none_or(|(a, b)| last_hit + 1 - s > b - a) {
                    best = Some((s, last_hit + 1));
                }
                start = Some(i);
            }
            None => start = Some(i),
            _ => {}
        }
        last_hit = i;
    }
    if let Some(s) = start
        && best.is_none_or(|(a, b)| last_hit + 1 - s > b - a)
    {
        best = Some((s, last_hit + 1));
    }
    best
}

/// Split one image holding two views side by side at the quietest column of
/// its middle third (smoothed column profile): `(left, right)`.
pub fn split_side_by_side(plane: &Plane) -> (Plane, Plane) {
    let w = plane.width;
    let mut profile = vec![0.0f64; w];
    for y in 0..plane.height {
        for (x, p) in profile.iter_mut().enumerate() {
            *p += f64::from(plane.at(y, x));
        }
    }
    let (lo, hi) = (w / 3, (2 * w / 3).max(w / 3 + 1));
    let smoothed = |x: usize| {
        let (a, b) = (x.saturating_sub(2), (x + 3).min(w));
        profile[a..b].iter().sum::<f64>() / (b - a) as f64
    };
    let mut cut = w / 2;
    let mut best = f64::INFINITY;
    // Ties go to the column nearest the centre.
    let mut order: Vec<usize> = (lo..hi).collect();
    order.sort_by_key(|&x| x.abs_diff(w / 2));
    for x in order {
        let s = smoothed(x);
        if s < best {
            best = s;
            cut = x;
        }
    }
    let left = plane.crop(CropBox {
        top: 0,
        left: 0,
        bottom: plane.height,
        right: cut,
    });
    let right = plane.crop(CropBox {
        top: 0,
        left: cut,
        bottom: plane.height,
        right: w,
    });
    (left, right)
}

/// Resample to `out_len` along one axis with a triangle (linear) kernel
/// widened by the scale factor when shrinking (antialiased, like PIL's
/// bilinear resize).
fn resample_axis(src: &[f32], len: usize, stride: usize, count: usize, out_len: usize) -> Vec<f32> {
    // src holds `count` lines of `len` samples each; sample i of line j is
    // at j * (if stride == 1 {len} else 1) + i * stride.
    let scale = len as f64 / out_len as f64;
    let support = scale.max(1.0);
    let mut weights: Vec<(usize, Vec<f32>)> = Vec::with_capacity(out_len);
    for o in 0..out_len {
        let centre = (o as f64 + 0.5) * scale;
        let a = ((centre - support).floor().max(0.0)) as usize;
        let b = ((centre + support).ceil() as usize).min(len);
        let mut ws: Vec<f32> = (a..b)
            .map(|i| {
                let d = ((i as f64 + 0.5) - centre).abs() / support;
                (1.0 - d).max(0.0) as f32
            })
            .collect();
        let total: f32 = ws.iter().sum();
        if total > 0.0 {
            ws.iter_mut().for_each(|w| *w /= total);
        }
        weights.push((a, ws));
    }
    let line_step = if stride == 1 { len } else { 1 };
    let mut out = Vec::with_capacity(count * out_len);
    for j in 0..count {
        for (a, ws) in &weights {
            let mut sum = 0.0;
            for (k, w) in ws.iter().enumerate() {
                sum += w * src[j * line_step + (a + k) * stride];
            }
            out.push(sum);
        }
    }
    out
}

/// Resize to `height` x `width`, keeping the aspect ratio and padding the
/// rest with 0 (centred).
pub fn resize_pad(plane: &Plane, height: usize, width: usize) -> Plane {
    if plane.height == 0 || plane.width == 0 || height == 0 || width == 0 {
        return Plane::zeros(height, width);
    }
    let scale = (height as f64 / plane.height as f64).min(width as f64 / plane.width as f64);
    let h = ((plane.height as f64 * scale).round() as usize).clamp(1, height);
    let w = ((plane.width as f64 * scale).round() as usize).clamp(1, width);
    // Rows first (each row resampled across), then columns.
    let across = resample_axis(&plane.pixels, plane.width, 1, plane.height, w);
    // `across` is plane.height x w; resample each column (stride w).
    let down_t = resample_axis(&across, plane.height, w, w, h); // w lines of h
    let (y0, x0) = ((height - h) / 2, (width - w) / 2);
    let mut out = Plane::zeros(height, width);
    for x in 0..w {
        for y in 0..h {
            out.pixels[(y0 + y) * width + x0 + x] = down_t[x * h + y];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4, 10], [0, 25, 50, 90, 100])
        let v = [10.0, 2.0, 4.0, 1.0, 3.0];
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 25.0), 2.0);
        assert_eq!(percentile(&v, 50.0), 3.0);
        assert!((percentile(&v, 90.0) - 7.6).abs() < 1e-6);
        assert_eq!(percentile(&v, 100.0), 10.0);
    }

    #[test]
    fn window_saturates_the_hottest_pixels() {
        let mut p = Plane::new(1, 1000, (0..1000).map(|i| i as f32).collect());
        p.pixels[999] = 1e6; // a bladder
        let (lo, hi) = normalise(&mut p, Window::default());
        // numpy.percentile(..., [1, 99.5]) of 0..998 and 1e6: 9.99 and 994.005.
        assert!(
            (lo - 9.99).abs() < 1e-3 && (hi - 994.005).abs() < 1e-2,
            "{lo} {hi}"
        );
        assert_eq!(p.pixels[999], 1.0);
        assert!((p.pixels[100] - (100.0 - lo) / (hi - lo)).abs() < 1e-6);
        assert_eq!(p.pixels[0], 0.0);
    }

    #[test]
    fn resize_keeps_aspect_and_pads() {
        let p = Plane::new(4, 2, vec![1.0; 8]);
        let r = resize_pad(&p, 4, 4);
        // 4x2 fits as 4x2, centred: columns 1 and 2 are ones.
        for y in 0..4 {
            assert_eq!(
                (0..4).map(|x| r.at(y, x)).collect::<Vec<_>>(),
                vec![0.0, 1.0, 1.0, 0.0]
            );
        }
        // Shrinking a ramp by 2 averages neighbours.
        let ramp = Plane::new(1, 4, vec![0.0, 2.0, 4.0, 6.0]);
        let r = resize_pad(&ramp, 1, 2);
        assert!(r.pixels[0] > 0.5 && r.pixels[0] < 1.5, "{:?}", r.pixels);
        assert!(r.pixels[1] > 4.5 && r.pixels[1] < 5.5, "{:?}", r.pixels);
    }

    #[test]
    fn body_box_finds_a_rectangle_on_noise_free_background() {
        let mut p = Plane::zeros(100, 40);
        for y in 20..80 {
            for x in 10..30 {
                p.pixels[y * 40 + x] = 10.0;
            }
        }
        let b = body_box(&p);
        assert!(b.top <= 20 && b.top >= 15, "{b:?}");
        assert!(b.bottom >= 80 && b.bottom <= 85, "{b:?}");
        assert!(b.left <= 10 && b.right >= 30, "{b:?}");
    }

    #[test]
    fn side_by_side_splits_at_the_gap() {
        let mut p = Plane::zeros(10, 30);
        for y in 0..10 {
            for x in (2..12).chain(17..28) {
                p.pixels[y * 30 + x] = 1.0;
            }
        }
        let (l, r) = split_side_by_side(&p);
        assert!((12..=17).contains(&l.width), "cut at {}", l.width);
        assert_eq!(l.width + r.width, 30);
    }
}
